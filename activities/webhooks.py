"""The completion webhook: one signed POST of the final `BulkOperation` JSON.

Runs on its own task queue (`Settings.webhook_task_queue`) with its own slots, so a receiver that
hangs holds a webhook slot, never one that processes orders. A non-2xx answer or a network error
raises, so Temporal retries with backoff (up to 24 h); the receiver de-duplicates on the
`X-Bulkops-Delivery` id, which is the same on every attempt. The signature is made afresh on each
attempt (`t` is the attempt's time), with every secret of the tenant that signs now: the current one
and, during a rotation's overlap, the previous one.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import DELIVER_WEBHOOK, WebhookInput
from bulkops.domain.views import operation_view
from bulkops.infra.netpolicy import Unresolvable, UnsafeUrl
from bulkops.infra.webhook_http import post_bounded
from bulkops.settings import Settings
from bulkops.store.operations import get_operation
from bulkops.store.tables import Tenant

SIGNATURE_HEADER = "X-Bulkops-Signature"


def signature_header(secrets: list[str], body: bytes, t: int) -> str:
    """`t=<unix>,v1=<hex hmac-sha256 of "t.body">` with one `v1` per secret."""
    signed = f"{t}.".encode() + body
    macs = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={t}", *(f"v1={m}" for m in macs)])


def signing_secrets(tenant: Tenant | None, now: datetime) -> list[str]:
    if tenant is None:
        return []
    secrets = [tenant.webhook_secret]
    until = tenant.webhook_secret_previous_until
    if tenant.webhook_secret_previous and until is not None and now < until:
        secrets.append(tenant.webhook_secret_previous)
    return [s for s in secrets if s]  # never sign with an empty key


class WebhookActivities:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings, http: httpx.AsyncClient) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.http = http

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, inp: WebhookInput) -> int:
        async with self.sessionmaker() as session:
            row = await get_operation(session, inp.tenant_id, inp.operation_id)
            tenant = await session.get(Tenant, inp.tenant_id)
        if row is None or not row.notify_url:
            raise ApplicationError("no such operation, or it has no notify_url", non_retryable=True)
        secrets = signing_secrets(tenant, datetime.now(UTC))
        if not secrets:
            raise ApplicationError("the tenant has no webhook secret", type="NoSecret", non_retryable=True)
        view = operation_view(row, self.settings, base=self.settings.api_base_url())
        body = view.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secrets, body, int(time.time())),
            "X-Bulkops-Delivery": str(inp.operation_id),
        }
        try:
            # The URL comes from the row (authority), and the transport vets where it connects.
            answer = await post_bounded(
                self.http, row.notify_url, body, headers, self.settings.webhook_timeout_s
            )
        except Unresolvable as exc:  # DNS may answer again later: Temporal retries
            raise RuntimeError(f"webhook not sent: {exc}") from exc
        except UnsafeUrl as exc:
            raise ApplicationError(f"webhook not sent: {exc}", type="UnsafeUrl", non_retryable=True) from exc
        except TimeoutError as exc:
            raise RuntimeError(
                f"webhook receiver did not answer within {self.settings.webhook_timeout_s}s"
            ) from exc
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"webhook receiver answered {answer.status}: {answer.head[:200]!r}")
        activity.logger.info("operation %s: webhook delivered (%s)", inp.operation_id, answer.status)
        return answer.status
