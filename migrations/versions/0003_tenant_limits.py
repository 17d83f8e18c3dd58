"""index for the per-tenant admission limits: a tenant's operations that have not ended

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here (a migration must not change when the code's status set does).
OPEN = "status NOT IN ('CANCELLED', 'COMPLETED', 'FAILED', 'PARTIAL_SUCCESS')"


def upgrade() -> None:
    op.create_index('ix_bulk_operations_tenant_open', 'bulk_operations', ['tenant_id', 'status'],
                    unique=False, postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index('ix_bulk_operations_tenant_open', table_name='bulk_operations',
                  postgresql_where=sa.text(OPEN))
