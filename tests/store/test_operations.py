"""The `bulk_operations` repository: a new row is written from its `NewOperation` as given and read back
typed; `remove_unstarted` removes only an operation that never started."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bulkops.domain.model import OperationStatus, OperationType
from bulkops.domain.people import Actor
from bulkops.store.operations import (
    NewOperation,
    by_idempotency_key,
    get_operation,
    insert_operation,
    remove_unstarted,
)
from bulkops.store.selection import insert_ids
from bulkops.store.tables import OPERATIONS, TARGETS
from tests.harness import Harness


def new_operation(tenant_id: str, **kw: object) -> NewOperation:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "operation_type": OperationType.BULK_REFUND,
        "parameters": {"amount_cents": 100},
        "selection": {"order_ids_count": 2},
        "max_concurrency": 4,
        "failure_threshold": None,
        "initiated_by": "olga",
        "created_by": Actor(name="olga", key_id=str(uuid.uuid4()), user_id=str(uuid.uuid4())),
        "notify_url": None,
        "idempotency_key": "key-1",
        "request_hash": "h" * 64,
        "total_count": 2,
    }
    values.update(kw)
    return NewOperation(**values)  # type: ignore[arg-type]


async def test_a_new_row_reads_back_as_written(harness: Harness) -> None:
    t = await harness.tenant("repo")
    start_at = datetime.now(UTC) + timedelta(hours=1)
    new = new_operation(t.id, status=OperationStatus.SCHEDULED, start_at=start_at, max_orders_per_second=2.5)
    async with harness.sessionmaker() as session, session.begin():
        written = await insert_operation(session, new)
    async with harness.sessionmaker() as session:
        read = await get_operation(session, t.id, new.id)
        by_key = await by_idempotency_key(session, t.id, "key-1")
        other_tenant = await get_operation(session, "no-such-tenant", new.id)
    assert read == written == by_key
    assert read is not None and other_tenant is None
    assert (read.status, read.operation_type) == (OperationStatus.SCHEDULED, OperationType.BULK_REFUND)
    assert isinstance(read.status, OperationStatus) and isinstance(read.operation_type, OperationType)
    assert (read.start_at, read.max_orders_per_second, read.total_count) == (start_at, 2.5, 2)
    assert read.lineage_id == new.id  # an original is its own root
    assert read.workflow_id.endswith(str(new.id))
    assert (str(read.created_by_key_id), str(read.created_by_user_id)) == (
        new.created_by.key_id,
        new.created_by.user_id,
    )
    assert read.created_by is not None and Actor.model_validate(read.created_by) == new.created_by
    assert (read.processed_count, read.errors, read.approval, read.ended) == (0, [], None, False)


async def test_remove_unstarted_removes_only_an_operation_that_never_started(harness: Harness) -> None:
    t = await harness.tenant("remove_unstarted")
    waiting, running = new_operation(t.id, idempotency_key=None), new_operation(t.id, idempotency_key=None)
    async with harness.sessionmaker() as session, session.begin():
        for new in (waiting, running):
            await insert_operation(session, new)
            await insert_ids(session, new.id, [uuid.uuid4(), uuid.uuid4()])
        await session.execute(
            update(OPERATIONS).where(OPERATIONS.c.id == running.id).values(status=OperationStatus.PROCESSING)
        )
    async with harness.sessionmaker() as session, session.begin():
        await remove_unstarted(session, waiting.id)
        await remove_unstarted(session, running.id)
    async with harness.sessionmaker() as session:
        kept = await session.scalars(select(OPERATIONS.c.id).where(OPERATIONS.c.tenant_id == t.id))
        targets = dict(
            (
                await session.execute(
                    select(TARGETS.c.operation_id, func.count())
                    .where(TARGETS.c.operation_id.in_([waiting.id, running.id]))
                    .group_by(TARGETS.c.operation_id)
                )
            ).all()
        )
    assert list(kept) == [running.id]
    assert targets == {running.id: 2}
