"""`BulkOperationWorkflow`: one durable bulk operation, one retryable activity per order.

Deterministic code only. The selection lives in Postgres; the workflow walks it in pages with a
sliding window of at most `max_concurrency` activities, keeps the counters in its state (the
`progress` query), and continues as new — after draining what is in flight, so the carried cursor is
exact — well before a run's history nears 10,000 events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from temporalio import workflow
from temporalio.exceptions import ActivityError

from activities.contracts import (
    FETCH_TARGETS,
    SET_STATUS,
    FetchTargetsInput,
    FetchTargetsResult,
    OrderOutcome,
    SetStatusInput,
    Target,
)
from bulkops.domain.approval import ApprovalStatus
from bulkops.domain.audit import AuditAction
from bulkops.domain.model import FAILURE_THRESHOLD_EXCEEDED, OperationStatus, final_status
from bulkops.domain.people import Actor
from bulkops.domain.views import Progress
from workflows.audit import record
from workflows.bookkeeping import BOOKKEEPING_RETRY, BOOKKEEPING_TIMEOUT
from workflows.contracts import (
    BULK_OPERATION_WORKFLOW,
    CANCEL_UPDATE,
    GRANT_SIGNAL,
    PAUSE_UPDATE,
    PROGRESS_QUERY,
    RESUME_UPDATE,
    BulkOperationInput,
    RunState,
)
from workflows.endings import Ending, finalize, notify, release_slot, request_slot
from workflows.gates import Gates, InvalidTransition, initial_status
from workflows.order_steps import count_outcome, run_order, threshold_exceeded
from workflows.pacing import Pacer, run_budget_spent, sleep_unless
from workflows.progress import ProgressTracker
from workflows.search_attributes import OPERATION_STATUS

# A release's `workflow.patched` id (README, "Releasing a workflow change"): pause, resume and cancel
# write their row and audit event in the order they were taken, and a pause that a resume overtakes
# answers then. Operations started before it replay the old handlers; the old branches can go
# (`deprecate_patch`) once none of those is running.
CONTROLS_IN_ORDER = "controls-in-order"
# The pace by ticks (`workflows.pacing`): whether a paced walk waits follows from events, not the clock.
PACE_BY_TICKS = "pace-by-ticks"


# Unsandboxed: the sandbox re-enters its exec'd module for every payload the workflow encodes (a
# third of the worker's CPU at a few hundred orders/s). Determinism is kept by construction (only
# stdlib, temporalio and our models here; time and ids from `workflow`) and checked by the replay test.
@workflow.defn(name=BULK_OPERATION_WORKFLOW, sandboxed=False)
class BulkOperationWorkflow(Gates):
    @workflow.init
    def __init__(self, inp: BulkOperationInput) -> None:
        self.inp = inp
        self.state: RunState = inp.state.model_copy() if inp.state else RunState(status=initial_status(inp))
        first_run = inp.state is None and inp.approval_expires_at is not None
        self.approval = ApprovalStatus.PENDING if first_run else None
        self.pacer = Pacer(inp.max_orders_per_second, self.state)
        self.tracker = ProgressTracker(self.state)
        self.in_flight = 0
        self.ending = Ending()
        # Audit events being written by update handlers: the ending waits for them, so `ended` is last.
        self.recording = 0
        # Pause, resume and cancel write their change one at a time (`_control_turn`).
        self.controls = asyncio.Lock()
        self.page: deque[Target] = deque()
        self.scheduled_this_run = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.run_start_length = 0

    # --- queries and updates ----------------------------------------------------------------------

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        info = workflow.info()
        return self.tracker.snapshot(self.inp, self.in_flight, info.run_id, info.get_current_history_length())

    @workflow.signal(name=GRANT_SIGNAL)
    def grant(self) -> None:
        self.state.slot_granted = True

    @workflow.update(name=PAUSE_UPDATE)
    async def pause(self, actor: Actor | None = None) -> Progress:
        self.tracker.set_status(OperationStatus.PAUSED, workflow.now())
        if not workflow.patched(CONTROLS_IN_ORDER):
            await workflow.wait_condition(lambda: self.in_flight == 0)
            await self._persist_status()
            await self._audit(AuditAction.PAUSED, actor, {"processed_count": self.state.processed_count})
            return self.progress()
        async with self._control_turn():
            await self._persist_status(OperationStatus.PAUSED)
            await record(self.inp, AuditAction.PAUSED, actor, {"processed_count": self.state.processed_count})
        # Answer once in-flight orders have finished, so counters are frozen when the caller reads them;
        # or once a resume has overtaken it, which readers already see (nothing is frozen then).
        await workflow.wait_condition(
            lambda: self.in_flight == 0 or self.state.status != OperationStatus.PAUSED
        )
        if self.state.status == OperationStatus.PAUSED and not self.ending.finishing:
            # The row's checkpoint holds the frozen counters: readers get them while no worker runs it.
            async with self._control_turn():
                if self.state.status == OperationStatus.PAUSED:
                    await self._persist_status(OperationStatus.PAUSED)
        return self.progress()

    @pause.validator
    def _validate_pause(self, actor: Actor | None = None) -> None:
        if (
            self.state.status != OperationStatus.PROCESSING
            or self.ending.cancel_requested
            or self.ending.finishing
        ):
            raise InvalidTransition(f"cannot pause an operation that is {self._shown_status()}")

    @workflow.update(name=RESUME_UPDATE)
    async def resume(self, actor: Actor | None = None) -> Progress:
        self.tracker.set_status(OperationStatus.PROCESSING, workflow.now())
        self.pacer.resumed(workflow.now())
        detail = {"processed_count": self.state.processed_count}
        if not workflow.patched(CONTROLS_IN_ORDER):
            await self._persist_status()
            await self._audit(AuditAction.RESUMED, actor, detail)
            return self.progress()
        async with self._control_turn():
            await self._persist_status(OperationStatus.PROCESSING)
            await record(self.inp, AuditAction.RESUMED, actor, detail)
        return self.progress()

    @resume.validator
    def _validate_resume(self, actor: Actor | None = None) -> None:
        if (
            self.state.status != OperationStatus.PAUSED
            or self.ending.cancel_requested
            or self.ending.finishing
        ):
            raise InvalidTransition(f"cannot resume an operation that is {self._shown_status()}")

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, actor: Actor | None = None) -> Progress:
        self.ending.cancel_requested = True
        detail = {"status": self.state.status.value}
        if workflow.patched(CONTROLS_IN_ORDER):
            approval = self._withdraw()
            async with self._control_turn():
                await record(self.inp, AuditAction.CANCELLED, actor, detail, approval=approval)
        else:
            await self._audit(AuditAction.CANCELLED, actor, detail, approval=self._withdraw())
        await workflow.wait_condition(lambda: self.ending.finalized)
        return self.progress()

    @cancel.validator
    def _validate_cancel(self, actor: Actor | None = None) -> None:
        if self.state.status.terminal or self.ending.cancel_requested or self.ending.finishing:
            raise InvalidTransition(f"cannot cancel an operation that is {self._shown_status()}")

    @contextlib.asynccontextmanager
    async def _control_turn(self) -> AsyncIterator[None]:
        """One control's writes (the row's status, its audit event) at a time, in the order the
        controls were taken: each takes effect at once, and the next may arrive while this one's are
        still being written. Counted in `recording` from the start, so `ended` stays the last event."""
        self.recording += 1
        try:
            async with self.controls:
                yield
        finally:
            self.recording -= 1

    def _shown_status(self) -> str:
        if self.ending.cancel_requested and not self.ending.finalized:
            return "being cancelled"
        return "finishing" if self.ending.finishing and not self.ending.finalized else self.state.status.value

    # --- the run ------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: BulkOperationInput) -> Progress:
        self.run_start_length = workflow.info().get_current_history_length()
        if inp.state is None:
            await self._pass_gates()
        if inp.state is None and not self.ending.cancel_requested:
            snap = await self._snapshot()
            if snap is not None:
                self.state.total_count = snap.total_count
                self.tracker.touch(workflow.now())
                self.state.started_at = workflow.now()
                # The row first: until it says PROCESSING, the limits count the operation as waiting.
                await self._persist_status(OperationStatus.PROCESSING)
                self.tracker.set_status(OperationStatus.PROCESSING, workflow.now())
                # The row, not this input, has the last word on whether it may start.
                started = {"total_count": self.state.total_count}
                await record(inp, AuditAction.STARTED, detail=started, require_open=True)
        elif self.state.status == OperationStatus.PROCESSING:
            self.tracker.set_status(OperationStatus.PROCESSING, workflow.now())

        # One line a run: where its logs (and its trace, a run's own) pick up after a continue-as-new.
        workflow.logger.info(
            "operation %s: run %s walks from order %s (%s processed)",
            inp.operation_id,
            self.state.runs,
            self.state.cursor_seq,
            self.state.processed_count,
        )
        continue_as_new = False if self.ending.cancel_requested else await self._walk()
        await workflow.wait_condition(lambda: self.in_flight == 0)
        if self.ending.refused is not None:
            raise self.ending.refused  # fails the workflow, having changed nothing
        if continue_as_new and not self.ending.cancel_requested:
            # A cancel that arrives while the handlers drain waits for `finalized`: it ends the run.
            await workflow.wait_condition(
                lambda: self.ending.cancel_requested or workflow.all_handlers_finished()
            )
            if not self.ending.cancel_requested:
                self.tracker.close_run(
                    workflow.now(), workflow.info().get_current_history_length(), continuing=True
                )
                workflow.continue_as_new(inp.model_copy(update={"state": self.state}))
        return await self._finish()

    async def _wait_for_slot(self) -> None:
        if not self.inp.use_fairness or self.state.slot_granted:
            return
        await request_slot(self.inp)
        await workflow.wait_condition(lambda: self.state.slot_granted or self.ending.cancel_requested)

    def _may_schedule(self) -> bool:
        return not (self.ending.cancel_requested or self.ending.threshold_tripped or self.ending.refused)

    async def _walk(self) -> bool:
        """Schedule orders until the selection ends (False) or this run's history is spent (True)."""
        while self._may_schedule():
            if self.state.status == OperationStatus.PAUSED:
                await workflow.wait_condition(
                    lambda: self.state.status != OperationStatus.PAUSED or not self._may_schedule()
                )
                continue
            if run_budget_spent(self.inp, self.run_start_length, self.scheduled_this_run):
                return True
            if not self.page:
                result = await workflow.execute_activity(
                    FETCH_TARGETS,
                    FetchTargetsInput(
                        operation_id=self.inp.operation_id,
                        after_seq=self.state.cursor_seq,
                        limit=self.inp.page_size,
                        checkpoint=self.tracker.checkpoint(workflow.now()),
                    ),
                    result_type=FetchTargetsResult,
                    start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                    retry_policy=BOOKKEEPING_RETRY,
                )
                self.page = deque(result.targets)
                if not self.page:
                    return False
            await workflow.wait_condition(
                lambda: (
                    self.in_flight < self.inp.max_concurrency
                    or self.state.status != OperationStatus.PROCESSING
                    or not self._may_schedule()
                )
            )
            if self.state.status != OperationStatus.PROCESSING or not self._may_schedule():
                continue
            if self.pacer.rate and workflow.patched(PACE_BY_TICKS):
                if not self.pacer.take(workflow.now()):
                    if await sleep_unless(self._pace_cut, self.pacer.until_next_tick(workflow.now())):
                        self.pacer.tick(workflow.now())
                    continue
            elif wait := self.pacer.wait_s(workflow.now()):
                await sleep_unless(self._pace_cut, wait)
                continue
            target = self.page.popleft()
            self.state.cursor_seq = target.seq
            self.scheduled_this_run += 1
            self.in_flight += 1
            # Keep a reference so a running order is never garbage-collected mid-flight.
            task = asyncio.create_task(self._process(target))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return False

    def _pace_cut(self) -> bool:
        """What cuts a pace timer short: a pause, a cancel, a tripped threshold."""
        return self.state.status != OperationStatus.PROCESSING or not self._may_schedule()

    async def _process(self, target: Target) -> None:
        try:
            self._count(await run_order(self.inp, target))
        except ActivityError as err:
            self.ending.refused = err
        finally:
            self.in_flight -= 1

    def _count(self, outcome: OrderOutcome) -> None:
        count_outcome(self.state, outcome)
        if not self.ending.threshold_tripped and threshold_exceeded(self.inp, self.state):
            self.ending.threshold_tripped = True
            self.state.failure_reason = FAILURE_THRESHOLD_EXCEEDED
            workflow.logger.warning("operation %s: failure threshold tripped", self.inp.operation_id)
        self.tracker.touch(workflow.now())

    async def _persist_status(self, status: OperationStatus | None = None) -> None:
        status = status or self.state.status  # by default the one shown
        workflow.upsert_search_attributes([OPERATION_STATUS.value_set(status.value)])
        await workflow.execute_activity(
            SET_STATUS,
            SetStatusInput(
                operation_id=self.inp.operation_id,
                status=status,
                started_at=self.state.started_at,
                checkpoint=self.tracker.checkpoint(workflow.now()),
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    async def _finish(self) -> Progress:
        self.ending.finishing = True
        final = final_status(
            self.state.success_count,
            self.state.failed_count,
            cancelled=self.ending.cancel_requested,
            threshold_tripped=self.ending.threshold_tripped,
        )
        await workflow.wait_condition(lambda: self.recording == 0)
        now = workflow.now()
        await finalize(self.inp, self.state, final, now)
        # Only now does the query report the terminal status: readers then find the summary row.
        self.tracker.set_status(final, now)
        self.tracker.close_run(now, workflow.info().get_current_history_length())
        workflow.upsert_search_attributes([OPERATION_STATUS.value_set(final.value)])
        self.ending.finalized = True
        await self._release_slot()
        if self.inp.notify_url:
            await notify(self.inp)
        return self.progress()

    async def _release_slot(self) -> None:
        if self.inp.use_fairness and (self.state.slot_granted or self.ending.cancel_requested):
            await release_slot(self.inp)
