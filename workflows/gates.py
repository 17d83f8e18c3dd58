"""What an operation waits for before it may touch anything: a second person's approval (the
`approve` / `reject` updates, expiring after the policy's window) and its `start_at`. Both waits are
durable timers; nothing is processed until both gates are open. An operation whose selection is
snapshotted only as it starts is gated on that snapshot then, and may be held for approval there.

A mixin of `BulkOperationWorkflow` (deterministic code only): it uses the workflow's `inp`, run
`state`, progress `tracker`, `ending`, `progress()` and `_persist_status()`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from activities.contracts import SNAPSHOT_SELECTION, SnapshotInput, SnapshotResult
from bulkops.domain.approval import APPROVAL_EXPIRED, APPROVAL_REJECTED, ApprovalStatus, decision_refusal
from bulkops.domain.audit import AuditAction
from bulkops.domain.model import OperationStatus
from bulkops.domain.people import Actor
from bulkops.domain.views import Progress
from workflows.audit import record
from workflows.bookkeeping import BOOKKEEPING_RETRY
from workflows.clock import timer_s
from workflows.contracts import APPROVE_UPDATE, REJECT_UPDATE, BulkOperationInput, RunState
from workflows.endings import Ending
from workflows.progress import ProgressTracker
from workflows.search_attributes import OPERATION_STATUS

# A release's `workflow.patched` id: the start_at and approval gates wait on timers however late their
# task runs, rather than deciding on the clock whether to wait (`workflows.clock`).
GATES_BY_EVENTS = "gates-by-events"

# A snapshot may take minutes (a filter over a large shop), so its attempt's bound is long; its
# heartbeats say it still runs, and an attempt that stops beating (its worker killed, or its task
# lost in transit at a worker's shutdown, temporalio/sdk-rust#1080) is retried after this.
SNAPSHOT_HEARTBEAT = timedelta(seconds=20)


class InvalidTransition(Exception):
    """Raised by an update validator; the API answers 409."""


def initial_status(inp: BulkOperationInput) -> OperationStatus:
    if inp.approval_expires_at is not None:
        return OperationStatus.AWAITING_APPROVAL
    return OperationStatus.SCHEDULED if inp.start_at is not None else OperationStatus.PENDING


class Gates:
    """The gates of `BulkOperationWorkflow` (start_at, approval, the tenant's slot), mixed into it: the
    fields below are the workflow's own, set in its `__init__`."""

    inp: BulkOperationInput
    state: RunState
    tracker: ProgressTracker
    ending: Ending
    approval: ApprovalStatus | None
    recording: int

    def progress(self) -> Progress:
        raise NotImplementedError

    async def _persist_status(self, status: OperationStatus | None = None) -> None:
        raise NotImplementedError

    async def _wait_for_slot(self) -> None:
        raise NotImplementedError

    async def _release_slot(self) -> None:
        raise NotImplementedError

    # --- updates --------------------------------------------------------------------------------------

    @workflow.update(name=APPROVE_UPDATE)
    async def approve(self, actor: Actor) -> Progress:
        self.approval = ApprovalStatus.APPROVED
        # Counted in `recording`: the gate and the ending wait for it (`ended` stays the last event).
        await self._audit(AuditAction.APPROVED, actor, approval=_decision(ApprovalStatus.APPROVED, actor))
        return self.progress()

    @approve.validator
    def _validate_approve(self, actor: Actor) -> None:
        self._check_decision(actor, "approve")

    @workflow.update(name=REJECT_UPDATE)
    async def reject(self, actor: Actor) -> Progress:
        self.approval = ApprovalStatus.REJECTED
        # Counted in `recording`: the gate and the ending wait for it (`ended` stays the last event).
        await self._audit(AuditAction.REJECTED, actor, approval=_decision(ApprovalStatus.REJECTED, actor))
        await workflow.wait_condition(lambda: self.ending.finalized)
        return self.progress()

    @reject.validator
    def _validate_reject(self, actor: Actor) -> None:
        self._check_decision(actor, "reject")

    def _check_decision(self, actor: Actor, verb: str) -> None:
        if (
            self.approval is not ApprovalStatus.PENDING
            or self.ending.cancel_requested
            or self.ending.finalized
        ):
            raise InvalidTransition(f"cannot {verb} an operation that is not awaiting approval")
        refusal = decision_refusal(actor, self.inp.created_by_user_id, self.inp.created_by_key_id, verb)
        if refusal is not None:
            raise InvalidTransition(refusal)

    async def _audit(
        self, action: AuditAction, actor: Actor | None = None, detail: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        self.recording += 1
        try:
            await record(self.inp, action, actor, detail, **kw)
        finally:
            self.recording -= 1

    def _withdraw(self) -> dict[str, Any] | None:
        """Cancelled while awaiting approval: the approval is void (for the row's `approval`)."""
        if self.approval is not ApprovalStatus.PENDING:
            return None
        self.approval = ApprovalStatus.CANCELLED
        return {"status": ApprovalStatus.CANCELLED.value}

    # --- the waits ------------------------------------------------------------------------------------

    async def _pass_gates(self) -> None:
        """Return once the operation may start, or with `cancel_requested` set (cancelled, rejected
        or expired, with `failure_reason` saying which)."""
        if self.approval is ApprovalStatus.PENDING:
            await self._await_approval()
        start_at = self.inp.start_at
        by_events = start_at is not None and workflow.patched(GATES_BY_EVENTS)
        # By events: a `start_at` is waited for even when the first task runs after it (then briefly);
        # whether to wait is not read from the clock (`workflows.clock`), and `scheduled` is recorded.
        if (
            not self.ending.cancel_requested
            and start_at is not None
            and (by_events or start_at > workflow.now())
        ):
            self._show(OperationStatus.SCHEDULED, f"scheduled to start at {start_at.isoformat()}")
            await self._persist_status()
            await record(self.inp, AuditAction.SCHEDULED, detail={"start_at": start_at.isoformat()})
            wait = timer_s(start_at, workflow.now()) if by_events else start_at - workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: self.ending.cancel_requested, timeout=wait, timeout_summary="start_at"
                )
            except TimeoutError:
                pass
        if not self.ending.cancel_requested and self.state.status != OperationStatus.PENDING:
            self._show(OperationStatus.PENDING, "waiting for a slot")
            await self._persist_status()

    async def _snapshot(self) -> SnapshotResult | None:
        """The selection snapshotted once the slot is granted (a queue of waiting operations costs no
        target rows), or None when cancelled first. A filter evaluated only now is gated on what it
        selected: held for approval, the operation gives its slot back while it waits, then queues
        again (its snapshot stays as the approver saw it)."""
        while True:
            await self._wait_for_slot()
            if self.ending.cancel_requested:
                return None
            snap = await workflow.execute_activity(
                SNAPSHOT_SELECTION,
                SnapshotInput(
                    operation_id=self.inp.operation_id,
                    tenant_id=self.inp.tenant_id,
                    operation_type=self.inp.operation_type,
                    parameters=self.inp.parameters,
                ),
                result_type=SnapshotResult,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=SNAPSHOT_HEARTBEAT,
                retry_policy=BOOKKEEPING_RETRY,
            )
            if snap.approval_expires_at is None or self.approval is not None:
                return snap
            await self._release_slot()
            self.state.slot_granted = False
            await self._hold(snap.approval_expires_at)
            if self.ending.cancel_requested:
                return None

    async def _hold(self, expires_at: datetime) -> None:
        """Held for approval when it started (the gate decided on the selection it snapshotted then):
        wait for a decision like an operation held at create, the row already says so."""
        self.approval = ApprovalStatus.PENDING
        workflow.upsert_search_attributes(
            [OPERATION_STATUS.value_set(OperationStatus.AWAITING_APPROVAL.value)]
        )
        await self._await_approval(expires_at, workflow.now())
        if not self.ending.cancel_requested and self.state.status != OperationStatus.PENDING:
            self._show(OperationStatus.PENDING, "waiting for a slot")
            await self._persist_status()

    async def _await_approval(self, deadline: datetime | None = None, since: datetime | None = None) -> None:
        since = since or self.inp.created_at or workflow.now()
        deadline = deadline or self.inp.approval_expires_at or since
        self._show(OperationStatus.AWAITING_APPROVAL, f"awaiting approval since {since.isoformat()}")
        remaining = deadline - workflow.now()
        # By events, an expired window still starts its (brief) timer: not decided on the clock.
        by_events = workflow.patched(GATES_BY_EVENTS)
        try:
            if not by_events and remaining <= timedelta(0):
                raise TimeoutError
            await workflow.wait_condition(
                lambda: self.approval is not ApprovalStatus.PENDING or self.ending.cancel_requested,
                timeout=timer_s(deadline, workflow.now()) if by_events else remaining,
                timeout_summary="approval window",
            )
        except TimeoutError:
            self.approval = ApprovalStatus.EXPIRED
            detail = {"expired_at": deadline.isoformat()}
            await record(self.inp, AuditAction.EXPIRED, detail=detail, approval={"status": "EXPIRED"})
            self._stop(APPROVAL_EXPIRED)
            return
        if self.approval is ApprovalStatus.REJECTED:
            self._stop(APPROVAL_REJECTED)
        # The decision is on the row before the operation goes on: `started` checks it there.
        await workflow.wait_condition(lambda: self.recording == 0)

    def _stop(self, reason: str) -> None:
        self.state.failure_reason = reason
        self.ending.cancel_requested = True

    def _show(self, status: OperationStatus, details: str) -> None:
        self.tracker.set_status(status, workflow.now())
        workflow.set_current_details(f"**{status.value}** · {details}")


def _decision(status: ApprovalStatus, actor: Actor) -> dict[str, Any]:
    return {
        "status": status.value,
        "decided_by": actor.name,
        "decided_by_key_id": actor.key_id,
        "decided_by_user_id": actor.user_id,
        "decided_by_key_name": actor.key_name,
        "decided_by_session_id": actor.session_id,
        "decided_at": workflow.now().isoformat(),
        "comment": actor.comment,
    }
