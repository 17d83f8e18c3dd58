"""Bad input over real HTTP: schemathesis against the served OpenAPI document, oversized bodies and
absurd pagination. No input may produce a 5xx, and every documented response must match its schema.

The app runs under uvicorn as `bulkops api` serves it, with a worker in the test loop
(`tests.api.fuzz_stack`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client

from bulkops.store.pagination import encode_cursor
from tests.api.fuzz_stack import Served, served_stack, v1_operations
from tests.harness import Stack

MAX_EXAMPLES = 30
MAX_BODY = 64_000
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
async def served(stack: Stack, client: Client) -> AsyncIterator[Served]:
    async with served_stack(stack, client, MAX_BODY) as served:
        yield served


def _fuzz(served: Served, label: str) -> None:
    method, path = label.split(" ", 1)
    op = served.load_schema()[path][method]
    check_kw = {"base_url": served.base, "headers": served.auth, "checks": CHECKS}

    # Real ids first: each id route on an ended export, an ended cancel with failures, an order.
    for key in ("export", "cancel", "order"):
        names = [p.name for p in op.path_parameters]
        if names and (key == "order") == path.startswith("/v1/orders/"):
            case = op.Case(
                path_parameters={n: served.ids[key] for n in names},
                headers=served.auth,
                **({"body": {}} if op.body else {}),
            )
            case.call_and_validate(**check_kw)

    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        run = _property(op, mode, served, check_kw)
        try:
            if run is not None:
                run()
        except Unsatisfiable:  # nothing to negate (no parameters, no body): the positive run covers it
            if mode is not schemathesis.GenerationMode.NEGATIVE:
                raise


def _property(op: Any, mode: Any, served: Served, check_kw: dict[str, Any]) -> Callable[[], None] | None:
    try:
        strategy = op.as_strategy(generation_mode=mode, headers=served.auth)
    except Exception:  # nothing to negate (no parameters and no body): the positive run covers it
        if mode is schemathesis.GenerationMode.NEGATIVE:
            return None
        raise

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **served.auth}
        case.call_and_validate(**check_kw)

    return run


@pytest.mark.parametrize("label", v1_operations())
async def test_schemathesis(served: Served, label: str) -> None:
    # The fuzzer blocks (requests); the worker lives in this loop and must keep running meanwhile.
    await asyncio.to_thread(_fuzz, served, label)


# --- oversized bodies -------------------------------------------------------------------------------


def _big_create(n_bytes: int) -> bytes:
    body = {
        "operation_type": "BULK_CANCEL",
        "filter": {"statuses": ["PAID"]},
        "parameters": {"reason": "x"},
        "padding": "y" * n_bytes,
    }
    return json.dumps(body).encode()


async def test_oversized_bodies_get_413(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, headers=served.auth, timeout=30) as http:
        big = _big_create(MAX_BODY + 1)
        declared = await http.post(
            "/v1/bulk-operations", content=big, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413, declared.text
        assert declared.headers["content-type"].startswith("application/problem+json")
        assert declared.json()["status"] == 413

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        # No Content-Length at all (chunked): the limit must hold on the bytes actually read.
        chunked = await http.post(
            "/v1/bulk-operations", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413, chunked.text
        assert chunked.headers["content-type"].startswith("application/problem+json")

        orders = {"orders": [{"total_cents": 100, "note": "n" * 1900} for _ in range(40)]}
        too_many = await http.post("/v1/orders", json=orders)
        assert too_many.status_code == 413, too_many.text


# --- absurd pagination ------------------------------------------------------------------------------


def _raw_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


ABSURD_CURSORS = [
    "garbage",
    "!!!",
    "%00",
    "a" * 500,
    _raw_cursor({"a": 1}),
    _raw_cursor([]),
    _raw_cursor([1, 2, 3]),
    _raw_cursor(["not-a-date", str(uuid.uuid4())]),
    _raw_cursor([5, str(uuid.uuid4())]),
    _raw_cursor(["2024-01-01T00:00:00+00:00", "not-a-uuid"]),
    _raw_cursor([None, None]),
    _raw_cursor([[1], {"x": 2}]),
    _raw_cursor(["x"]),
    _raw_cursor([10**30]),
    _raw_cursor([-(10**30)]),
    _raw_cursor(["1e999"]),
    _raw_cursor([1.5]),
    encode_cursor("2024-13-45T99:99:99", uuid.uuid4()),
    encode_cursor("2024-01-01T00:00:00", uuid.uuid4()),
    encode_cursor("\x00", uuid.uuid4()),
]
ABSURD_LIMITS = ["0", "-1", str(10**9), str(10**30), "1e3", "abc", "", "1.5", "NaN"]


async def test_absurd_pagination_gets_4xx_problems(served: Served) -> None:
    lists = ["/v1/bulk-operations", f"/v1/bulk-operations/{served.ids['cancel']}/items", "/v1/orders"]
    async with httpx.AsyncClient(base_url=served.base, headers=served.auth, timeout=30) as http:
        for path in lists:
            for limit in ABSURD_LIMITS:
                r = await http.get(path, params={"limit": limit})
                assert r.status_code == 422, (path, limit, r.status_code, r.text)
                assert r.headers["content-type"].startswith("application/problem+json")
            for cursor in ABSURD_CURSORS:
                r = await http.get(path, params={"cursor": cursor})
                # A cursor that decodes to a real position may answer 200; anything else is a 4xx.
                assert r.status_code in (200, 400, 422), (path, cursor, r.status_code, r.text)
                if r.status_code != 200:
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert r.json()["status"] == r.status_code
            # The real cursor still pages correctly once all that garbage went through.
            first = (await http.get(path, params={"limit": 1})).json()
            if first["next_cursor"]:
                second = await http.get(path, params={"limit": 1, "cursor": first["next_cursor"]})
                assert second.status_code == 200 and second.json()["items"] != first["items"]


# --- values PostgreSQL cannot store (each one a 500 found by the fuzzer before the models refused it) --

UNSTORABLE = [
    ("/v1/orders", '{"orders": [{"total_cents": 5, "note": "a\\u0000b"}]}'),
    ("/v1/orders", '{"orders": [{"total_cents": 5, "metadata": {"\\ud800": 1}}]}'),
    ("/v1/orders", '{"orders": [{"total_cents": 5, "tags": ["x\\udfff"]}]}'),
    ("/v1/orders", '{"orders": [{"total_cents": 5, "metadata": {"a": [NaN]}}]}'),
    ("/v1/orders", '{"orders": [{"total_cents": 5, "paid_at": "0001-01-01T00:00:00+14:00"}]}'),
    ("/v1/orders", '{"orders": [{"total_cents": 5, "paid_at": "9999-12-31T23:59:59-14:00"}]}'),
    (
        "/v1/bulk-operations",
        '{"operation_type": "BULK_CANCEL", "filter": {"statuses": ["PAID"]}, '
        '"parameters": {"reason": "\\u0000"}}',
    ),
    ("/v1/bulk-operations", '{"operation_type": "BULK_EXPORT", "filter": {"customer_email": "\\u0000@x"}}'),
    (
        "/v1/bulk-operations",
        '{"operation_type": "BULK_UPDATE", "order_ids": ["' + str(uuid.uuid4()) + '"], '
        '"parameters": {"metadata": {"a": Infinity}}}',
    ),
]


async def test_unstorable_values_get_422(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, headers=served.auth, timeout=30) as http:
        for path, raw in UNSTORABLE:
            r = await http.post(path, content=raw.encode(), headers={"content-type": "application/json"})
            assert r.status_code == 422, (path, raw, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
