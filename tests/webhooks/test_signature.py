"""Signatures carry a time and a version; the README's verifier rejects stale and foreign ones;
a rotation signs with both secrets during its overlap and with the new one only after it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from temporalio.exceptions import ApplicationError

from activities.webhooks import signature_header
from bulkops.service.auth import rotate_webhook_secret
from bulkops.store.tables import Tenant
from tests.harness import Harness
from tests.webhooks.receivers import ended_operation, receiver
from tests.webhooks.test_transport import deliver

README = Path(__file__).resolve().parents[2] / "README.md"
Verify = Callable[..., bool]


@pytest.fixture(scope="module")
def verify() -> Verify:
    """The receiver-side verifier exactly as the README prints it."""
    block = re.search(r"```python\n(import hashlib\n.*?def verify\(.*?)```", README.read_text(), re.S)
    assert block, "the README shows a verifier"
    namespace: dict[str, object] = {}
    exec(block.group(1), namespace)
    return namespace["verify"]  # type: ignore[return-value]


def test_the_readme_verifier_rejects_stale_forged_and_tampered(verify: Verify) -> None:
    body = b'{"id": "x"}'
    now = int(time.time())
    assert verify("whsec_a", signature_header(["whsec_a"], body, now), body)
    assert verify("whsec_a", signature_header(["whsec_a"], body, now - 290), body)
    # Older than the tolerance window: a captured request replayed later is rejected.
    assert not verify("whsec_a", signature_header(["whsec_a"], body, now - 301), body)
    assert not verify("whsec_a", signature_header(["whsec_a"], body, now - 3600), body, tolerance_s=600)
    assert not verify("whsec_a", signature_header(["whsec_a"], body, now + 400), body)
    assert not verify("whsec_b", signature_header(["whsec_a"], body, now), body)
    assert not verify("whsec_a", signature_header(["whsec_a"], body, now), body + b" ")
    # The time is signed: moving it forward breaks the signature.
    forged = signature_header(["whsec_a"], body, now - 3600).replace(f"t={now - 3600}", f"t={now}")
    assert not verify("whsec_a", forged, body)
    assert not verify("whsec_a", "v1=" + "0" * 64, body)


async def test_rotation_signs_with_both_secrets_during_the_overlap_only(
    harness: Harness, verify: Verify
) -> None:
    h = harness
    h.configure(webhook_allow_private=True)
    a = await h.tenant()
    first = a.webhook_secret
    async with receiver("ok") as rx:
        op_id = await ended_operation(h, a, rx.url)
        async with h.sessionmaker() as session, session.begin():
            second = await rotate_webhook_secret(session, a.id, timedelta(hours=1))
        assert second and second != first
        assert await deliver(h, op_id, a.id) == 204
        during = rx.hits[-1]
        assert during.headers["x-bulkops-signature"].count("v1=") == 2
        assert verify(first, during.headers["x-bulkops-signature"], during.body)
        assert verify(second, during.headers["x-bulkops-signature"], during.body)

        async with h.sessionmaker() as session, session.begin():
            third = await rotate_webhook_secret(session, a.id, timedelta(0))  # no overlap
        assert third
        assert await deliver(h, op_id, a.id) == 204
        after = rx.hits[-1]
        assert after.headers["x-bulkops-signature"].count("v1=") == 1
        assert verify(third, after.headers["x-bulkops-signature"], after.body)
        assert not verify(second, after.headers["x-bulkops-signature"], after.body)
        assert not verify(first, after.headers["x-bulkops-signature"], after.body)
    async with h.sessionmaker() as session, session.begin():
        assert await rotate_webhook_secret(session, "no-such-tenant", timedelta(hours=1)) is None


async def test_an_empty_secret_never_signs(harness: Harness) -> None:
    h = harness
    h.configure(webhook_allow_private=True)
    a = await h.tenant()
    async with h.sessionmaker() as session, session.begin():
        await session.execute(update(Tenant).where(Tenant.id == a.id).values(webhook_secret=""))
    async with receiver("ok") as rx:
        op_id = await ended_operation(h, a, rx.url)
        with pytest.raises(ApplicationError) as caught:
            await deliver(h, op_id, a.id)
    assert caught.value.non_retryable and caught.value.type == "NoSecret"
    assert rx.hits == []
