"""The books, checked from PostgreSQL and Temporal once the faults have stopped and everything has
settled: each invariant counts its checks and its violations (with a few examples)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from bulkops.chaos.book import Book
from bulkops.chaos.client import Journal
from bulkops.chaos.readers import ReaderLog
from bulkops.chaos.receiver import Receiver
from bulkops.chaos.traffic import ChaosTenant, OrderBefore
from bulkops.domain.model import TERMINAL_STATUSES, operation_workflow_id

EXAMPLES = 5
# Audit actions an operation has at most once (pause and resume may repeat).
ONCE = ("created", "approved", "rejected", "expired", "scheduled", "started", "cancelled", "ended")
THRESHOLD = "FAILURE_THRESHOLD_EXCEEDED"


@dataclass
class Verdict:
    checks: int = 0
    violations: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        self.checks += 1
        if not ok:
            self.violations.append(what)

    def summary(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "violations": len(self.violations),
            **({"examples": self.violations[:EXAMPLES]} if self.violations else {}),
        }


async def _rows(sessionmaker: async_sessionmaker, sql: str, **params: Any) -> list[Any]:
    async with sessionmaker() as session:
        return list((await session.execute(text(sql), params)).all())


@dataclass
class Books:
    """Everything the checks read, fetched once."""

    operations: dict[uuid.UUID, Any]
    items: list[Any]
    targets: Counter[uuid.UUID]
    refunds: list[Any]
    orders: dict[uuid.UUID, Any]
    events: list[Any]

    @classmethod
    async def load(cls, sessionmaker: async_sessionmaker, tenant_ids: list[str]) -> Books:
        scope = {"tenants": tenant_ids}
        ops = await _rows(
            sessionmaker, "SELECT * FROM bulk_operations WHERE tenant_id = ANY(:tenants)", **scope
        )
        ids = [op.id for op in ops]
        items = await _rows(
            sessionmaker, "SELECT * FROM bulk_operation_items WHERE operation_id = ANY(:ids)", ids=ids
        )
        targets = await _rows(
            sessionmaker,
            "SELECT operation_id, count(*) AS n FROM bulk_operation_targets WHERE operation_id = ANY(:ids) "
            "GROUP BY operation_id",
            ids=ids,
        )
        refunds = await _rows(sessionmaker, "SELECT * FROM refunds WHERE tenant_id = ANY(:tenants)", **scope)
        orders = await _rows(sessionmaker, "SELECT * FROM orders WHERE tenant_id = ANY(:tenants)", **scope)
        events = await _rows(
            sessionmaker, "SELECT * FROM bulk_operation_events WHERE operation_id = ANY(:ids)", ids=ids
        )
        return cls(
            {op.id: op for op in ops},
            items,
            Counter({t.operation_id: t.n for t in targets}),
            refunds,
            {o.id: o for o in orders},
            events,
        )


def effects_once(b: Books, before: dict[uuid.UUID, OrderBefore]) -> Verdict:
    """Every order's effects happened at most once per operation and exactly as its outcome says."""
    v = Verdict()
    refunds = {(r.operation_id, r.order_id): r for r in b.refunds}
    refunded_by_order: Counter[uuid.UUID] = Counter()
    for r in b.refunds:
        refunded_by_order[r.order_id] += r.amount_cents
    succeeded: Counter[tuple[str, uuid.UUID]] = Counter()
    refund_items = set()
    for item in b.items:
        op = b.operations[item.operation_id]
        if item.status == "SUCCEEDED":
            succeeded[(op.operation_type, item.order_id)] += 1
        if op.operation_type != "BULK_REFUND":
            continue
        refund = refunds.get((item.operation_id, item.order_id))
        if item.status == "SUCCEEDED":
            refund_items.add((item.operation_id, item.order_id))
            amount = (item.result or {}).get("amount_cents")
            v.check(
                refund is not None and refund.amount_cents == amount,
                f"refund of {item.order_id} in {item.operation_id}: outcome {amount}, "
                f"refunded {refund.amount_cents if refund else None}",
            )
        else:
            v.check(refund is None, f"failed refund outcome {item.order_id} in {item.operation_id} refunded")
    for key in refunds:
        v.check(key in refund_items, f"refund without a succeeded outcome: {key}")
    for order_id, o in b.orders.items():
        was = before[order_id]
        v.check(
            o.refunded_cents == was.refunded_cents + refunded_by_order[order_id],
            f"order {order_id}: refunded_cents {o.refunded_cents}, expected "
            f"{was.refunded_cents} + {refunded_by_order[order_id]}",
        )
        cancels = succeeded[("BULK_CANCEL", order_id)]
        v.check(
            cancels <= (0 if was.status == "CANCELLED" else 1),
            f"order {order_id} ({was.status} before): cancelled {cancels} times",
        )
        v.check(cancels == 0 or o.status == "CANCELLED", f"order {order_id} cancelled but {o.status}")
    return v


def final_status(op: Any) -> str:
    if op.failed_count == 0:
        return "COMPLETED"
    return "PARTIAL_SUCCESS" if op.success_count > 0 else "FAILED"


def summaries_match_items(b: Books) -> Verdict:
    """Each ended operation's summary row equals its outcome rows (counts, codes, the status rule),
    and every selected order has exactly one outcome unless the operation was stopped early."""
    v = Verdict()
    by_op: dict[uuid.UUID, Counter[str]] = defaultdict(Counter)
    codes: dict[uuid.UUID, set[str]] = defaultdict(set)
    for item in b.items:
        by_op[item.operation_id][item.status] += 1
        if item.error_code:
            codes[item.operation_id].add(item.error_code)
    for op in b.operations.values():
        if op.status not in TERMINAL_STATUSES:
            continue
        n = by_op[op.id]
        v.check(
            (op.success_count, op.failed_count, op.processed_count)
            == (n["SUCCEEDED"], n["FAILED"], n["SUCCEEDED"] + n["FAILED"]),
            f"{op.id} {op.status}: summary {op.success_count}/{op.failed_count}/{op.processed_count}, "
            f"items {n['SUCCEEDED']}/{n['FAILED']}",
        )
        sample = {e["code"] for e in (op.errors or [])}
        v.check(sample <= codes[op.id], f"{op.id}: error sample codes {sample} not among {codes[op.id]}")
        if op.status != "CANCELLED" and op.failure_reason != THRESHOLD:
            v.check(op.status == final_status(op), f"{op.id}: {op.status}, the rule says {final_status(op)}")
            v.check(
                op.processed_count == b.targets[op.id] == op.total_count,
                f"{op.id} {op.status}: {op.processed_count} outcomes, {b.targets[op.id]} targets, "
                f"total {op.total_count}",
            )
    return v


def ended(b: Books, book: Book) -> Verdict:
    """Every operation the soak started, and every one in the database, has ended."""
    v = Verdict()
    for op_id in book.operations:
        v.check(uuid.UUID(op_id) in b.operations, f"{op_id}: acknowledged but has no row")
    for op in b.operations.values():
        v.check(op.status in TERMINAL_STATUSES, f"{op.id} still {op.status}")
    for first, second in book.same_key_answers:
        v.check(first == second, f"one Idempotency-Key answered with two operations {first}, {second}")
    return v


async def workflows_closed(client: Client, b: Books, within_s: float = 90) -> Verdict:
    """Every operation's workflow closes: after its summary row it may still be delivering the
    completion webhook (retried with backoff), so each gets until the shared deadline."""
    v = Verdict()
    deadline = time.monotonic() + within_s
    for op in b.operations.values():
        handle = client.get_workflow_handle(operation_workflow_id(op.id))
        while (status := (await handle.describe()).status) == WorkflowExecutionStatus.RUNNING:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        v.check(
            status != WorkflowExecutionStatus.RUNNING, f"{op.id}: row {op.status}, workflow still running"
        )
    return v


def audit_once(b: Books, book: Book) -> Verdict:
    """Each audit action exactly once: once-only actions at most once, `created` and `ended` once,
    and each acknowledged control exactly as often as it was acknowledged."""
    v = Verdict()
    actions: dict[uuid.UUID, Counter[str]] = defaultdict(Counter)
    for e in b.events:
        actions[e.operation_id][e.action] += 1
    for op in b.operations.values():
        got = actions[op.id]
        for action in ONCE:
            v.check(got[action] <= 1, f"{op.id}: {got[action]} '{action}' events")
        v.check(
            got["created"] == 1 and got["ended"] == 1,
            f"{op.id}: created {got['created']}, ended {got['ended']}",
        )
    done = {
        "pause": "paused",
        "resume": "resumed",
        "cancel": "cancelled",
        "approve": "approved",
        "reject": "rejected",
    }
    for (op_id, control), acks in book.acknowledged.items():
        events = actions[uuid.UUID(op_id)][done[control]]
        if (op_id, control) in book.unknown:
            v.check(events >= acks, f"{op_id}: {acks} '{control}' answered 200, {events} events")
        else:
            v.check(events == acks, f"{op_id}: {acks} '{control}' answered 200, {events} events")
    return v


def webhooks_delivered(b: Books, receiver: Receiver, tenants: list[ChaosTenant]) -> Verdict:
    """Each ended operation with a notify_url was delivered at least once, every delivery with the
    one event id of its operation, a valid signature and the row's final status."""
    v = Verdict()
    secrets = {t.id: t.webhook_secret for t in tenants}
    by_op: dict[str, list[Any]] = defaultdict(list)
    for d in receiver.deliveries:
        by_op[d.headers.get("x-bulkops-delivery", "")].append(d)
    for op in b.operations.values():
        if not op.notify_url or op.status not in TERMINAL_STATUSES:
            continue
        got = by_op.pop(str(op.id), [])
        v.check(bool(got), f"{op.id} ({op.status}): no webhook delivered")
        for d in got:
            body = json.loads(d.body)
            v.check(
                body["id"] == str(op.id) and body["status"] == op.status,
                f"{op.id}: delivery says {body['id']} {body['status']}, row {op.status}",
            )
            parts = dict(
                p.split("=", 1) for p in d.headers.get("x-bulkops-signature", "").split(",") if "=" in p
            )
            mac = hmac.new(
                secrets[op.tenant_id].encode(), f"{parts.get('t')}.".encode() + d.body, hashlib.sha256
            ).hexdigest()
            v.check(hmac.compare_digest(mac, parts.get("v1", "")), f"{op.id}: bad signature")
    for unknown in by_op:
        v.check(False, f"a delivery for {unknown!r}, which is no ended operation with a notify_url")
    return v


def answers_honest(journal: Journal) -> Verdict:
    """During outages: 503 with Retry-After (problem+json), or no answer at all from a killed
    process — never another 5xx."""
    v = Verdict()
    for a in journal.answers:
        v.check(
            a.status < 500 or (a.status == 503 and a.retry_after is not None and a.problem_json),
            f"{a.route} answered {a.status} (Retry-After {a.retry_after})",
        )
    return v


async def check_all(
    sessionmaker: async_sessionmaker,
    client: Client,
    book: Book,
    before: dict[uuid.UUID, OrderBefore],
    tenants: list[ChaosTenant],
    receiver: Receiver,
    readers: ReaderLog,
    journal: Journal,
) -> dict[str, Verdict]:
    b = await Books.load(sessionmaker, [t.id for t in tenants])
    return {
        "effects_once": effects_once(b, before),
        "summary_equals_outcomes": summaries_match_items(b),
        "every_operation_ended": ended(b, book),
        "workflows_closed": await workflows_closed(client, b),
        "audit_exactly_once": audit_once(b, book),
        "webhooks_delivered": webhooks_delivered(b, receiver, tenants),
        "readers_never_backwards": Verdict(readers.checks, readers.violations),
        "outage_answers_503": answers_honest(journal),
    }
