"""`bulkops api` with several worker processes: a console sign-in made by one is honoured by all."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from bulkops.devstack.postgres import free_port
from tests.console.helpers import sign_in_http
from tests.harness import Harness
from tests.processes import ROOT, settings_env


async def test_a_sign_in_holds_across_the_api_processes(harness: Harness, tmp_path: Path) -> None:
    tenant = await harness.tenant("workers")
    port = free_port()
    env = settings_env(harness.settings)
    env.pop("BULKOPS_CONSOLE_SECRET", None)
    env.update({"BULKOPS_API_PORT": str(port), "BULKOPS_API_WORKERS": "2"})
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
            [sys.executable, "-m", "bulkops.cli", "api"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as web:
            # Both processes up (each says so once), then ready.
            for _ in range(480):
                if log.read_text(errors="replace").count("Application startup complete") == 2:
                    break
                assert proc.poll() is None, log.read_text(errors="replace")
                await asyncio.sleep(0.25)
            assert (await web.get("/readyz")).status_code == 200, log.read_text(errors="replace")
            await sign_in_http(web, tenant.api_key)
            cookies = web.cookies
        # A new connection each time, so that the kernel hands them to either process.
        answers = []
        for _ in range(20):
            async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30) as one:
                answers.append((await one.get("/console/operations")).status_code)
        assert answers == [200] * 20
    finally:
        proc.terminate()
        proc.wait(30)
