"""Where `bulkops bench` runs: its own throwaway stack (`--embedded`), and the worker it watches.

The embedded stack is a real deployment in miniature — PostgreSQL, the Temporal dev server, a
worker process and an API process — so that the worker's memory can be sampled on its own and the
bench's own HTTP polling does not share an interpreter with the code it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bulkops.bench.cpu import postmaster_pid
from bulkops.devstack.postgres import EmbeddedPostgres, free_port, port_open
from bulkops.devstack.processes import Child, api_command, settings_env, stop_all, worker_command
from bulkops.devstack.temporal import TemporalDevServer
from bulkops.settings import Settings
from bulkops.store.migrate import upgrade

log = logging.getLogger("bulkops.bench")
MB = 1024 * 1024


@dataclass
class EmbeddedStack:
    root: Path
    settings: Settings
    api_url: str
    worker: Child
    api: Child
    processes: dict[str, list[int]]  # dev_server, postgres, api: for the CPU accounting

    def worker_pids(self) -> list[int]:
        return [self.worker.pid] if self.worker.pid is not None else []

    def check_alive(self) -> None:
        for child in (self.worker, self.api):
            if not child.running:
                raise RuntimeError(f"the {child.name} exited with {child.returncode}:\n{child.tail()}")

    async def wait_ready(self, client: Client, api: httpx.AsyncClient, within_s: float = 180) -> None:
        """Until the API is ready and the worker polls both task queue kinds: a worker still starting
        would otherwise be billed to the first operation."""
        deadline = time.monotonic() + within_s
        kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
        while True:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await api.get("/readyz")).status_code == 200:
                    polled = [
                        (
                            await client.workflow_service.describe_task_queue(
                                DescribeTaskQueueRequest(
                                    namespace=client.namespace,
                                    task_queue=TaskQueue(name=self.settings.task_queue),
                                    task_queue_type=kind,
                                )
                            )
                        ).pollers
                        for kind in kinds
                    ]
                    if all(polled):
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded stack was not ready within {within_s:.0f} s")
            await asyncio.sleep(0.25)


@contextlib.contextmanager
def embedded_stack() -> Iterator[EmbeddedStack]:
    """Start everything in a temp dir on free ports; on exit (error and Ctrl-C too) stop it all and
    remove the dir. Worker settings not fixed here (pool size, slots, …) come from the environment."""
    root = Path(tempfile.mkdtemp(prefix="bulkops-bench-"))
    pg: EmbeddedPostgres | None = None
    temporal: TemporalDevServer | None = None
    children: list[Child] = []
    stack: EmbeddedStack | None = None
    try:
        pg = EmbeddedPostgres(root / "pg", free_port())
        pg.start()
        upgrade(pg.url)
        temporal = TemporalDevServer(root / "temporal.db", free_port(), log_file=root / "temporal.log")
        temporal.start()
        api_port = free_port()
        overrides: dict[str, Any] = {
            "BULKOPS_DATABASE_URL": pg.url,
            "TEMPORAL_ADDRESS": temporal.address,
            "BULKOPS_API_HOST": "127.0.0.1",
            "BULKOPS_API_PORT": str(api_port),
            "BULKOPS_WORKER_METRICS_PORT": str(free_port()),
            "BULKOPS_DATA_DIR": str(root),
        }
        settings = Settings(**overrides)
        env = {**settings_env(settings), "PYTHONUNBUFFERED": "1"}
        worker = Child("worker", worker_command(), env=env, log_file=root / "worker.log").start()
        children.append(worker)
        api = Child(
            "api", api_command(api_port, workers=settings.api_workers), env=env, log_file=root / "api.log"
        ).start()
        children.append(api)
        pids = {
            "dev_server": [p for p in [temporal.pid] if p],
            "postgres": [p for p in [postmaster_pid(pg.pgdata)] if p],
            "api": [p for p in [api.pid] if p],
        }
        stack = EmbeddedStack(root, settings, f"http://127.0.0.1:{api_port}", worker, api, pids)
        log.info(
            "embedded stack in %s: postgres :%s, temporal %s, api :%s, worker pid %s",
            root,
            pg.port,
            temporal.address,
            api_port,
            worker.pid,
        )
        yield stack
    except BaseException:
        if stack is not None:
            for child in (stack.worker, stack.api):
                log.error("last lines of the %s log:\n%s", child.name, child.tail())
        raise
    finally:
        stop_all(list(reversed(children)))
        if temporal is not None:
            temporal.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        log.info("embedded stack stopped and removed")


# --- the worker's memory ----------------------------------------------------------------------------


def _is_python(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return "python" in proc.name().lower()
    return False


def _port(address: str) -> str:
    return address.rsplit(":", 1)[-1]


def _serves(proc: psutil.Process, settings: Settings) -> bool:
    """Does this worker poll our Temporal port and task queue? (Unreadable environment: assume so.)"""
    try:
        env = proc.environ()
    except psutil.Error:
        return True
    return (
        _port(env.get("TEMPORAL_ADDRESS", "localhost:7233")) == _port(settings.temporal_address)
        and env.get("BULKOPS_TASK_QUEUE", "bulk-operations") == settings.task_queue
    )


def find_worker_pids(settings: Settings) -> list[int]:
    """Best effort on a running stack: processes running `worker.py` or `bulkops worker` (what
    `bulkops dev` runs as its child: `python -m bulkops.cli worker`) for our Temporal and task queue."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        args = [os.path.basename(a) for a in (proc.info.get("cmdline") or [])]
        if proc.info["pid"] == os.getpid() or not args:
            continue
        bulkops_worker = "worker" in args and any(a in ("bulkops", "bulkops.cli") for a in args)
        if ("worker.py" in args or bulkops_worker) and _serves(proc, settings):
            found.append(int(proc.info["pid"]))
    return found


def running_stack_settings(settings: Settings) -> Settings:
    """Without BULKOPS_DATABASE_URL, the database `bulkops dev` embeds (when it is up)."""
    if settings.database_url or not port_open(settings.dev_pg_port):
        return settings
    url = f"postgresql+psycopg://postgres@127.0.0.1:{settings.dev_pg_port}/postgres"
    log.info("BULKOPS_DATABASE_URL is not set: using the `bulkops dev` database at %s", url)
    return settings.model_copy(update={"database_url": url})


@dataclass
class RssSampler:
    """Peak resident memory of each watched process (plus its Python children) every `interval` s."""

    pids: list[int]
    interval: float = 0.2
    peaks: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss
                for child in proc.children(recursive=True):
                    if _is_python(child):  # not the Temporal / Postgres that `bulkops dev` runs
                        with contextlib.suppress(psutil.Error):
                            rss += child.memory_info().rss
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    @property
    def peak_mb(self) -> float | None:
        return round(max(self.peaks.values()) / MB, 1) if self.peaks else None
