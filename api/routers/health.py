"""Liveness and readiness (database and Temporal reachable)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", name="live")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


READINESS = {"type": "object", "properties": {"status": {"type": "string"}, "checks": {"type": "object"}}}


@router.get(
    "/readyz",
    name="ready",
    responses={
        200: {
            "description": "the database and Temporal answer",
            "content": {"application/json": {"schema": READINESS}},
        },
        503: {"description": "one of them does not", "content": {"application/json": {"schema": READINESS}}},
    },
)
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = await services.readiness()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
