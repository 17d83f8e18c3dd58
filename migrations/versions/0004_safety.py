"""safety: key roles, tenant policy, approval / schedule / pace / revert columns, audit trail

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keys that existed before roles keep what they could do: start and control operations.
    op.add_column('api_keys', sa.Column('role', sa.String(length=16), server_default='operator', nullable=False))
    op.add_column('tenants', sa.Column('policy', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('bulk_operations', sa.Column('revert_of', sa.UUID(), nullable=True))
    op.add_column('bulk_operations', sa.Column('created_by_key_id', sa.UUID(), nullable=True))
    op.add_column('bulk_operations', sa.Column('start_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('bulk_operations', sa.Column('max_orders_per_second', sa.Float(), nullable=True))
    op.add_column('bulk_operations', sa.Column('approval', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index('uq_bulk_operations_revert_of', 'bulk_operations', ['revert_of'], unique=True,
                    postgresql_where=sa.text('revert_of IS NOT NULL'))
    op.create_table('bulk_operation_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('operation_id', sa.UUID(), nullable=False),
    sa.Column('event_key', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor_key_id', sa.UUID(), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.ForeignKeyConstraint(['operation_id'], ['bulk_operations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('operation_id', 'event_key', name='uq_events_operation_key')
    )


def downgrade() -> None:
    op.drop_table('bulk_operation_events')
    op.drop_index('uq_bulk_operations_revert_of', table_name='bulk_operations')
    for column in ('approval', 'max_orders_per_second', 'start_at', 'created_by_key_id', 'revert_of'):
        op.drop_column('bulk_operations', column)
    op.drop_column('tenants', 'policy')
    op.drop_column('api_keys', 'role')
