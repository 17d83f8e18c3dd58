"""Waits decided by events, not by the clock.

`workflow.now()` is the time of the workflow task being run, and a worker that replays a run from
scratch can be handed another time for its first new task than a later replay computes (a soak's
seed 7 saw 10.96 s against 11.91 s after a deploy moved a paced run). A branch taken on that time
(wait or not, expired or not) can then differ between the two, and the run stalls as nondeterministic.
So a wait that may already be over still starts its timer, for at least `SHORTEST_TIMER_S`: the clock
decides only how long a timer runs, which replay does not check.
"""

from __future__ import annotations

from datetime import datetime

SHORTEST_TIMER_S = 0.05


def timer_s(until: datetime, now: datetime) -> float:
    """How long a timer to `until` runs from `now`: never zero, so it is always started."""
    return max(SHORTEST_TIMER_S, (until - now).total_seconds())
