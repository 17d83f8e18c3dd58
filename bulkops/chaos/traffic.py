"""The soak's tenants and the steady mix of requests it sends while the faults land: all four
operation types by filter and by id list, double submits of one Idempotency-Key, scheduled and
paced starts, pauses, resumes, cancels, approvals and rejections, retries (of retries) and reverts."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.chaos.book import Book, SeenOperation
from bulkops.chaos.client import Gateway
from bulkops.devstack.seed import seed_orders
from bulkops.service.auth import create_tenant
from bulkops.store.tables import Order

log = logging.getLogger(__name__)

TYPES = ("BULK_CANCEL", "BULK_REFUND", "BULK_UPDATE", "BULK_EXPORT")
STATUSES = ("PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED", "PARTIALLY_REFUNDED")


@dataclass(frozen=True)
class OrderBefore:
    id: uuid.UUID
    tenant: int
    status: str
    refunded_cents: int


@dataclass
class ChaosTenant:
    index: int
    id: str
    admin_key: str
    operator_key: str  # the person who starts operations ("olga")
    approver_key: str  # a second person ("anna"), who approves
    webhook_secret: str
    order_ids: list[uuid.UUID]


async def _person_key(gw: Gateway, admin_key: str, role: str, name: str) -> str:
    user = await gw.until_answered(
        "POST",
        "/v1/tenant/users",
        admin_key,
        "POST users",
        json={"email": f"{name}-{uuid.uuid4().hex[:6]}@chaos.test", "name": name, "role": role},
    )
    assert user is not None and user.status_code == 201, user and user.text
    key = await gw.until_answered(
        "POST",
        "/v1/tenant/keys",
        admin_key,
        "POST keys",
        json={"role": role, "name": name, "user_id": user.json()["id"]},
    )
    assert key is not None and key.status_code == 201, key and key.text
    return str(key.json()["api_key"])


async def make_tenants(
    sessionmaker: async_sessionmaker, gw: Gateway, count: int, orders_each: int, seed: int
) -> tuple[list[ChaosTenant], dict[uuid.UUID, OrderBefore]]:
    """`count` tenants with mixed orders, an operator and an approver each; every other tenant's
    policy sends refunds to approval. Returns them and each order as it was before the soak."""
    tenants: list[ChaosTenant] = []
    before: dict[uuid.UUID, OrderBefore] = {}
    for index in range(count):
        tid = f"chaos-{seed}-{index}-{uuid.uuid4().hex[:6]}"
        async with sessionmaker() as session, session.begin():
            admin_key, secret = await create_tenant(session, tid)
            await seed_orders(session, tid, orders_each)
        async with sessionmaker() as session:
            rows = (await session.execute(select(Order).where(Order.tenant_id == tid))).scalars().all()
        for o in rows:
            before[o.id] = OrderBefore(o.id, index, o.status, o.refunded_cents)
        operator = await _person_key(gw, admin_key, "operator", "olga")
        approver = await _person_key(gw, admin_key, "approver", "anna")
        if index % 2 == 0:
            r = await gw.until_answered(
                "PUT", "/v1/tenant/policy", admin_key, "PUT policy", json={"approval_types": ["BULK_REFUND"]}
            )
            assert r is not None and r.status_code == 200, r and r.text
        tenants.append(ChaosTenant(index, tid, admin_key, operator, approver, secret, [o.id for o in rows]))
    return tenants, before


class Traffic:
    def __init__(
        self, gw: Gateway, tenants: list[ChaosTenant], book: Book, notify_url: str, rng: random.Random
    ) -> None:
        self.gw = gw
        self.tenants = tenants
        self.book = book
        self.notify_url = notify_url
        self.rng = rng
        self.requests = 0

    # --- the mix ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, max_operations: int) -> None:
        """One action at a time, a few a second, until `stop` (or `max_operations` started)."""
        funcs: list[Callable[[], Awaitable[None]]] = [
            self.create,
            self.control,
            self.decide,
            self.retry,
            self.revert,
        ]
        weights = [10, 4, 3, 2, 2]
        while not stop.is_set():
            action = self.rng.choices(funcs, weights)[0]
            if action is self.create and len(self.book.operations) >= max_operations:
                action = self.control
            try:
                await action()
            except Exception:
                log.exception("chaos traffic: %s failed", getattr(action, "__name__", action))
            self.requests += 1
            await asyncio.sleep(self.rng.uniform(0.15, 0.5))

    def _body(self, tenant: ChaosTenant) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(TYPES)
        body: dict[str, Any] = {"operation_type": kind, "notify_url": f"{self.notify_url}/{tenant.index}"}
        if rng.random() < 0.6:
            ids = [str(i) for i in rng.sample(tenant.order_ids, rng.randint(3, 25))]
            if rng.random() < 0.2:
                ids.append(str(uuid.uuid4()))  # not an order: ORDER_NOT_FOUND
            body["order_ids"] = ids
        else:
            body["filter"] = {"statuses": rng.sample(STATUSES, rng.randint(1, 2))}
        if kind == "BULK_CANCEL":
            body["parameters"] = {"reason": "chaos"}
        elif kind == "BULK_REFUND":
            body["parameters"] = {"reason": "chaos"}
            if rng.random() < 0.3:
                body["parameters"]["amount_cents"] = rng.randint(100, 900)
        elif kind == "BULK_UPDATE":
            n = rng.randint(1, 999)
            body["parameters"] = {"add_tags": [f"chaos-{n}"], "set": {"note": f"chaos {n}"}}
        else:
            body["parameters"] = {"format": rng.choice(["csv", "jsonl"])}
        body["max_concurrency"] = rng.randint(2, 12)
        if rng.random() < 0.3:
            body["max_orders_per_second"] = rng.choice([4, 8, 15])
        if rng.random() < 0.15:
            start_at = datetime.now(UTC) + timedelta(seconds=rng.uniform(2, 8))
            body["start_at"] = start_at.isoformat()
        return body

    async def create(self) -> None:
        tenant = self.rng.choice(self.tenants)
        body = self._body(tenant)
        key = uuid.uuid4().hex
        call = self.gw.until_answered(
            "POST", "/v1/bulk-operations", tenant.operator_key, "POST create", json=body, idempotency_key=key
        )
        if self.rng.random() < 0.2:  # a double click: the same request twice at once
            first, second = await asyncio.gather(
                call,
                self.gw.until_answered(
                    "POST",
                    "/v1/bulk-operations",
                    tenant.operator_key,
                    "POST create",
                    json=body,
                    idempotency_key=key,
                ),
            )
            answers = [r for r in (first, second) if r is not None and r.status_code in (200, 202)]
            if len(answers) == 2:
                self.book.same_key_answers.append((answers[0].json()["id"], answers[1].json()["id"]))
        else:
            answers = [r for r in [await call] if r is not None and r.status_code in (200, 202)]
        for r in answers:
            self.book.add(r.json(), tenant.index)

    def _pick(self, ops: list[SeenOperation]) -> SeenOperation | None:
        return self.rng.choice(ops) if ops else None

    async def _control(self, op: SeenOperation, action: str, key: str) -> None:
        # Not repeated on a lost answer: the effect is then unknown, and the books say so. So it is
        # after a 503: a control the workflow took but did not answer within BULKOPS_CONTROL_TIMEOUT_S
        # has taken effect (repeated, it answers 409), one Temporal never got has not.
        r = await self.gw.call(
            "POST", f"/v1/bulk-operations/{op.id}/{action}", key, f"POST {action}", retry_transport=False
        )
        if r is None or r.status_code >= 500:
            self.book.unknown.add((op.id, action))
        elif r.status_code == 200:
            self.book.acknowledged[(op.id, action)] += 1
            op.saw(r.json())

    async def control(self) -> None:
        op = self._pick([o for o in self.book.open() if o.status in ("PENDING", "PROCESSING", "PAUSED")])
        if op is None:
            return
        key = self.tenants[op.tenant].operator_key
        if self.rng.random() < 0.1:
            await self._control(op, "cancel", key)
        else:
            await self._control(op, "resume" if op.status == "PAUSED" else "pause", key)

    async def decide(self) -> None:
        op = self._pick([o for o in self.book.open() if o.status == "AWAITING_APPROVAL"])
        if op is None:
            return
        action = "approve" if self.rng.random() < 0.85 else "reject"
        key = self.tenants[op.tenant].approver_key
        if self.rng.random() < 0.2:  # two approvers' clicks at once: one decides, one gets 409
            await asyncio.gather(self._control(op, action, key), self._control(op, action, key))
        else:
            await self._control(op, action, key)

    async def _make_from(self, op: SeenOperation, what: str, params: dict[str, str] | None = None) -> int:
        """POST a retry or revert of `op` (repeated with its Idempotency-Key while unanswered); the
        answer's status (0: none), and the new operation in the book when one was made."""
        tenant = self.tenants[op.tenant]
        r = await self.gw.until_answered(
            "POST",
            f"/v1/bulk-operations/{op.id}/{what}",
            tenant.operator_key,
            f"POST {what}",
            params=params,
            idempotency_key=uuid.uuid4().hex,
        )
        if r is None:
            return 0
        if r.status_code == 202:
            self.book.add(r.json(), tenant.index)
        return r.status_code

    async def retry(self) -> None:
        # A retry may itself be retried, and one original more than once (the later ones find
        # nothing left, or only what the earlier ones did not cover).
        op = self._pick(
            [o for o in self.book.ended() if o.failed_count > 0 and o.operation_type != "BULK_EXPORT"]
        )
        if op is not None:
            await self._make_from(op, "retry", {"all_failed": "true"})

    async def revert(self) -> None:
        op = self._pick(
            [
                o
                for o in self.book.ended()
                if o.operation_type == "BULK_UPDATE" and o.success_count > 0 and not o.reverted
            ]
        )
        if op is not None and await self._make_from(op, "revert") in (202, 409):
            op.reverted = True

    # --- after the faults ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Let everything end: approve what waits for approval and resume what is paused."""
        for op in self.book.open():
            if op.status == "AWAITING_APPROVAL":
                await self._control(op, "approve", self.tenants[op.tenant].approver_key)
            elif op.status == "PAUSED":
                await self._control(op, "resume", self.tenants[op.tenant].operator_key)
