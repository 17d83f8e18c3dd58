"""webhook secret rotation, retention bookkeeping

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('tenants', sa.Column('webhook_secret_previous', sa.String(length=128), nullable=True))
    op.add_column('tenants', sa.Column('webhook_secret_previous_until', sa.DateTime(timezone=True),
                                       nullable=True))
    op.add_column('bulk_operations', sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_bulk_operations_unpurged', 'bulk_operations', ['completed_at'], unique=False,
                    postgresql_where=sa.text('purged_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_bulk_operations_unpurged', table_name='bulk_operations',
                  postgresql_where=sa.text('purged_at IS NULL'))
    op.drop_column('bulk_operations', 'purged_at')
    op.drop_column('tenants', 'webhook_secret_previous_until')
    op.drop_column('tenants', 'webhook_secret_previous')
