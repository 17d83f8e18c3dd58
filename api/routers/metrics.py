"""`GET /metrics`: Prometheus text exposition of this process's registry.

With `BULKOPS_METRICS_TOKEN` set (the compose stack requires it) a scrape needs
`Authorization: Bearer <token>`: the page names every operation type and status, and each scrape
runs a query, so it is not for anyone who can reach the API.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import ServicesDep
from api.problems import Problem
from bulkops.infra.metrics import exposition

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get(
    "/metrics", name="metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
)
async def metrics(services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    token = services.settings.metrics_token
    if token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Problem(401, "send Authorization: Bearer <BULKOPS_METRICS_TOKEN>")
    try:
        await services.refresh_metrics()
    except Exception as exc:  # a scrape still answers with what this process knows
        log.warning("could not refresh the running-operations gauge: %s", exc)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
