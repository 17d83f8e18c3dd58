"""`bulkops dev` as a user runs it: a subprocess on its own data dir and ports, Ctrl-C, restart."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from temporalio.client import ScheduleActionStartWorkflow, WorkflowExecutionStatus

from bulkops.devstack.postgres import free_port
from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from tests.console.helpers import sign_in_http

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"API key: (bko_\S+)")


def _launch(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bulkops.cli", "dev"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def _wait_key(proc: subprocess.Popen[bytes], log: Path) -> str:
    for _ in range(600):
        found = KEY.search(_text(log))
        if found:
            return found.group(1)
        assert proc.poll() is None, f"bulkops dev exited {proc.returncode}:\n{_text(log)}"
        await asyncio.sleep(0.25)
    raise AssertionError(f"bulkops dev did not come up:\n{_text(log)}")


def _processes(proc: subprocess.Popen[bytes], data: Path) -> list[psutil.Process]:
    """Everything `bulkops dev` started: its children (worker, API, Temporal) and the postmaster."""
    found = psutil.Process(proc.pid).children(recursive=True)
    postmaster = int(_text(data / "pg" / "postmaster.pid").split()[0])
    found.append(psutil.Process(postmaster))
    return found


async def _interrupt(proc: subprocess.Popen[bytes], started: list[psutil.Process], log: Path) -> None:
    proc.send_signal(signal.SIGINT)
    for _ in range(240):
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.25)
    assert proc.returncode == 0, _text(log)
    for _ in range(120):  # a loaded box can take a while to finish a checkpoint at shutdown
        alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        await asyncio.sleep(0.25)
    assert not alive, [p.cmdline()[:3] for p in alive]


def _api(url: str, key: str) -> httpx.AsyncClient:
    # Generous timeout: the box is small and shared with other test runs.
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


async def _shut(proc: subprocess.Popen[bytes], data: Path) -> None:
    """After a failure: let `bulkops dev` stop what it started; SIGKILL would orphan its servers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        for _ in range(240):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.25)
        leftovers = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()
        for pid_file in (data / "pg" / "postmaster.pid", data / "temporal" / "temporal.pid"):
            if pid_file.exists():
                leftovers.append(psutil.Process(int(_text(pid_file).split()[0])))
        for p in leftovers:
            if p.is_running():
                p.kill()


async def _console_sign_in(api: str, key: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=api, timeout=60) as web:
        await sign_in_http(web, key)
        assert (await web.get("/console/operations")).status_code == 200
        return web.cookies


async def _wait_end(http: httpx.AsyncClient, op_id: str) -> dict[str, Any]:
    for _ in range(600):
        body: dict[str, Any] = (await http.get(f"/v1/bulk-operations/{op_id}")).json()
        if body["status"] in ("COMPLETED", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"operation still {body['status']}")


async def test_dev_stack_serves_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = {name: free_port() for name in ("API", "DEV_TEMPORAL", "DEV_UI", "DEV_PG", "WORKER_METRICS")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BULKOPS_", "TEMPORAL_"))}
    env.update({f"BULKOPS_{name}_PORT": str(port) for name, port in ports.items()})
    env["BULKOPS_DATA_DIR"] = str(data)
    api = f"http://127.0.0.1:{ports['API']}"

    first_log = tmp_path / "dev1.log"
    dev = _launch(env, first_log)
    try:
        key = await _wait_key(dev, first_log)
        assert "1,000 orders created now" in _text(first_log)
        assert f"{api}/console" in _text(first_log)  # the banner links the operator console
        assert os.stat(data / "console-secret").st_mode & 0o777 == 0o600
        assert _text(data / "demo-api-key").strip() == key
        assert os.stat(data / "demo-api-key").st_mode & 0o777 == 0o600
        started = _processes(dev, data)
        cookies = await _console_sign_in(api, key)
        async with _api(api, key) as http:
            r = await http.post(
                "/v1/bulk-operations",
                json={
                    "operation_type": "BULK_CANCEL",
                    "filter": {"statuses": ["PENDING"]},
                    "parameters": {"reason": "dev smoke"},
                },
            )
            assert r.status_code == 202, r.text
            op = r.json()
            final = await _wait_end(http, op["id"])
        # The demo mix has 3 PENDING orders in every 20.
        assert (final["status"], final["total_count"], final["success_count"]) == ("COMPLETED", 150, 150)
        assert final["links"]["temporal_ui"].startswith(f"http://localhost:{ports['DEV_UI']}/")
        await _interrupt(dev, started, first_log)
    finally:
        await _shut(dev, data)

    second_log = tmp_path / "dev2.log"
    dev = _launch(env, second_log)
    try:
        assert await _wait_key(dev, second_log) == key
        assert "created now" not in _text(second_log)
        started = _processes(dev, data)
        async with await psycopg.AsyncConnection.connect(
            f"postgresql://postgres@127.0.0.1:{ports['DEV_PG']}/postgres"
        ) as conn:
            cur = await conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'CANCELLED') FROM orders"
                " WHERE tenant_id = 'demo'"
            )
            assert await cur.fetchone() == (1000, 200)
            cur = await conn.execute("SELECT count(*) FROM tenants")
            assert await cur.fetchone() == (1,)
        client = await connect(Settings(TEMPORAL_ADDRESS=f"127.0.0.1:{ports['DEV_TEMPORAL']}"))
        handle = client.get_workflow_handle(f"bulk-op-{op['id']}")
        # The summary row is written just before the workflow returns; the restarted worker finishes it.
        await asyncio.wait_for(handle.result(), 60)
        described = await handle.describe()
        # Temporal's SQLite kept the history too.
        assert described.status == WorkflowExecutionStatus.COMPLETED, described.status
        async with _api(api, key) as http:
            again = (await http.get(f"/v1/bulk-operations/{op['id']}")).json()
        assert (again["status"], again["success_count"]) == ("COMPLETED", 150)
        # The console's secret is kept in the data directory: a sign-in outlives the restart.
        async with httpx.AsyncClient(base_url=api, cookies=cookies, timeout=60) as web:
            assert (await web.get("/console/operations")).status_code == 200
        # `bulkops dev` created the retention schedule (and a restart found it and kept it).
        retention = await client.get_schedule_handle("bulkops-retention-bulk-operations").describe()
        assert isinstance(retention.schedule.action, ScheduleActionStartWorkflow)
        assert retention.schedule.action.workflow == "RetentionWorkflow"
        await _interrupt(dev, started, second_log)
    finally:
        await _shut(dev, data)
