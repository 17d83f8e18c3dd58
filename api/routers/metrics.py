"""`GET /metrics`: Prometheus text exposition of this process's registry (no auth, like /healthz)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from api.deps import SessionmakerDep
from bulkops.infra.metrics import exposition, refresh_running

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(sessionmaker: SessionmakerDep) -> Response:
    try:
        await refresh_running(sessionmaker)
    except Exception as exc:  # a scrape still answers with what this process knows
        log.warning("could not refresh the running-operations gauge: %s", exc)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
