"""`bulkops dev`: the whole stack in the foreground, everything it starts stopped on Ctrl-C / SIGTERM.

PostgreSQL (pg_ctl, daemonized) and the Temporal dev server keep their data under BULKOPS_DATA_DIR.
The worker and the API run as child processes of this one (`bulkops worker` / `bulkops api`, each in
its own session so that a terminal Ctrl-C reaches only us and we stop them in order); they are handed
the resolved settings through their environment and exit by themselves if we die.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import httpx
import psutil
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from bulkops.devstack.postgres import EmbeddedPostgres, port_open
from bulkops.devstack.processes import Child, python, settings_env, stop_all
from bulkops.devstack.temporal import TemporalDevServer
from bulkops.settings import Settings

log = logging.getLogger(__name__)
KEY_FILE = "demo-api-key"
CONSOLE_SECRET_FILE = "console-secret"


class DevError(RuntimeError):
    pass


def _interrupt(_sig: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _ensure_free(port: int, what: str, env_name: str) -> None:
    if port_open(port):
        raise DevError(f"port {port} ({what}) is in use: another `bulkops dev`? (or set {env_name})")


def _stop_stale_temporal(pid_file: Path, db_file: Path) -> None:
    """A dev server left behind by a killed `bulkops dev` still holds our SQLite file: stop it."""
    try:
        proc = psutil.Process(int(pid_file.read_text()))
        if str(db_file) in proc.cmdline():
            log.info("stopping a leftover Temporal dev server (pid %s)", proc.pid)
            proc.terminate()
            proc.wait(20)
    except (FileNotFoundError, ValueError, psutil.Error):
        pass
    pid_file.unlink(missing_ok=True)


class DevStack:
    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.data_dir = settings.data_dir.resolve()
        self.stack = contextlib.ExitStack()
        self.children: list[Child] = []
        self.api_key = ""
        self.created = False

    def say(self, text: str) -> None:
        self.console.print(f"[dim]bulkops dev:[/] {text}", highlight=False)

    def start(self) -> None:
        s = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _ensure_free(s.api_port, "API", "BULKOPS_API_PORT")
        from bulkops.store.migrate import upgrade

        # The Temporal dev server boots while PostgreSQL starts and migrates. Leaving the pool waits
        # for it even on Ctrl-C, so its stop callback is registered before the stack unwinds.
        with ThreadPoolExecutor(1) as pool:
            booting = pool.submit(self._start_temporal)
            url = s.database_url or self._start_postgres()
            self.say("applying migrations")
            upgrade(url)
            temporal = booting.result()
        update: dict[str, Any] = {
            "database_url": url,
            "temporal_address": temporal.address,
            "temporal_namespace": "default",
            "temporal_api_key": None,
            "temporal_tls_cert": None,
            "temporal_tls_key": None,
        }
        if "temporal_ui_url" not in s.model_fields_set:
            update["temporal_ui_url"] = f"http://localhost:{s.dev_ui_port}"
        if not s.console_secret:
            update["console_secret"] = SecretStr(self._console_secret())
        self.settings = s = s.model_copy(update=update)
        env = settings_env(s)
        # A worker drains for up to its graceful shutdown time (BULKOPS_WORKER_SHUTDOWN_S) after SIGTERM.
        grace = self.settings.worker_shutdown_s + 5
        self.stack.callback(lambda: stop_all(self.children, grace))
        for name in ("worker", "api"):
            cmd = python("-m", "bulkops.cli", name, "--parent-pid", str(os.getpid()))
            # From our directory: relative paths in its settings mean what they mean to us.
            child = Child(name, cmd, env=env, inherit_output=True, cwd=Path.cwd())
            self.children.append(child.start())
        self._demo_tenant()  # while the children import
        self._retention_schedule()
        self._wait_ready()

    def _console_secret(self) -> str:
        """Kept in the data directory (mode 600): a restart keeps the console's sign-ins."""
        path = self.data_dir / CONSOLE_SECRET_FILE
        if not path.is_file():
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    def _start_postgres(self) -> str:
        pg = EmbeddedPostgres(self.data_dir / "pg", self.settings.dev_pg_port)
        if pg.running() and not (pg.pgdata / "postmaster.pid").exists():
            raise DevError(
                f"port {pg.port} is taken by another server: set BULKOPS_DEV_PG_PORT, or BULKOPS_DATABASE_URL"
            )
        if not (pg.pgdata / "PG_VERSION").exists():
            self.say(f"initializing PostgreSQL in {pg.pgdata}")
        pg.start()
        self.stack.callback(pg.stop)
        return pg.url

    def _start_temporal(self) -> TemporalDevServer:
        s, tdir = self.settings, self.data_dir / "temporal"
        tdir.mkdir(parents=True, exist_ok=True)
        db_file, pid_file = tdir / "temporal.db", tdir / "temporal.pid"
        _stop_stale_temporal(pid_file, db_file)
        _ensure_free(s.dev_temporal_port, "Temporal", "BULKOPS_DEV_TEMPORAL_PORT")
        _ensure_free(s.dev_ui_port, "Temporal UI", "BULKOPS_DEV_UI_PORT")
        temporal = TemporalDevServer(
            db_file, s.dev_temporal_port, ui_port=s.dev_ui_port, log_file=tdir / "temporal.log"
        )
        self.say("starting the Temporal dev server")
        temporal.start()
        self.stack.callback(pid_file.unlink, missing_ok=True)
        self.stack.callback(temporal.stop)
        pid_file.write_text(str(temporal.pid))
        return temporal

    def _demo_tenant(self) -> None:
        from bulkops.devstack.seed import ensure_demo_tenant
        from bulkops.store.db import make_engine, make_sessionmaker

        key_file = self.data_dir / KEY_FILE
        stored = key_file.read_text().strip() if key_file.is_file() else None

        async def demo_tenant() -> Any:
            engine = make_engine(self.settings, pool_size=2)
            try:
                return await ensure_demo_tenant(make_sessionmaker(engine), stored)
            finally:
                await engine.dispose()

        demo = asyncio.run(demo_tenant())
        if demo.new_key:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(demo.api_key + "\n")
            os.chmod(key_file, 0o600)
        self.api_key, self.created = demo.api_key, demo.created

    def _retention_schedule(self) -> None:
        from bulkops.infra.temporal_client import connect
        from bulkops.service.retention import ensure_retention_schedule

        async def ensure_schedule() -> bool:
            return await ensure_retention_schedule(await connect(self.settings), self.settings)

        asyncio.run(ensure_schedule())

    def _wait_ready(self, timeout: float = 120) -> None:
        url = f"http://{self.settings.api_host}:{self.settings.api_port}/readyz"
        deadline = time.monotonic() + timeout
        while True:
            self._check_children()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise DevError(f"the API did not become ready at {url}")
            time.sleep(0.3)

    def _check_children(self) -> None:
        for child in self.children:
            if not child.running:
                raise DevError(f"the {child.name} exited with code {child.returncode}")

    def banner(self) -> None:
        s = self.settings
        api = f"http://{s.api_host}:{s.api_port}"
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for name, value in [
            ("API", api),
            ("API docs", f"{api}/docs"),
            ("Console", f"{api}/console"),
            ("Temporal UI", s.temporal_ui_url),
            ("Temporal", f"{s.temporal_address} (namespace {s.temporal_namespace})"),
            ("PostgreSQL", str(s.database_url)),
            ("Data", str(self.data_dir)),
            ("Demo tenant", "demo (1,000 orders created now)" if self.created else "demo"),
        ]:
            table.add_row(name, value)
        self.console.rule("[bold green]bulkops dev is running")
        self.console.print(table)
        self.console.print(f"API key: {self.api_key}", soft_wrap=True, highlight=False)
        self.console.print(
            f"(kept in {self.data_dir / KEY_FILE}; "
            "try `uv run bulkops start cancel --status PENDING --watch`)",
            soft_wrap=True,
            highlight=False,
        )
        self.console.rule("[dim]Ctrl-C stops everything")

    def serve(self) -> None:
        while True:
            self._check_children()
            time.sleep(0.5)


def run_dev(settings: Settings, console: Console) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    dev = DevStack(settings, console)
    previous = signal.signal(signal.SIGTERM, _interrupt) or signal.SIG_DFL
    # Also when started with SIGINT ignored (a background job of a non-interactive shell inherits that).
    signal.signal(signal.SIGINT, _interrupt)
    code = 0
    try:
        with dev.stack:
            try:
                dev.start()
                dev.banner()
                dev.serve()
            except KeyboardInterrupt:
                pass
            except Exception as exc:  # reported plainly; the stack unwinds below either way
                log.debug("bulkops dev failed", exc_info=True)
                console.print(f"[red]bulkops dev: {exc}[/]", highlight=False)
                code = 1
            # A second Ctrl-C must not cut the shutdown short and leave servers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            dev.say("stopping")
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    dev.say("stopped")
    return code
