"""The fuzz tests' stack: the app served by uvicorn on a loopback port in its own thread (its own
lifespan, engine and Temporal client), exactly as `bulkops api` serves it, over a tenant with ended
operations whose real ids the id routes can answer 200 for; a worker runs in the test loop so that the
operations the fuzzer creates really run."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from temporalio.client import Client

from api.app import create_app
from bulkops.settings import Settings
from tests.harness import Harness, Stack, stack_settings
from tests.serving import serve


@dataclass
class Served:
    base: str
    key: str
    ids: dict[str, str]
    h: Harness
    schema: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def load_schema(self) -> Any:
        with self.lock:
            if self.schema is None:
                self.schema = schemathesis.openapi.from_url(f"{self.base}/openapi.json")
            return self.schema


def v1_operations() -> list[str]:
    """`METHOD /path` of every `/v1` route in the document."""
    spec = create_app(Settings()).openapi()
    return [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if path.startswith("/v1/")
    ]


@contextlib.asynccontextmanager
async def served_stack(stack: Stack, client: Client, max_body: int) -> AsyncIterator[Served]:
    settings = stack_settings(stack, "fuzz", BULKOPS_ACTIVITY_MAX_ATTEMPTS=2, BULKOPS_MAX_BODY_BYTES=max_body)
    async with Harness.open(stack, client, settings) as h:
        await h.start_worker()
        t = await h.tenant("fuzz")
        orders = await h.seed(t, 6)
        await h.seed(t, 3, status="PENDING", paid_at=None)
        # Real ids, so that the id routes answer 200s whose bodies the schema check can read.
        export = await h.start(
            t,
            {
                "operation_type": "BULK_EXPORT",
                "order_ids": [str(o) for o in orders],
                "parameters": {"format": "jsonl"},
            },
        )
        cancel = await h.start(
            t,
            {
                "operation_type": "BULK_CANCEL",
                "order_ids": [str(o) for o in [*orders[:3], uuid.uuid4()]],
                "parameters": {"reason": "fuzz"},
            },
        )
        await h.wait_end(t, export["id"])
        await h.wait_end(t, cancel["id"])
        async with serve(settings, own_thread=True) as (base, _):
            yield Served(
                base, t.api_key, {"export": export["id"], "cancel": cancel["id"], "order": str(orders[-1])}, h
            )
