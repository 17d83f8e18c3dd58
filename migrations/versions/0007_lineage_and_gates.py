"""lineage of retries and reverts, the gate's snapshot time, open event streams

- `bulk_operations.lineage_id`: the root operation of a chain of retries and reverts (an original is
  its own root), backfilled by walking `retry_of` / `revert_of` up to the root; indexed, since a
  retry selects against the whole lineage and locks its root's row.
- `bulk_operations.selected_at`: when the selection was snapshotted into `bulk_operation_targets`
  (the gate decides on that snapshot; a filter is never evaluated again after it).
- `bulk_streams`: one row per open event stream (per tenant, across API processes), with its expiry.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bulk_operations", sa.Column("lineage_id", sa.UUID(), nullable=True))
    op.add_column("bulk_operations", sa.Column("selected_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        WITH RECURSIVE chain(id, root) AS (
            SELECT id, id FROM bulk_operations WHERE retry_of IS NULL AND revert_of IS NULL
            UNION ALL
            SELECT o.id, c.root FROM bulk_operations o
            JOIN chain c ON c.id = coalesce(o.retry_of, o.revert_of)
        )
        UPDATE bulk_operations b SET lineage_id = chain.root FROM chain WHERE b.id = chain.id
        """
    )
    # A chain whose root is gone (never, but a partial copy of the data could have one): its own root.
    op.execute("UPDATE bulk_operations SET lineage_id = id WHERE lineage_id IS NULL")
    # Operations whose targets exist were snapshotted already: never evaluate their filter again.
    op.execute(
        "UPDATE bulk_operations b SET selected_at = coalesce(b.started_at, b.created_at) "
        "WHERE EXISTS (SELECT 1 FROM bulk_operation_targets t WHERE t.operation_id = b.id)"
    )
    op.alter_column("bulk_operations", "lineage_id", nullable=False)
    op.create_index("ix_bulk_operations_lineage", "bulk_operations", ["lineage_id"], unique=False)
    op.create_table(
        "bulk_streams",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bulk_streams_tenant", "bulk_streams", ["tenant_id", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bulk_streams_tenant", table_name="bulk_streams")
    op.drop_table("bulk_streams")
    op.drop_index("ix_bulk_operations_lineage", table_name="bulk_operations")
    op.drop_column("bulk_operations", "selected_at")
    op.drop_column("bulk_operations", "lineage_id")
