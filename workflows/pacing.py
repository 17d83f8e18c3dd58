"""How fast and how far a run goes: `max_orders_per_second` as a token bucket on workflow time (kept
in the run state so that it holds across continue-as-new, pause and resume; the workflow waits on
timers, never in an activity), and the history budget after which a run continues as new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.clock import timer_s
from workflows.contracts import BulkOperationInput, RunState

# Orders are released in bursts of one second's worth (at least one order), one timer per burst rather
# than one per order: Temporal fires timers at about one-second resolution, so a shorter wait would
# only make the bursts uneven.
BURST_S = 1.0


class Pacer:
    def __init__(self, rate: float | None, state: RunState) -> None:
        self.rate = rate
        self.state = state
        self.burst = max(1.0, (rate or 0.0) * BURST_S)
        # Room above a burst, so that tokens earned while a timer's wake-up is delivered are kept.
        self.capacity = 2 * self.burst

    def wait_s(self, now: datetime) -> float:
        """Take a token and answer 0, or answer how long to wait before asking again."""
        if not self.rate:
            return 0.0
        s = self.state
        if s.pace_at is None:
            s.pace_tokens = 1.0
        else:
            elapsed = max((now - s.pace_at).total_seconds(), 0.0)
            s.pace_tokens = min(self.capacity, s.pace_tokens + elapsed * self.rate)
        s.pace_at = now
        if s.pace_tokens >= 1.0:
            s.pace_tokens -= 1.0
            return 0.0
        # Wait for a full burst, so that timers stay few whatever the rate.
        return (self.burst - s.pace_tokens) / self.rate

    # --- by ticks (`PACE_BY_TICKS`): the walk's decisions follow from events alone --------------------
    # `wait_s` above decides whether to wait from `now` (`workflows.clock` says why that can stall a
    # run); here the clock only sets how long a timer runs, and tokens come from the timers that fired.

    def take(self, now: datetime) -> bool:
        """Take a token of this tick's allowance; False when it is spent (wait for the next tick)."""
        s = self.state
        if s.pace_at is None:  # the first tick starts with the run
            s.pace_at = now
            s.pace_tokens = self.burst
        if s.pace_tokens >= 1.0:
            s.pace_tokens -= 1.0
            return True
        return False

    def until_next_tick(self, now: datetime) -> float:
        """How long the timer to the next tick runs (always started, however late the tick is)."""
        return timer_s((self.state.pace_at or now) + timedelta(seconds=BURST_S), now)

    def tick(self, now: datetime) -> None:
        """The tick's timer fired: a new burst's allowance."""
        self.state.pace_tokens = self.burst
        self.state.pace_at = now

    def resumed(self, now: datetime) -> None:
        """After a pause, start again from one token: no burst for the time spent paused."""
        if self.rate:
            self.state.pace_tokens = min(self.state.pace_tokens, 1.0)
            self.state.pace_at = now


# Temporal warns at 10 MB of history and fails a run at 50 MB; orders cost ~0.5 kB each.
MAX_HISTORY_BYTES_PER_RUN = 8 * 1024 * 1024


def run_budget_spent(inp: BulkOperationInput, run_start_length: int, scheduled_this_run: int) -> bool:
    """Whether this run should drain and continue as new.

    Local-activity markers reach history only when the workflow task completes, so the current
    length lags; count orders scheduled in this run too (a marker plus amortized task events each, or
    three activity events plus task events) and leave room to drain a full window.
    """
    per_order = 2 if inp.local_activities else 4
    drain = per_order * inp.max_concurrency + 100
    limit = max(inp.max_events_per_run - drain, inp.max_events_per_run // 3)
    info = workflow.info()
    estimate = max(info.get_current_history_length(), run_start_length + per_order * scheduled_this_run)
    # Not `is_continue_as_new_suggested()`: servers suggest it at ~4k events, which more than
    # doubled the drain-and-restart pauses for no gain while the run stays far below its limits.
    return estimate >= limit or info.get_current_history_size() >= MAX_HISTORY_BYTES_PER_RUN


async def sleep_unless(stop: Callable[[], bool], seconds: float) -> bool:
    """A durable timer that `stop` (a pause, a cancel, a tripped threshold) cuts short; whether it ran
    out (rather than being cut short)."""
    try:
        await workflow.wait_condition(stop, timeout=seconds, timeout_summary="pace")
    except TimeoutError:
        return True
    return False
