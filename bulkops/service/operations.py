"""Accepting operations: idempotent create (row + snapshot + workflow start), dry runs and retries.

Nothing is half-started: the row (and an explicit id list) commit in one transaction, the workflow
start is idempotent by its id, and a start that fails removes the row again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from bulkops.domain.audit import AuditAction
from bulkops.domain.model import ItemStatus, OperationStatus, OperationType, operation_workflow_id
from bulkops.domain.people import Actor
from bulkops.domain.records import ItemRecord, OperationRecord
from bulkops.domain.requests import BulkOperationCreate, ExportParameters
from bulkops.domain.views import BulkOperationRead, DryRunRead
from bulkops.infra.metrics import record_started
from bulkops.infra.netpolicy import Resolver, check_webhook_url
from bulkops.service import listing
from bulkops.service.dry_run import dry_run
from bulkops.service.errors import Conflict, Gone, NotFound, Unavailable
from bulkops.service.failures import failures_by_code
from bulkops.service.feeds import Feeds
from bulkops.service.gates import gate_of
from bulkops.service.limits import admit
from bulkops.service.reads import ProgressReader
from bulkops.service.retrying import RetryRequest, insert_retry
from bulkops.service.starting import start_workflow
from bulkops.settings import Settings
from bulkops.store.audit import insert_event
from bulkops.store.gating import hold_on_targets
from bulkops.store.operations import (
    NewOperation,
    by_idempotency_key,
    get_operation,
    insert_operation,
    remove_unstarted,
)
from bulkops.store.selection import insert_ids, snapshot

STREAM_POLL_S = 0.25  # an operation's feed reads it at most four times a second
log = logging.getLogger(__name__)


def request_hash(body: BulkOperationCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _created_detail(row: OperationRecord) -> dict[str, Any]:
    # Only what is known: a filter's count comes with its snapshot, most operations have no start_at.
    detail: dict[str, Any] = {"status": row.status, "operation_type": row.operation_type}
    if row.total_count:
        detail["total_count"] = row.total_count
    if row.start_at:
        detail["start_at"] = row.start_at.isoformat()
    if row.approval:
        detail["approval_reasons"] = row.approval.get("reasons")
    return detail


@dataclass(frozen=True)
class Accepted:
    row: OperationRecord
    created: bool


class OperationService:
    def __init__(self, sessionmaker: async_sessionmaker, client: Client, settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.client = client
        self.settings = settings
        self.reads = ProgressReader(client, settings)
        self.feeds = Feeds(
            STREAM_POLL_S, sessionmaker, settings.max_streams_per_tenant, settings.stream_max_s
        )

    async def get_row(self, tenant_id: str, operation_id: uuid.UUID) -> OperationRecord:
        async with self.sessionmaker() as session:
            row = await get_operation(session, tenant_id, operation_id)
        if row is None:
            raise NotFound
        return row

    async def create(
        self,
        tenant_id: str,
        body: BulkOperationCreate,
        *,
        initiated_by: str,
        idempotency_key: str | None,
        actor: Actor | None = None,
    ) -> Accepted:
        digest = request_hash(body)
        if idempotency_key:
            existing = await self._by_idempotency_key(tenant_id, idempotency_key)
            if existing is not None:
                return await self._replay(existing, digest)
        if body.notify_url is not None:
            resolver = Resolver(self.settings.webhook_dns_server, self.settings.webhook_dns_port)
            await check_webhook_url(
                str(body.notify_url),
                allow_private=self.settings.webhook_allow_private,
                ports=self.settings.webhook_port_set,
                resolver=resolver,
            )
        selection: dict[str, Any] = (
            {"order_ids_count": len(body.order_ids)}
            if body.order_ids is not None
            else {"filter": body.filter.model_dump(mode="json", exclude_none=True) if body.filter else {}}
        )
        actor = actor or Actor()
        op_id = uuid.uuid4()
        try:
            async with self.sessionmaker() as session, session.begin():
                gate = await gate_of(session, tenant_id, body)
                await admit(session, tenant_id, body.max_concurrency, self.settings)
                new = NewOperation(
                    id=op_id,
                    tenant_id=tenant_id,
                    operation_type=body.operation_type,
                    parameters=body.parameters,
                    selection=selection,
                    max_concurrency=body.max_concurrency,
                    failure_threshold=body.failure_threshold.model_dump() if body.failure_threshold else None,
                    initiated_by=initiated_by,
                    created_by=actor,
                    notify_url=str(body.notify_url) if body.notify_url else None,
                    idempotency_key=idempotency_key,
                    request_hash=digest,
                    status=gate.status,
                    start_at=gate.start_at,
                    max_orders_per_second=gate.max_orders_per_second,
                    total_count=len(body.order_ids) if body.order_ids is not None else 0,
                )
                row = await insert_operation(session, new)
                if body.order_ids is not None:
                    await insert_ids(session, op_id, body.order_ids)
                if body.order_ids is not None or gate.snapshot_now:
                    # Its targets are fixed now: the gate decides on exactly them.
                    row = await hold_on_targets(session, await snapshot(session, row), actor.name)
                await insert_event(
                    session, op_id, "created", AuditAction.CREATED, actor, _created_detail(row)
                )
        except IntegrityError:
            # Two requests with one Idempotency-Key raced; the other one won.
            existing = await self._by_idempotency_key(tenant_id, idempotency_key or "")
            if existing is None:
                raise
            return await self._replay(existing, digest)
        return await self.start_accepted(row, created=True)

    async def retry(
        self,
        tenant_id: str,
        original_id: uuid.UUID,
        *,
        all_failed: bool,
        initiated_by: str,
        actor: Actor | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        req = RetryRequest(
            tenant_id, original_id, all_failed, initiated_by, actor or Actor(), idempotency_key
        )
        row, created = await insert_retry(self.sessionmaker, self.settings, req)
        return await self.start_accepted(row, created=created)

    async def dry_run(self, tenant_id: str, body: BulkOperationCreate) -> DryRunRead:
        async with self.sessionmaker() as session:
            return await dry_run(session, tenant_id, body)

    async def observe(self, row: OperationRecord, base: str = "") -> BulkOperationRead:
        """What a reader is told (`GET …/{id}` and the events stream): the summary once ended, the live
        counters while running, else the row's checkpoint; never fewer processed orders than before."""
        if row.ended:
            return self.reads.view(row, None, base)
        live = await self.reads.query(row.id)
        if live is not None and not live.status.terminal:
            return self.reads.view(row, live, base)
        # The checkpoint as it is now, not as it was before the wait; or the summary row, which is
        # written before the workflow shows its end.
        current = await self.get_row(row.tenant_id, row.id)
        return self.reads.view(current, None, base)

    def follow(self, row: OperationRecord, base: str = "") -> AsyncIterator[BulkOperationRead]:
        """The operation's views as they change, the final view last, for any number of event
        streams: one poller per operation in this process reads it as `observe` does."""
        current: OperationRecord | None = (
            None  # the row as the request found it first, then as it is at each read
        )

        async def observe() -> BulkOperationRead:
            nonlocal current
            current = row if current is None else await self.get_row(row.tenant_id, row.id)
            return await self.observe(current, base)

        return self.feeds.follow(row.id, base, observe)

    async def list_operations(
        self,
        tenant_id: str,
        *,
        status: OperationStatus | None,
        operation_type: OperationType | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[OperationRecord], str | None]:
        return await listing.list_operations(
            self.sessionmaker,
            tenant_id,
            status=status,
            operation_type=operation_type,
            limit=limit,
            cursor=cursor,
        )

    async def list_items(
        self,
        tenant_id: str,
        operation_id: uuid.UUID,
        *,
        status: ItemStatus | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[ItemRecord], str | None]:
        await self.get_row(tenant_id, operation_id)
        return await listing.list_items(
            self.sessionmaker, operation_id, status=status, limit=limit, cursor=cursor
        )

    async def failures_by_code(self, tenant_id: str, operation_id: uuid.UUID) -> list[tuple[str, int, int]]:
        await self.get_row(tenant_id, operation_id)
        return await failures_by_code(self.sessionmaker, operation_id)

    async def export(
        self, tenant_id: str, operation_id: uuid.UUID
    ) -> tuple[ExportParameters, AsyncIterator[Any]]:
        """An ended export's parameters and its kept rows, page by page."""
        row = await self.get_row(tenant_id, operation_id)
        if row.operation_type is not OperationType.BULK_EXPORT:
            raise Conflict(f"only BULK_EXPORT operations have a download; this one is {row.operation_type}")
        if not row.ended:
            raise Conflict(f"the export is ready once the operation has ended; it is {row.status}")
        if row.purged_at is not None:
            # An empty file would read as "nothing matched": say that the rows are gone.
            raise Gone(f"the exported rows were deleted by retention on {row.purged_at:%Y-%m-%d}")
        return ExportParameters.model_validate(row.parameters), listing.export_rows(self.sessionmaker, row.id)

    def handle(self, operation_id: uuid.UUID) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(operation_workflow_id(operation_id))

    # --- internals ---------------------------------------------------------------------------------

    async def _by_idempotency_key(self, tenant_id: str, key: str) -> OperationRecord | None:
        async with self.sessionmaker() as session:
            return await by_idempotency_key(session, tenant_id, key)

    async def _replay(self, existing: OperationRecord, digest: str) -> Accepted:
        if existing.request_hash != digest:
            raise Conflict("this Idempotency-Key was already used with a different request body")
        return await self.start_accepted(existing, created=False)

    async def start_accepted(self, row: OperationRecord, *, created: bool) -> Accepted:
        """Start what a create, a retry or a revert accepted. `created`: the row is new, so a start that
        surely failed removes it again. Else the request was repeated (its Idempotency-Key): start the
        workflow a crash between commit and start left unstarted; an operation that ended starts
        nothing (nor does one whose workflow ended: its id is not reused)."""
        if created or not row.ended:
            await self._start(row, new=created)
        return Accepted(row=row, created=created)

    async def _start(self, row: OperationRecord, *, new: bool) -> None:
        """Start the row's workflow. `new`: a start that surely failed removes the row, and one that
        succeeded counts as an operation started."""
        try:
            await start_workflow(self.client, self.settings, row)
        except Exception as exc:
            # The start may have failed after the server took it (a timeout): ask before forgetting.
            exists = await self._workflow_exists(row.id)
            if not exists:
                if exists is False and new:
                    async with self.sessionmaker() as session, session.begin():
                        await remove_unstarted(session, row.id)
                log.warning("operation %s: its workflow did not start: %s", row.id, exc)
                if exists is None:
                    # Kept: it may have started. If it has not, the worker's sweep starts it (once).
                    raise Unavailable(
                        "the operation is recorded, but Temporal could not confirm its start; it runs "
                        "once: send the request again with its Idempotency-Key to learn its state"
                    ) from exc
                raise Unavailable("the operation could not be started now; send the request again") from exc
            log.warning("operation %s: its start failed (%s), but its workflow runs", row.id, exc)
        if new:
            record_started(row.operation_type)
            log.info("operation %s (%s) started for tenant %s", row.id, row.operation_type, row.tenant_id)

    async def _workflow_exists(self, operation_id: uuid.UUID) -> bool | None:
        """Whether the operation's workflow exists (None: Temporal cannot say now)."""
        try:
            async with asyncio.timeout(self.settings.start_timeout_s):
                await self.handle(operation_id).describe(
                    rpc_timeout=timedelta(seconds=self.settings.start_timeout_s)
                )
        except RPCError as err:
            return False if err.status == RPCStatusCode.NOT_FOUND else None
        except Exception:
            return None
        return True
