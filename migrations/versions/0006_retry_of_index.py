"""index of an operation's retries (a retry excludes the failures other retries cover)

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_bulk_operations_retry_of', 'bulk_operations', ['retry_of'], unique=False,
                    postgresql_where='retry_of IS NOT NULL')


def downgrade() -> None:
    op.drop_index('ix_bulk_operations_retry_of', table_name='bulk_operations')
