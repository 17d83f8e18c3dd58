"""`GET /v1/bulk-operations/{id}/export`: the rows a `BULK_EXPORT` kept, as CSV or NDJSON.

The export activity stored each order's row in `bulk_operation_items.result`; the service reads them
back in selection order, page by page (memory stays flat, no connection is held while a slow client
drains the response); this module only formats them.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import OperationsDep, PrincipalDep
from bulkops.domain.model import ORDER_FIELDS

router = APIRouter(prefix="/v1/bulk-operations", tags=["operations"])
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP):
# a customer who names themselves "=HYPERLINK(…)" must not get code into support's spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # shown as text; NDJSON keeps the value exactly
    return value  # None is written as an empty cell


async def csv_chunks(pages: AsyncIterator[list[Any]], fields: Sequence[str]) -> AsyncIterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(fields)
    async for page in pages:
        writer.writerows([_cell(row.get(f)) for f in fields] for row in page)
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.tell():  # only the header: an export without a single succeeded row
        yield buf.getvalue()


async def ndjson_chunks(pages: AsyncIterator[list[Any]], fields: Sequence[str]) -> AsyncIterator[str]:
    async for page in pages:
        # jsonb does not keep key order: rebuild each object in the requested field order.
        yield "".join(
            json.dumps({f: row.get(f) for f in fields}, separators=(",", ":"), ensure_ascii=False) + "\n"
            for row in page
        )


@router.get(
    "/{operation_id}/export",
    name="export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/x-ndjson": {}},
            "description": "the exported orders, in selection order",
        },
        409: {"description": "not an export, or it has not ended yet"},
        410: {"description": "the exported rows were deleted by retention (BULKOPS_RETENTION_DAYS)"},
    },
)
async def export_operation(
    operation_id: uuid.UUID,
    principal: PrincipalDep,
    service: OperationsDep,
) -> StreamingResponse:
    params, pages = await service.export(principal.tenant_id, operation_id)
    fields = list(params.fields or ORDER_FIELDS)
    chunks = csv_chunks(pages, fields) if params.format == "csv" else ndjson_chunks(pages, fields)
    return StreamingResponse(
        chunks,
        media_type=MEDIA[params.format],
        headers={"Content-Disposition": f'attachment; filename="bulk-op-{operation_id}.{params.format}"'},
    )
