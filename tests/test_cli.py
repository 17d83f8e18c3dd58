"""The `bulkops` CLI against the session stack: admin commands on Postgres, start/watch over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
import typer
from click.testing import Result
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import func, select
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from typer.testing import CliRunner

from bulkops.cli.api_client import parse_params, parse_type
from bulkops.cli.app import app
from bulkops.domain.model import OperationType
from bulkops.infra.temporal_client import connect
from bulkops.service.auth import authenticate, hash_key
from bulkops.settings import Settings
from bulkops.store.tables import ApiKey, BulkOperation, Order, Tenant
from tests.harness import Harness
from tests.serving import serve

runner = CliRunner()


async def cli(h: Harness, *args: str) -> Result:
    """Invoke the CLI in a thread: its commands run their own event loops and block while polling."""
    env = {"BULKOPS_DATABASE_URL": h.settings.database_url, "BULKOPS_API_KEY": None, "COLUMNS": "200"}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def test_tenant_create_stores_only_a_working_hash(harness: Harness) -> None:
    h = harness
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = await cli(h, "tenant", "create", name)
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    key, secret = fields["API key"].strip(), fields["webhook secret"].strip()
    assert key.startswith("bko_") and secret.startswith("whsec_")
    async with h.sessionmaker() as session:
        principal = await authenticate(session, key)
        stored = (await session.scalars(select(ApiKey.key_hash).where(ApiKey.tenant_id == name))).all()
        tenant = await session.get(Tenant, name)
    assert principal is not None and principal.tenant_id == name
    assert stored == [hash_key(key)] and key not in stored
    assert tenant is not None and tenant.webhook_secret == secret
    r = await h.http.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json()["items"] == []

    again = await cli(h, "tenant", "create", name)
    assert again.exit_code == 1 and "already exists" in again.output
    assert await h.count(ApiKey.__table__, ApiKey.tenant_id == name) == 1
    bad = await cli(h, "tenant", "create", "no spaces/please")
    assert bad.exit_code == 2
    assert await h.count(Tenant.__table__, Tenant.id == "no spaces/please") == 0


async def test_revoke_key_makes_the_api_answer_401(harness: Harness) -> None:
    h = harness
    t = await h.tenant("revoke")
    assert (await t.get("/v1/orders")).status_code == 200
    other = await h.tenant("revoke")
    # Scoped to one tenant: naming the wrong tenant revokes nothing.
    wrong = await cli(h, "tenant", "revoke-key", other.id, t.api_key[:10])
    assert wrong.exit_code == 1 and "no active key" in wrong.output
    assert (await t.get("/v1/orders")).status_code == 200
    result = await cli(h, "tenant", "revoke-key", t.id, t.api_key[:10])
    assert result.exit_code == 0, result.output
    assert "revoked 1 key" in result.stdout
    r = await t.get("/v1/orders")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert (await other.get("/v1/orders")).status_code == 200
    unknown = await cli(h, "tenant", "revoke-key", t.id, t.api_key)  # already revoked
    assert unknown.exit_code == 1 and "no active key" in unknown.output


async def test_rotate_webhook_secret_keeps_the_old_one_for_the_overlap(harness: Harness) -> None:
    h = harness
    t = await h.tenant("rotate")
    result = await cli(h, "tenant", "rotate-webhook-secret", t.id, "--overlap-hours", "2")
    assert result.exit_code == 0, result.output
    secret = result.stdout.split("webhook secret:", 1)[1].split()[0]
    async with h.sessionmaker() as session:
        tenant = await session.get(Tenant, t.id)
        now = await session.scalar(select(func.now()))
    assert tenant is not None and secret.startswith("whsec_") and secret != t.webhook_secret
    assert tenant.webhook_secret == secret and tenant.webhook_secret_previous == t.webhook_secret
    assert tenant.webhook_secret_previous_until is not None
    assert abs((tenant.webhook_secret_previous_until - now).total_seconds() - 7200) < 60
    missing = await cli(h, "tenant", "rotate-webhook-secret", "no-such-tenant")
    assert missing.exit_code == 1 and "no such tenant" in missing.output


async def test_orders_seed_inserts_exactly_n(harness: Harness) -> None:
    h = harness
    t = await h.tenant("seed")
    result = await cli(h, "orders", "seed", "--tenant", t.id, "--count", "437")
    assert result.exit_code == 0, result.output
    async with h.sessionmaker() as session:
        by_status = dict(
            (
                await session.execute(
                    select(Order.status, func.count()).where(Order.tenant_id == t.id).group_by(Order.status)
                )
            ).all()
        )
        no_pay = await session.scalar(
            select(func.count()).where(Order.tenant_id == t.id, Order.paid_at.is_(None))
        )
    assert sum(by_status.values()) == 437
    assert set(by_status) == {"PAID", "PENDING", "SHIPPED", "DELIVERED", "CANCELLED"}
    assert by_status["PAID"] > sum(v for k, v in by_status.items() if k != "PAID")  # mostly PAID
    assert no_pay == by_status["PENDING"]

    fixed = await cli(h, "orders", "seed", "--tenant", t.id, "--count", "25", "--status", "SHIPPED")
    assert fixed.exit_code == 0, fixed.output
    assert await h.count(Order.__table__, Order.tenant_id == t.id) == 462
    assert await h.count(Order.__table__, Order.tenant_id == t.id, Order.status == "SHIPPED") == (
        by_status["SHIPPED"] + 25
    )
    missing = await cli(h, "orders", "seed", "--tenant", "no-such-tenant", "--count", "5")
    assert missing.exit_code == 1 and "no such tenant" in missing.output
    assert await h.count(Order.__table__, Order.tenant_id == "no-such-tenant") == 0


async def test_start_and_watch_partial_success_exits_0(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    t = await h.tenant("watch")
    await h.seed(t, 20, status="PAID")
    await h.seed(t, 5, status="SHIPPED")
    async with serve(h.settings, own_thread=True) as (url, _):
        api = ["--api-url", url, "--api-key", t.api_key]
        started = await cli(
            h,
            "start",
            "cancel",
            "--status",
            "PAID",
            "--status",
            "SHIPPED",
            "-p",
            "reason=cli sweep",
            "--max-concurrency",
            "5",
            "--quiet",
            *api,
        )
        assert started.exit_code == 0, started.output
        op_id = started.stdout.strip()
        assert str(uuid.UUID(op_id)) == op_id

        watched = await cli(h, "watch", op_id, "--interval", "0.2", *api)
    assert watched.exit_code == 0, watched.output
    out = watched.stdout
    assert "PARTIAL_SUCCESS" in out and "25/25" in out
    assert "ORDER_NOT_CANCELLABLE" in out  # the first errors are listed
    assert f"/workflows/bulk-op-{op_id}" in out
    row = await h.summary_row(op_id)
    counts = (row.total_count, row.success_count, row.failed_count)
    assert (row.status, *counts) == ("PARTIAL_SUCCESS", 25, 20, 5)
    assert row.parameters == {"reason": "cli sweep"} and row.max_concurrency == 5


async def test_start_watch_failed_exits_1_and_problems_are_readable(harness: Harness, tmp_path: Path) -> None:
    h = harness
    await h.start_worker()
    t = await h.tenant("fail")
    shipped = await h.seed(t, 4, status="SHIPPED")
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# orders to cancel\n" + "\n".join(str(i) for i in shipped) + "\n\n")
    async with serve(h.settings, own_thread=True) as (url, _):
        api = ["--api-url", url, "--api-key", t.api_key]
        bad = await cli(h, "start", "BULK_CANCEL", "--ids-file", str(ids_file), "-p", "amount_cents=5", *api)
        assert bad.exit_code == 2
        assert f"{HTTPStatus(422).phrase} (422)" in bad.output and "amount_cents" in bad.output
        assert await h.count(BulkOperation.__table__, BulkOperation.tenant_id == t.id) == 0

        result = await cli(h, "start", "cancel", "--ids-file", str(ids_file), "--watch", *api)
        missing = await cli(h, "watch", str(uuid.uuid4()), *api)
        unauthorized = await cli(h, "watch", str(uuid.uuid4()), "--api-url", url, "--api-key", "bko_nope")
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stdout and "4/4" in result.stdout
    ops = await h.scalar(
        "SELECT count(*) FROM bulk_operations WHERE tenant_id = :t AND status = 'FAILED'", t=t.id
    )
    assert ops == 1
    assert missing.exit_code == 2 and "Not Found (404)" in missing.output
    assert unauthorized.exit_code == 2 and "Unauthorized (401)" in unauthorized.output


async def test_temporal_setup_registers_search_attributes_idempotently(harness: Harness) -> None:
    h = harness
    ns = f"setup-{uuid.uuid4().hex[:8]}"
    await h.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=ns, workflow_execution_retention_period=Duration(seconds=86400))
    )
    env = {"TEMPORAL_ADDRESS": h.settings.temporal_address, "TEMPORAL_NAMESPACE": ns}
    first = await asyncio.to_thread(runner.invoke, app, ["temporal-setup"], env=env)
    assert first.exit_code == 0, first.output
    assert first.stdout.count("added search attribute") == 3
    listed = await h.client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
    assert {"TenantId", "BulkOperationType", "BulkOperationStatus"} <= set(listed.custom_attributes)
    again = await asyncio.to_thread(runner.invoke, app, ["temporal-setup"], env=env)
    assert again.exit_code == 0, again.output
    assert again.stdout.count("already registered") == 3 and "added" not in again.stdout
    # And the retention schedule: created once, brought up to date after that.
    assert "retention schedule bulkops-retention-bulk-operations created" in first.stdout
    assert "retention schedule bulkops-retention-bulk-operations is up to date" in again.stdout
    in_ns = await connect(Settings(TEMPORAL_ADDRESS=h.settings.temporal_address, TEMPORAL_NAMESPACE=ns))
    schedule = await in_ns.get_schedule_handle("bulkops-retention-bulk-operations").describe()
    assert schedule.schedule.spec.intervals[0].every == timedelta(hours=24)


def test_param_and_type_parsing() -> None:
    assert parse_params(
        [
            "reason=123",
            "amount_cents=500",
            "set.note=call first",
            "set.shipping_method=express",
            "add_tags=a, b,",
            "metadata.priority=1",
            "metadata.flags=[1, 2]",
            "fields=id,status",
        ]
    ) == {
        "reason": "123",
        "amount_cents": 500,
        "set": {"note": "call first", "shipping_method": "express"},
        "add_tags": ["a", "b"],
        "metadata": {"priority": 1, "flags": [1, 2]},
        "fields": ["id", "status"],
    }
    assert parse_params(['metadata={"a": {"b": null}}', 'remove_tags=["x"]']) == {
        "metadata": {"a": {"b": None}},
        "remove_tags": ["x"],
    }
    for bad in (["amount_cents=ten"], ["novalue"], ["=x"], ["set=1", "set.note=x"]):
        with pytest.raises(typer.BadParameter):
            parse_params(bad)
    assert [parse_type(t) for t in ("cancel", "Refund", "BULK_UPDATE", "bulk-export")] == list(OperationType)
    with pytest.raises(typer.BadParameter):
        parse_type("delete")


async def test_migrate_is_idempotent_and_needs_a_database(harness: Harness) -> None:
    h = harness
    result = await cli(h, "migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    head = await h.scalar("SELECT version_num FROM alembic_version")
    assert head is not None
    no_db = await asyncio.to_thread(runner.invoke, app, ["migrate"], env={"BULKOPS_DATABASE_URL": None})
    assert no_db.exit_code == 2 and "BULKOPS_DATABASE_URL is not set" in no_db.output
