"""Per-tenant fairness: one long-lived coordinator workflow per tenant hands out running slots.

Operations ask for a slot (signal-with-start from an activity), wait for a `grant` signal, and give
the slot back with `release` when they end. The queue and the running set live in workflow state, so
a worker or server restart neither loses a slot nor grants two.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import workflow

from activities.contracts import CLOSED_SLOT_HOLDERS
from bulkops.domain.model import operation_workflow_id
from workflows.contracts import (
    COORDINATOR_WORKFLOW,
    GRANT_SIGNAL,
    RELEASE_SIGNAL,
    REQUEST_SIGNAL,
    CoordinatorState,
    HolderCheck,
    SlotRequest,
)

COORDINATOR_HISTORY_LIMIT = 2_000


# Unsandboxed like BulkOperationWorkflow (and so no sandbox warm-up when a worker starts); it holds
# only a queue and a set, and its histories replay in the fairness test.
@workflow.defn(name=COORDINATOR_WORKFLOW, sandboxed=False)
class TenantCoordinatorWorkflow:
    @workflow.init
    def __init__(self, state: CoordinatorState) -> None:
        self.state = state

    @workflow.signal(name=REQUEST_SIGNAL)
    def request(self, req: SlotRequest) -> None:
        if req.max_running:
            self.state.max_running = req.max_running
        if req.holder_check_s:
            self.state.holder_check_s = req.holder_check_s
        # Idempotent: an activity retry may signal the same request twice.
        queued = {q.operation_id for q in self.state.queue}
        if req.operation_id not in self.state.running and req.operation_id not in queued:
            self.state.queue.append(req)
            self.state.queue.sort(key=lambda q: (q.created_at is None, q.created_at, str(q.operation_id)))

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, operation_id: uuid.UUID) -> None:
        if operation_id in self.state.running:
            self.state.running.remove(operation_id)
        self.state.queue = [q for q in self.state.queue if q.operation_id != operation_id]

    @workflow.query
    def snapshot(self) -> CoordinatorState:
        return self.state

    def _grantable(self) -> bool:
        return bool(self.state.queue) and len(self.state.running) < self.state.max_running

    def _blocked(self) -> bool:
        return bool(self.state.queue) and not self._grantable()

    async def _reclaim_slots(self) -> None:
        """Free the slots of holders that no longer run: `release` never comes from an operation that
        was terminated from outside, and without this its tenant would wait behind it forever."""
        closed = await workflow.execute_activity(
            CLOSED_SLOT_HOLDERS,
            HolderCheck(operation_ids=list(self.state.running)),
            result_type=list[uuid.UUID],
            start_to_close_timeout=timedelta(seconds=30),
        )
        for op_id in closed:
            if op_id in self.state.running:
                workflow.logger.warning("operation %s no longer runs; freeing its slot", op_id)
                self.state.running.remove(op_id)

    def _history_full(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > COORDINATOR_HISTORY_LIMIT
        )

    @workflow.run
    async def run(self, state: CoordinatorState) -> None:
        while True:
            blocked = self._blocked()

            def woken(was: bool = blocked) -> bool:
                # A change of `blocked` wakes it too: it decides the timeout (the holder check runs
                # only while someone waits).
                return self._grantable() or self._history_full() or self._blocked() != was

            try:
                await workflow.wait_condition(
                    woken,
                    timeout=timedelta(seconds=self.state.holder_check_s) if blocked else timedelta(hours=1),
                )
            except TimeoutError:
                if self._blocked():
                    await self._reclaim_slots()
            while self._grantable():
                op_id = self.state.queue.pop(0).operation_id
                self.state.running.append(op_id)
                try:
                    await workflow.get_external_workflow_handle(operation_workflow_id(op_id)).signal(
                        GRANT_SIGNAL
                    )
                except Exception:  # the operation is gone (terminated): its slot is free again
                    workflow.logger.warning("could not grant a slot to %s; freeing it", op_id)
                    self.state.running.remove(op_id)
            if self._history_full():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
