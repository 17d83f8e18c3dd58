"""Counters, rate and what the Temporal UI shows, kept beside the workflow's run state.

Time comes only from `workflow.now()` (passed in), so replays compute the same values.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from activities.contracts import Checkpoint
from bulkops.domain.model import OperationStatus
from bulkops.domain.views import Progress
from workflows.contracts import BulkOperationInput, RunState


class ProgressTracker:
    def __init__(self, state: RunState) -> None:
        self.state = state
        self.resumed_at: datetime | None = None
        self.details_at: datetime | None = None

    def set_status(self, status: OperationStatus, now: datetime) -> None:
        """Track the time spent PROCESSING (pauses excluded) for the rate and the ETA."""
        if self.resumed_at is not None:
            self.state.active_seconds += (now - self.resumed_at).total_seconds()
            self.resumed_at = None
        if status == OperationStatus.PROCESSING:
            self.resumed_at = now
        self.state.status = status
        self.touch(now, force=True)

    def close_run(self, now: datetime, history_length: int, *, continuing: bool = False) -> None:
        if self.resumed_at is not None:
            self.state.active_seconds += (now - self.resumed_at).total_seconds()
            self.resumed_at = None
        self.state.max_run_history = max(self.state.max_run_history, history_length)
        if continuing:
            self.state.runs += 1

    def touch(self, now: datetime, *, force: bool = False) -> None:
        """The Temporal UI's current details: at most once a second of workflow time (every order
        would be once per order), and at once on a status change."""
        if not force and self.details_at is not None and (now - self.details_at).total_seconds() < 1.0:
            return
        self.details_at = now
        s = self.state
        active = s.active_seconds + ((now - self.resumed_at).total_seconds() if self.resumed_at else 0.0)
        rate = s.processed_count / active if active > 0 else 0.0
        pct = 100.0 * s.processed_count / s.total_count if s.total_count else 0.0
        workflow.set_current_details(
            f"**{s.status.value}** · {s.processed_count:,}/{s.total_count:,} processed ({pct:.1f}%) · "
            f"{s.success_count:,} succeeded · {s.failed_count:,} failed · {rate:.0f} orders/s · "
            f"run {s.runs}"
        )

    def checkpoint(self, now: datetime) -> Checkpoint:
        s = self.state
        return Checkpoint(**s.counters(), at=now)

    def snapshot(self, inp: BulkOperationInput, in_flight: int, run_id: str, history_length: int) -> Progress:
        s = self.state
        return Progress(
            operation_id=inp.operation_id,
            tenant_id=inp.tenant_id,
            operation_type=inp.operation_type,
            status=s.status,
            **s.counters(),
            in_flight=in_flight,
            failure_reason=s.failure_reason,
            started_at=s.started_at,
            active_seconds=s.active_seconds,
            resumed_at=self.resumed_at,
            run=s.runs,
            history_length=history_length,
            max_run_history=max(s.max_run_history, history_length),
        )
