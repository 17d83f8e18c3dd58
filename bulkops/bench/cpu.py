"""CPU time per process over a measured window: where the milliseconds of one order go.

Each part of the stack is a process tree (PostgreSQL: the postmaster and its backends). A tree's time is
what its live processes have used plus what its root collected from children that exited (psutil's
`children_*`), so backends that come and go are still counted.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import make_url

from bulkops.settings import Settings


def cpu_s(pid: int, *, tree: bool = False) -> float:
    """The process's CPU seconds and its exited children's; with `tree`, its live descendants' too."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        used = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True) if tree else []:
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                used += c.user + c.system
    except psutil.Error:
        return 0.0
    return used


@dataclass
class CpuMeter:
    """`parts` names → pids (`trees`: parts counted with their live descendants: PostgreSQL's backends,
    uvicorn's worker processes); `start()`, then `per_item_ms(n)` for the window in between."""

    parts: dict[str, list[int]]
    trees: frozenset[str] = frozenset({"postgres", "api"})
    _start: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        return {
            name: sum(cpu_s(pid, tree=name in self.trees) for pid in pids)
            for name, pids in self.parts.items()
        }

    def start(self) -> None:
        self._start = self._read()

    def per_item_ms(self, items: int) -> dict[str, float | None]:
        end = self._read()
        out: dict[str, float | None] = {}
        for name, pids in self.parts.items():
            out[name] = round(1000 * (end[name] - self._start[name]) / items, 2) if pids and items else None
        known = [v for v in out.values() if v is not None]
        out["total"] = round(sum(known), 2) if known else None
        return out


def postmaster_pid(pgdata: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    return None


def _listening_on(proc: psutil.Process, port: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(c.laddr and c.laddr.port == port and c.status == "LISTEN" for c in proc.net_connections())
    return False


def find_by_port(name: str, port: int) -> list[int]:
    """Best effort on a running stack: the process called `name` that listens on `port`."""
    for proc in psutil.process_iter(["pid", "name"]):
        if name in (proc.info.get("name") or "") and _listening_on(proc, port):
            return [int(proc.info["pid"])]
    return []


def find_api_pids(port: int) -> list[int]:
    """The API server listening on `port` (uvicorn, `bulkops api`, or `bulkops dev`'s child)."""
    for proc in psutil.process_iter(["pid", "name"]):
        if "python" in (proc.info.get("name") or "").lower() and proc.info["pid"] != os.getpid():
            if _listening_on(proc, port):
                return [int(proc.info["pid"])]
    return []


def running_stack_processes(settings: Settings) -> dict[str, list[int]]:
    """Best effort on a running stack on this machine: the dev server, PostgreSQL and the API by the
    ports they listen on (empty where not found: that part's CPU is then reported as null)."""
    pg_port = make_url(settings.database_url).port if settings.database_url else settings.dev_pg_port
    return {
        "dev_server": find_by_port("temporal", int(settings.temporal_address.rsplit(":", 1)[-1])),
        "postgres": find_by_port("postgres", pg_port or 5432),
        "api": find_api_pids(settings.api_port),
    }
