"""The soak's judges can fail: fed books with a double refund, a summary that disagrees with its
outcomes, an audit event twice or a reader that saw a counter go back, each invariant says so."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

import httpx

from bulkops.chaos.book import Book, SeenOperation
from bulkops.chaos.client import Answer, Journal
from bulkops.chaos.faults import FaultKind, fault_schedule
from bulkops.chaos.invariants import Books, answers_honest, audit_once, effects_once, summaries_match_items
from bulkops.chaos.readers import Sightings
from bulkops.chaos.traffic import OrderBefore, Traffic


def books(refunds: list[Any], items: list[Any], op: Any, order: Any) -> Books:
    return Books({op.id: op}, items, Counter({op.id: len(items)}), refunds, {order.id: order}, [])


def refund_op(**over: Any) -> Any:
    fields = {
        "id": uuid.uuid4(),
        "operation_type": "BULK_REFUND",
        "status": "COMPLETED",
        "success_count": 1,
        "failed_count": 0,
        "processed_count": 1,
        "total_count": 1,
        "errors": [],
        "failure_reason": None,
    }
    return SimpleNamespace(**{**fields, **over})


def test_a_second_refund_of_one_order_is_a_violation() -> None:
    op = refund_op()
    order = SimpleNamespace(id=uuid.uuid4(), refunded_cents=1000, status="REFUNDED")
    item = SimpleNamespace(
        operation_id=op.id,
        order_id=order.id,
        status="SUCCEEDED",
        error_code=None,
        result={"amount_cents": 500},
    )
    before = {order.id: OrderBefore(order.id, 0, "PAID", 0)}
    refund = SimpleNamespace(operation_id=op.id, order_id=order.id, amount_cents=500)
    # The order's books say 1000 refunded, the refunds 500: money moved outside the outcome.
    verdict = effects_once(books([refund], [item], op, order), before)
    assert len(verdict.violations) == 1 and "refunded_cents 1000" in verdict.violations[0]
    order.refunded_cents = 500
    assert effects_once(books([refund], [item], op, order), before).violations == []


def test_a_summary_that_disagrees_with_its_outcomes_is_a_violation() -> None:
    op = refund_op(success_count=2, processed_count=2)
    order = SimpleNamespace(id=uuid.uuid4(), refunded_cents=0, status="PAID")
    item = SimpleNamespace(operation_id=op.id, order_id=order.id, status="SUCCEEDED", error_code=None)
    verdict = summaries_match_items(books([], [item], op, order))
    assert verdict.violations and "summary 2/0/2" in verdict.violations[0]


def test_an_audit_action_twice_and_an_unrecorded_pause_are_violations() -> None:
    op = refund_op()
    event = SimpleNamespace(operation_id=op.id, action="created")
    b = Books(
        {op.id: op},
        [],
        Counter(),
        [],
        {},
        [event, event, SimpleNamespace(operation_id=op.id, action="ended")],
    )
    book = Book()
    book.acknowledged[(str(op.id), "pause")] = 1
    violations = audit_once(b, book).violations
    assert any("2 'created'" in v for v in violations)
    assert any("'pause' answered 200, 0 events" in v for v in violations)


async def test_a_control_answered_503_may_have_taken_effect() -> None:
    # Seed 11, 60 minutes: a pause answered 503 after its 15 s had taken effect (it was resumed and
    # paused again later): two `paused` events for one 200. Such an answer leaves the effect unknown.
    op = refund_op()
    events = [SimpleNamespace(operation_id=op.id, action=a) for a in ("created", "paused", "paused", "ended")]
    b = Books({op.id: op}, [], Counter(), [], {}, events)
    paused = {"status": "PAUSED", "success_count": 0, "failed_count": 0, "total_count": 10}
    answers = iter([httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(200, json=paused)])

    class Answering:
        async def call(self, *args: object, **kw: object) -> httpx.Response:
            return next(answers)

    book = Book()
    seen = SeenOperation(str(op.id), 0, "BULK_REFUND", "PROCESSING")
    traffic = Traffic(Answering(), [], book, "http://127.0.0.1:1", random.Random(0))  # type: ignore[arg-type]
    await traffic._control(seen, "pause", "key")
    await traffic._control(seen, "pause", "key")
    assert (str(op.id), "pause") in book.unknown and book.acknowledged[(str(op.id), "pause")] == 1
    assert audit_once(b, book).violations == []
    book.unknown.clear()  # had the 503 been taken as "did nothing", the second event would be a violation
    assert audit_once(b, book).violations == [f"{op.id}: 1 'pause' answered 200, 2 events"]


def test_counters_going_back_or_a_status_after_the_end_are_violations() -> None:
    seen = Sightings()
    view = {"id": "x", "status": "PROCESSING", "processed_count": 5, "success_count": 5, "failed_count": 0}
    seen.see(view, "poller")
    seen.see({**view, "processed_count": 4, "success_count": 4}, "poller")
    seen.see({**view, "status": "COMPLETED"}, "poller")
    seen.see({**view, "status": "PROCESSING"}, "poller")
    assert len(seen.violations) == 3


def test_a_500_during_an_outage_is_a_violation_and_a_503_with_retry_after_is_not() -> None:
    journal = Journal()
    journal.record(Answer("GET operation", 503, "2", 0, 0, True))
    journal.record(Answer("GET operation", 0, None, 0, 0, False))
    assert answers_honest(journal).violations == []
    journal.record(Answer("GET operation", 500, None, 0, 0, True))
    journal.record(Answer("POST create", 503, None, 0, 0, True))
    assert len(answers_honest(journal).violations) == 2


def test_the_seed_alone_draws_the_schedule_and_every_kind_comes_once_first() -> None:
    first, again = fault_schedule(42, 600, 20), fault_schedule(42, 600, 20)
    assert first == again
    assert fault_schedule(43, 600, 20) != first
    assert {f.kind for f in first[: len(FaultKind)]} == set(FaultKind)
    assert all(0 < f.at_s < 600 for f in first) and 20 <= len(first) <= 45
