"""The fault schedule: which fault, when, on which process — drawn from the seed alone, so a failing
seed replays the same schedule."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    WORKER_KILL = "worker_kill"  # SIGKILL a worker; its supervisor starts it again
    API_KILL = "api_kill"  # SIGKILL an API process, requests in flight included
    WORKER_STALL = "worker_stall"  # SIGSTOP a worker for some seconds: stalled, not dead
    POSTGRES_RESTART = "postgres_restart"
    TEMPORAL_RESTART = "temporal_restart"
    WORKER_DEPLOY = "worker_deploy"  # a rolling SIGTERM restart of both workers


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds after the traffic started
    kind: FaultKind
    target: int  # which worker or API process (0 or 1), where it applies
    hold_s: float  # how long a stalled or stopped part stays away

    def describe(self) -> str:
        return f"{self.at_s:7.1f}s {self.kind.value} #{self.target} hold {self.hold_s:.1f}s"


def fault_schedule(seed: int, duration_s: float, every_s: float) -> list[Fault]:
    """Faults about every `every_s` seconds within `duration_s`; each kind once (in an order of the
    seed's) before any repeats, so that a short run still breaks everything once."""
    rng = random.Random(seed)
    kinds = list(FaultKind)
    rng.shuffle(kinds)
    faults: list[Fault] = []
    at = rng.uniform(0.4, 0.8) * every_s
    while at < duration_s:
        kind = kinds[len(faults)] if len(faults) < len(kinds) else rng.choice(kinds)
        faults.append(Fault(round(at, 2), kind, rng.randrange(2), round(rng.uniform(1.5, 5.0), 2)))
        at += rng.uniform(0.6, 1.4) * every_s
    return faults
