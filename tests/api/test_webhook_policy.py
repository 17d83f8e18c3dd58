"""`notify_url` may not point the worker at loopback, link-local or private hosts (SSRF)."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from bulkops.infra.netpolicy import UnsafeUrl, check_webhook_url
from bulkops.settings import Settings
from bulkops.store.tables import OPERATIONS
from tests.harness import Harness
from tests.webhooks.receivers import ended_operation, receiver
from tests.webhooks.test_transport import deliver

UNSAFE = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://no-such-host.invalid/hook",
]


@pytest.mark.parametrize("url", UNSAFE)
async def test_unsafe_notify_url_is_refused_and_nothing_starts(harness: Harness, url: str) -> None:
    h = harness
    a = await h.tenant()
    ids = await h.seed(a, 2)
    r = await a.post(
        "/v1/bulk-operations",
        json={
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in ids],
            "parameters": {"reason": "x"},
            "notify_url": url,
        },
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["detail"].startswith("notify_url: ")
    assert problem["errors"][0]["loc"] == ["body", "notify_url"]
    assert await h.count(OPERATIONS, OPERATIONS.c.tenant_id == a.id) == 0
    listed = (await a.get("/v1/bulk-operations")).json()
    assert listed["items"] == []


async def test_private_hosts_are_allowed_only_when_configured(harness: Harness) -> None:
    h = harness
    h.configure(webhook_allow_private=True)
    a = await h.tenant()
    ids = await h.seed(a, 1)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in ids],
            "parameters": {"reason": "x"},
            "notify_url": "http://127.0.0.1:9/hook",
        },
    )
    assert op["notify_url"] == "http://127.0.0.1:9/hook"
    assert await h.count(OPERATIONS, OPERATIONS.c.tenant_id == a.id) == 1


async def test_public_addresses_pass() -> None:
    for url in ("https://93.184.216.34/hook", "http://[2606:4700:4700::1111]:8080/x"):
        await check_webhook_url(url, allow_private=False, ports=None)
    with pytest.raises(UnsafeUrl):
        await check_webhook_url("http://127.0.0.1/", allow_private=False, ports=None)


async def test_webhook_ports_are_the_webs_own_unless_configured(harness: Harness) -> None:
    h = harness
    h.configure(webhook_ports=Settings().webhook_ports)  # the deployment's default (the tests' is "*")
    a = await h.tenant()
    ids = await h.seed(a, 1)
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "parameters": {}}
    for url in ("https://93.184.216.34:22/hook", "http://93.184.216.34:6379/x"):
        r = await a.post("/v1/bulk-operations", json={**body, "notify_url": url})
        assert r.status_code == 422 and "port" in r.json()["detail"], r.text
    for url in ("https://93.184.216.34/hook", "http://93.184.216.34:80/hook"):
        await check_webhook_url(url, allow_private=False, ports=Settings().webhook_port_set)
    h.configure(webhook_ports="443,8443")
    await check_webhook_url(
        "https://93.184.216.34:8443/hook", allow_private=False, ports=h.settings.webhook_port_set
    )
    assert await h.count(OPERATIONS, OPERATIONS.c.tenant_id == a.id) == 0


async def test_delivery_checks_again_and_does_not_retry(harness: Harness) -> None:
    """A URL that became private after creation (DNS) is refused at delivery, for good."""
    h = harness
    a = await h.tenant()
    async with receiver("ok") as rx:
        op_id = await ended_operation(h, a, rx.url)
        with pytest.raises(ApplicationError) as caught:
            await deliver(h, op_id, a.id)
    assert caught.value.non_retryable
    assert caught.value.type == "UnsafeUrl"
    assert rx.connections == 0
