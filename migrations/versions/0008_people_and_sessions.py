"""people and server-side console sessions: users, personal and service keys, console_sessions,
the person behind an operation and behind each audit event

Every existing key becomes a person of its own (same name and role; the user's id is the key's id,
its email `key-<key id>@migrated.invalid`; disabled when the key was revoked), so every holder keeps
exactly what they could do, and two keys that were two approvers stay two people. Operations and
audit events name the person their key became.

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=True),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('uq_users_tenant_email', 'users', ['tenant_id', sa.text('lower(email)')], unique=True)
    op.create_index('uq_users_tenant_subject', 'users', ['tenant_id', 'issuer', 'subject'], unique=True,
                    postgresql_where=sa.text('subject IS NOT NULL'))

    op.add_column('api_keys', sa.Column('user_id', sa.UUID(), nullable=True))
    op.add_column('api_keys', sa.Column('service', sa.Boolean(), server_default='false', nullable=False))
    op.create_foreign_key('api_keys_user_id_fkey', 'api_keys', 'users', ['user_id'], ['id'])
    op.create_index(op.f('ix_api_keys_user_id'), 'api_keys', ['user_id'], unique=False)
    op.execute(
        "INSERT INTO users (id, tenant_id, email, name, role, enabled, created_at) "
        "SELECT id, tenant_id, 'key-' || id || '@migrated.invalid', name, role, revoked_at IS NULL, created_at "
        "FROM api_keys"
    )
    op.execute("UPDATE api_keys SET user_id = id")
    op.create_check_constraint('ck_api_keys_owner', 'api_keys', 'service = (user_id IS NULL)')

    op.create_table('console_sessions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('key_id', sa.UUID(), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=32), nullable=True),
    sa.CheckConstraint("method IN ('key', 'oidc')", name='ck_console_sessions_method'),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_console_sessions_user_id'), 'console_sessions', ['user_id'], unique=False)

    op.add_column('bulk_operations', sa.Column('created_by_user_id', sa.UUID(), nullable=True))
    op.add_column('bulk_operations', sa.Column('created_by', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.execute(
        "UPDATE bulk_operations o SET created_by_user_id = k.user_id FROM api_keys k "
        "WHERE k.id = o.created_by_key_id"
    )
    op.add_column('bulk_operation_events', sa.Column('actor_user_id', sa.UUID(), nullable=True))
    op.add_column('bulk_operation_events', sa.Column('actor_key_name', sa.String(length=100), nullable=True))
    op.add_column('bulk_operation_events', sa.Column('actor_session_id', sa.UUID(), nullable=True))
    op.alter_column('bulk_operation_events', 'actor_name', type_=sa.String(length=200),
                    existing_type=sa.String(length=100), existing_nullable=True)
    op.execute(
        "UPDATE bulk_operation_events e SET actor_user_id = k.user_id, actor_key_name = k.name "
        "FROM api_keys k WHERE k.id = e.actor_key_id"
    )


def downgrade() -> None:
    op.alter_column('bulk_operation_events', 'actor_name', type_=sa.String(length=100),
                    existing_type=sa.String(length=200), existing_nullable=True,
                    postgresql_using='left(actor_name, 100)')
    for column in ('actor_session_id', 'actor_key_name', 'actor_user_id'):
        op.drop_column('bulk_operation_events', column)
    op.drop_column('bulk_operations', 'created_by')
    op.drop_column('bulk_operations', 'created_by_user_id')
    op.drop_index(op.f('ix_console_sessions_user_id'), table_name='console_sessions')
    op.drop_table('console_sessions')
    # Service keys had no person before either; they keep working as the keys they are.
    op.drop_constraint('ck_api_keys_owner', 'api_keys', type_='check')
    op.drop_index(op.f('ix_api_keys_user_id'), table_name='api_keys')
    op.drop_constraint('api_keys_user_id_fkey', 'api_keys', type_='foreignkey')
    op.drop_column('api_keys', 'service')
    op.drop_column('api_keys', 'user_id')
    op.drop_index('uq_users_tenant_subject', table_name='users')
    op.drop_index('uq_users_tenant_email', table_name='users')
    op.drop_table('users')
