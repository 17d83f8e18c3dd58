"""progress checkpoint on the operation row

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # When the counters on the row were true (the workflow's time); NULL until the first checkpoint.
    op.add_column('bulk_operations', sa.Column('progress_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('bulk_operations', 'progress_at')
