"""The stack a soak breaks: PostgreSQL, the Temporal dev server, two worker processes and two API
processes (all on loopback, in a temporary directory), and the faults it can inject into them."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkops.chaos.faults import Fault, FaultKind
from bulkops.devstack.postgres import EmbeddedPostgres, free_port
from bulkops.devstack.processes import (
    Child,
    api_command,
    http_ready,
    port_ready,
    settings_env,
    stop_all,
    worker_command,
)
from bulkops.devstack.temporal import TemporalDevServer
from bulkops.settings import Settings
from bulkops.store.migrate import upgrade

log = logging.getLogger(__name__)
PROCESSES = 2  # workers, and API processes


@dataclass
class ChaosStack:
    root: Path
    settings: Settings
    postgres: EmbeddedPostgres
    temporal: TemporalDevServer
    workers: list[Child]
    apis: list[Child]

    api_urls: list[str]

    def inject(self, fault: Fault) -> None:
        """Break the part `fault` names and bring it back (blocking: run it in a thread)."""
        log.info("fault: %s", fault.describe())
        if fault.kind is FaultKind.WORKER_KILL:
            worker = self.workers[fault.target]
            worker.kill()
            worker.start()  # what a supervisor (systemd, Kubernetes) does at once
            worker.wait_ready(60)
        elif fault.kind is FaultKind.API_KILL:
            self.apis[fault.target].kill()
            time.sleep(fault.hold_s)
            self.apis[fault.target].start()
            self.apis[fault.target].wait_ready(90)
        elif fault.kind is FaultKind.WORKER_STALL:
            self.workers[fault.target].send(signal.SIGSTOP)
            time.sleep(fault.hold_s)
            self.workers[fault.target].send(signal.SIGCONT)
        elif fault.kind is FaultKind.POSTGRES_RESTART:
            self.postgres.stop("fast")  # open transactions abort, as on a failover
            time.sleep(fault.hold_s)
            self.postgres.start()
        elif fault.kind is FaultKind.TEMPORAL_RESTART:
            self.temporal.stop()
            time.sleep(fault.hold_s)
            self.temporal.start()
        elif fault.kind is FaultKind.WORKER_DEPLOY:
            # A rolling deploy: one worker at a time gets SIGTERM (its graceful shutdown hands back
            # or finishes its orders), and its successor starts before the next one goes.
            for worker in self.workers:
                worker.restart(graceful=True, timeout=self.settings.worker_shutdown_s + 10)

    def check_alive(self) -> list[str]:
        """The processes that exited on their own (none should)."""
        return [child.name for child in [*self.workers, *self.apis] if not child.running]


@contextlib.contextmanager
def chaos_stack(keep: bool = False, **overrides: Any) -> Iterator[ChaosStack]:
    """Start everything; on exit stop it all and remove the directory (unless `keep`)."""
    root = Path(tempfile.mkdtemp(prefix="bulkops-chaos-"))
    postgres = EmbeddedPostgres(root / "pg", free_port())
    temporal = TemporalDevServer(
        root / "temporal" / "temporal.db", free_port(), log_file=root / "temporal.log"
    )
    children: list[Child] = []
    try:
        postgres.start()
        upgrade(postgres.url)
        temporal.start()
        settings = Settings(
            BULKOPS_DATABASE_URL=postgres.url,
            TEMPORAL_ADDRESS=temporal.address,
            BULKOPS_TASK_QUEUE="chaos",
            BULKOPS_DATA_DIR=str(root),
            # The soak's webhook receiver listens on a free loopback port.
            BULKOPS_WEBHOOK_ALLOW_PRIVATE=True,
            BULKOPS_WEBHOOK_PORTS="*",
            # A killed worker's workflows move to the other one after 2 s, not 10.
            BULKOPS_WORKER_STICKY_TIMEOUT_S=2,
            # Enough attempts (0.5 s doubling to 10 s) to outlast every outage of the schedule.
            BULKOPS_ACTIVITY_MAX_ATTEMPTS=30,
            BULKOPS_WORKER_SDK_METRICS_PORT=0,
            **overrides,
        )
        workers = []
        for n in range(PROCESSES):
            port = free_port()
            env = settings_env(settings.model_copy(update={"worker_metrics_port": port}))
            workers.append(
                Child(
                    f"worker-{n}",
                    worker_command(),
                    env={**env, "PYTHONUNBUFFERED": "1"},
                    log_file=root / f"worker-{n}.log",
                    ready=port_ready(port),
                )
            )
        apis, api_urls = [], []
        for n in range(PROCESSES):
            port = free_port()
            api_urls.append(f"http://127.0.0.1:{port}")
            apis.append(
                Child(
                    f"api-{n}",
                    api_command(port),
                    env={**settings_env(settings), "PYTHONUNBUFFERED": "1"},
                    log_file=root / f"api-{n}.log",
                    ready=http_ready(f"http://127.0.0.1:{port}/readyz"),
                )
            )
        children = [*workers, *apis]
        for child in children:
            child.start()
        for child in children:
            child.wait_ready(120)
        log.info("chaos stack in %s: postgres :%s, temporal %s", root, postgres.port, temporal.address)
        yield ChaosStack(root, settings, postgres, temporal, workers, apis, api_urls)
    finally:
        stop_all(children)
        temporal.stop()
        postgres.stop()
        if keep:
            log.warning("kept the chaos stack's files in %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
