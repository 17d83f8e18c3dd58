"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bulkops.domain.requests import MAX_JSON_DEPTH
from bulkops.service.errors import (
    OUTAGES,
    BadCursor,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unavailable,
    is_outage,
)
from bulkops.service.feeds import TooManyStreams
from bulkops.service.limits import LimitExceeded

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = headers
        self.extra = extra


def _phrase(status: int) -> str:
    """The status's reason phrase (the problem's default `title`)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def _limit(exc: LimitExceeded) -> Problem:
    """429 with Retry-After; 422 on the field when the request alone is above the limit."""
    if exc.permanent:
        error = {"loc": ["body", exc.field], "msg": exc.detail, "type": "limit"}
        return Problem(422, f"{exc.field}: {exc.detail}", errors=[error])
    return Problem(429, exc.detail, headers=_retry_after(exc.retry_after_s))


TOO_DEEP = f"the JSON body nests too deeply (at most {MAX_JSON_DEPTH} levels)"
# Seconds a client waits before repeating a request whose operation could not be started.
START_RETRY_AFTER_S = 5
# ... and before repeating one that met PostgreSQL or Temporal away (a restart takes seconds).
OUTAGE_RETRY_AFTER_S = 2

# Each refusal of the service and the answer it gets, everywhere: routers let these propagate (the
# console's pages show the same answers as a page, `api.console.mount`).
REFUSALS: dict[type[Exception], Callable[[Any], Problem]] = {
    NotFound: lambda exc: Problem(404, str(exc)),
    Conflict: lambda exc: Problem(409, str(exc)),
    Gone: lambda exc: Problem(410, str(exc)),
    Forbidden: lambda exc: Problem(403, str(exc)),
    BadCursor: lambda _: Problem(400, "cursor is not valid"),
    Invalid: lambda exc: Problem(
        422, str(exc), errors=[{"loc": ["body", exc.field], "msg": exc.detail, "type": "value_error"}]
    ),
    LimitExceeded: _limit,
    TooManyStreams: lambda exc: Problem(429, str(exc), headers=_retry_after(exc.retry_after_s)),
    Unavailable: lambda exc: Problem(503, str(exc), headers=_retry_after(START_RETRY_AFTER_S)),
}
# What the problem handlers are registered for.
ANSWERED: tuple[type[Exception], ...] = (Problem, *REFUSALS)


def as_problem(exc: Exception) -> Problem:
    """The answer to a `Problem` or to one of the service's refusals (`REFUSALS`)."""
    if isinstance(exc, Problem):
        return exc
    answer = next(REFUSALS[kind] for kind in type(exc).__mro__ if kind in REFUSALS)
    return answer(exc)


def problem_response(
    status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://bulkops.dev/problems/{status}",
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        **extra,
    }
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "422: each invalid field"},
    },
}
# The routes that create an operation (operation ids from `api.app`): admission limits, and a start
# that Temporal did not take.
LIMITED = frozenset({"operations-create", "operations-retry", "operations-revert"})
# Event streams (open streams are capped), key and order creation (per minute): 429.
STREAMS = frozenset({"operations-events", "tenant-create_key", "orders-create"})
# Routes whose body names a resource of the tenant (a key's `user_id`): 404 when it is not there.
NAMES_IN_BODY = frozenset({"tenant-create_key"})
ERROR_STATUSES = {
    400: "the cursor is not valid",
    401: "no valid API key",
    403: "the API key's role does not allow this",
    404: "no such resource (or not yours)",
    409: "not allowed in the current state",
    413: "the request body is too large",
    422: "the request is not valid",
    429: "a per-tenant limit is reached; try again after Retry-After seconds",
    503: (
        "PostgreSQL or Temporal is briefly away, or the operation could not be started; send the "
        "request again (with the same Idempotency-Key)"
    ),
}


def _document_problems(app: FastAPI) -> None:
    """Say in the OpenAPI document what the handlers below really send: problem+json, not FastAPI's
    default `HTTPValidationError` JSON (clients and schema checkers read the document literally)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = default_openapi()
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in spec.get("paths", {}).items():
            for op in item.values():
                statuses = {422} if "422" in op.get("responses", {}) else set()
                if path.startswith("/v1/"):
                    named = "{" in path or op.get("operationId") in NAMES_IN_BODY
                    statuses |= {401, 400, 403, 409} | ({404} if named else set())
                    statuses |= {413} if "requestBody" in op else set()
                    # Creating an operation (create, retry, revert) counts against the tenant's limits.
                    statuses |= {429, 503} if op.get("operationId") in LIMITED else set()
                    statuses |= {429} if op.get("operationId") in STREAMS else set()
                for status in statuses:
                    op["responses"][str(status)] = {"description": ERROR_STATUSES[status], "content": content}
        for unused in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document_problems(app)

    async def _problem(_: Request, exc: Exception) -> JSONResponse:
        answer = as_problem(exc)
        return problem_response(answer.status, answer.detail, answer.title, answer.headers, **answer.extra)

    for kind in ANSWERED:
        app.add_exception_handler(kind, _problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, RecursionError):
            # FastAPI's JSON parse of a body nested beyond Python's recursion limit: not valid here.
            return problem_response(
                422, TOO_DEEP, errors=[{"loc": ["body"], "msg": TOO_DEEP, "type": "json"}]
            )
        return problem_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return problem_response(422, f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "an unexpected error occurred")

    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        if not is_outage(exc):
            return await _unexpected(request, exc)
        log.warning("%s %s: a backing service is away: %s", request.method, request.url.path, exc)
        detail = "the service is briefly unavailable; send the request again"
        return problem_response(503, detail, headers=_retry_after(OUTAGE_RETRY_AFTER_S))

    for kind in OUTAGES:
        app.add_exception_handler(kind, _outage)
