"""Run the real worker as a separate process, so a test can SIGKILL it (bulkops.devstack.processes)."""

from __future__ import annotations

from pathlib import Path

from bulkops.devstack.processes import ROOT, Child, settings_env, worker_command
from bulkops.settings import Settings

__all__ = ["ROOT", "WorkerProcess", "settings_env"]


class WorkerProcess(Child):
    def __init__(self, settings: Settings, log: Path) -> None:
        super().__init__("worker", worker_command(), env=settings_env(settings), log_file=log)
