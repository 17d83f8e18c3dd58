"""The completion webhook: one signed POST of the final `BulkOperation` JSON.

A non-2xx answer or a network error raises, so Temporal retries with backoff (up to 24 h); the
receiver de-duplicates on the `X-Bulkops-Delivery` id, which is the same on every attempt.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import DELIVER_WEBHOOK, WebhookInput
from bulkops.domain.representation import operation_view
from bulkops.infra.netpolicy import UnsafeUrl, check_webhook_url
from bulkops.settings import Settings
from bulkops.store.tables import BulkOperation, Tenant

SIGNATURE_HEADER = "X-Bulkops-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookActivities:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings, http: httpx.AsyncClient) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.http = http

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, inp: WebhookInput) -> int:
        try:
            # Again at delivery: the name may resolve elsewhere now than when the operation was created.
            await check_webhook_url(inp.notify_url, allow_private=self.settings.webhook_allow_private)
        except UnsafeUrl as exc:
            raise ApplicationError(f"webhook not sent: {exc}", type="UnsafeUrl", non_retryable=True) from exc
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(BulkOperation.__table__).where(BulkOperation.id == inp.operation_id)
                )
            ).one()
            secret = await session.scalar(select(Tenant.webhook_secret).where(Tenant.id == inp.tenant_id))
        view = operation_view(row, self.settings, base=self.settings.api_base_url())
        body = view.model_dump_json().encode()
        response = await self.http.post(
            inp.notify_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret or "", body),
                "X-Bulkops-Delivery": str(inp.operation_id),
            },
            timeout=self.settings.webhook_timeout_s,
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"webhook receiver answered {response.status_code}")
        activity.logger.info("operation %s: webhook delivered (%s)", inp.operation_id, response.status_code)
        return response.status_code
