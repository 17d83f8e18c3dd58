"""The one way our tooling runs a child process: `bulkops dev`, the bench, the chaos soak and the tests.

A `Child` is started with an environment built from `Settings` (`settings_env`, the only place
settings are turned back into environment variables), waits until it is ready (a health URL or any
predicate), and is signalled, stopped (SIGTERM, then SIGKILL after a timeout) and restarted. Each
child runs in its own session, so a terminal's Ctrl-C reaches only its parent, which stops the
children in order; with `die_with_parent` the kernel sends it SIGTERM if the parent is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx
from pydantic import SecretStr

from bulkops.devstack.postgres import port_open
from bulkops.settings import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1

Ready = Callable[[], bool]


class ChildFailed(RuntimeError):
    """A child exited, or did not become ready in time."""


def settings_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment (`base`, default ours) from which a child's `Settings()` rebuilds exactly
    `settings`: secrets as their value (str() would give "**********"), lists and dicts as JSON (what
    pydantic-settings parses), booleans as true/false, unset fields removed."""
    env = dict(os.environ if base is None else base)
    for name, field in Settings.model_fields.items():
        alias = field.alias or name
        value = getattr(settings, name)
        if value is None:
            env.pop(alias, None)
        elif isinstance(value, SecretStr):
            env[alias] = value.get_secret_value()
        elif isinstance(value, list | dict):
            env[alias] = json.dumps(value)
        elif isinstance(value, bool):
            env[alias] = "true" if value else "false"
        else:
            env[alias] = str(value)
    return env


def http_ready(url: str, timeout: float = 2.0) -> Ready:
    """Ready once `url` answers 200."""

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=timeout).status_code == 200
        return False

    return ready


def port_ready(port: int) -> Ready:
    """Ready once something accepts connections on 127.0.0.1:`port`."""
    return lambda: port_open(port)


def _die_with_parent() -> None:
    # Runs in the child before exec: if the parent is killed outright (SIGKILL), the child gets
    # SIGTERM from the kernel instead of lingering.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def python(*args: str) -> list[str]:
    """A command line that runs our Python with these arguments."""
    return [sys.executable, *args]


def worker_command() -> list[str]:
    return python(str(ROOT / "worker.py"))


def api_command(port: int, host: str = "127.0.0.1", workers: int = 1) -> list[str]:
    """The API under uvicorn (its settings from the environment)."""
    return python(
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
        "--timeout-worker-healthcheck",
        "30",
    )


class Child:
    """One child process: start, wait until ready, signal, restart, stop."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_file: Path | None = None,
        inherit_output: bool = False,
        ready: Ready | None = None,
        cwd: Path = ROOT,
        die_with_parent: bool = True,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.log_file = log_file
        # Without a log file its output is dropped, unless it shares ours (`bulkops dev`'s terminal).
        self.inherit_output = inherit_output
        self.ready = ready
        self.cwd = cwd
        self.die_with_parent = die_with_parent and sys.platform == "linux"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def __repr__(self) -> str:
        return f"Child({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def start(self) -> Child:
        if self.running:
            raise ChildFailed(f"{self.name} is already running (pid {self.pid})")
        out: int | object | None = None if self.inherit_output else subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_file, "ab")  # the child keeps its own copy
        try:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=out,  # type: ignore[arg-type]
                stderr=None if out is None else subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        finally:
            if hasattr(out, "close"):
                out.close()
        self.starts += 1
        log.debug("started %s (pid %s)", self.name, self.proc.pid)
        return self

    def wait_ready(self, timeout: float = 60, ready: Ready | None = None) -> None:
        """Until `ready` (or the child's own predicate) holds; ChildFailed if it exits or time runs out."""
        check = ready or self.ready
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise ChildFailed(f"{self.name} exited with {self.returncode}:\n{self.tail()}")
            if check is None or check():
                return
            if time.monotonic() > deadline:
                raise ChildFailed(f"{self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def send(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.proc is not None:
            self.send(signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: a stalled process, not a dead one (its sockets stay open)."""
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (and SIGCONT, should it be stopped); SIGKILL if it has not exited within `timeout`."""
        if self.proc is None:
            return None
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", self.name, timeout)
                self.kill()
        return self.proc.returncode

    def restart(self, *, graceful: bool = True, timeout: float = 15, ready_within: float = 60) -> None:
        """Stop (SIGTERM with `timeout`, or SIGKILL), start again, and wait until ready."""
        if graceful:
            self.stop(timeout)
        else:
            self.kill()
        self.start()
        self.wait_ready(ready_within)

    def tail(self, lines: int = 30) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Child:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def stop_all(children: Sequence[Child], timeout: float = 20) -> None:
    """SIGTERM to all at once, then wait for each within one shared `timeout` (SIGKILL after)."""
    for child in children:
        if child.running:
            child.send(signal.SIGTERM)
            child.send(signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for child in children:
        child.stop(max(deadline - time.monotonic(), 0.1))
