"""Answers more than one router gives."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from bulkops.domain.representation import UiLinks, operation_view


def accepted(row: Any, settings: UiLinks, base: str, *, created: bool = True) -> JSONResponse:
    """A new operation: 202 with its `Location` (200 when an Idempotency-Key found an earlier one)."""
    view = operation_view(row, settings, base=base)
    return JSONResponse(
        view.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": view.links.self},
    )
