"""What readers are told about an operation: the one read path of `GET …/{id}` and the events stream.

Reads write nothing and signal nothing. While an operation runs, its counters come from the
workflow's `progress` query. When the query cannot answer in time (no worker holds the workflow:
killed, restarting, deploying), the answer is the row's checkpoint, marked `checkpoint`. The
checkpoint is written at page fetches and status changes, so it can be behind the last live answer:
`ProgressFloor` keeps the best answer this process gave, so that no reader sees the counters go back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from cachetools import LRUCache
from temporalio.client import Client

from bulkops.domain.model import operation_workflow_id
from bulkops.domain.records import OperationRecord
from bulkops.domain.views import BulkOperationRead, Progress, operation_view
from bulkops.service.feeds import Coalesced
from bulkops.settings import Settings
from workflows.contracts import PROGRESS_QUERY

log = logging.getLogger(__name__)

# What a held-back answer takes from the best earlier one: the counters, and when they were true.
FLOOR_FIELDS = (
    "total_count",
    "processed_count",
    "success_count",
    "failed_count",
    "percent_complete",
    "errors",
    "progress_at",
)


class ProgressFloor:
    """The best answer given so far for each running operation (bounded, the least recently read
    forgotten first)."""

    def __init__(self, size: int = 10_000) -> None:
        self.best: LRUCache[uuid.UUID, BulkOperationRead] = LRUCache(maxsize=size)

    def hold(self, view: BulkOperationRead) -> BulkOperationRead:
        if view.progress_source == "final":
            self.best.pop(view.id, None)
            return view
        best = self.best.get(view.id)
        if best is not None and best.processed_count > view.processed_count:
            held = {name: getattr(best, name) for name in FLOOR_FIELDS}
            not_live = {"progress_source": "checkpoint", "orders_per_second": None, "eta_seconds": None}
            view = view.model_copy(update={**held, **not_live})
        self.best[view.id] = view
        return view


class ProgressReader:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.floor = ProgressFloor()
        self.shared = Coalesced(self._query, settings.progress_fresh_s)

    async def query(self, operation_id: uuid.UUID) -> Progress | None:
        """The workflow's live counters, or None when it cannot answer in time; readers of one
        operation share one query in flight and its answer for BULKOPS_PROGRESS_FRESH_S."""
        answer: Progress | None = await self.shared.get(operation_id)
        return answer

    def controlled(self, operation_id: uuid.UUID, live: Progress) -> None:
        """A control's answer (pause, resume, …) is the workflow's newest word: this process's next
        reads start from it, not from an answer it gave before the control."""
        self.shared.put(operation_id, live)

    async def _query(self, operation_id: uuid.UUID) -> Progress | None:
        handle = self.client.get_workflow_handle(operation_workflow_id(operation_id))
        wait = self.settings.progress_query_timeout_s
        try:
            # The client retries a query that found no worker: bound the whole call, not each attempt.
            async with asyncio.timeout(wait):
                return await handle.query(
                    PROGRESS_QUERY, result_type=Progress, rpc_timeout=timedelta(seconds=wait)
                )
        except Exception as exc:  # no worker holds it, Temporal briefly unreachable, not started yet
            log.info("progress query for %s did not answer: %s", operation_id, exc)
            return None

    def view(self, row: OperationRecord, live: Progress | None, base: str) -> BulkOperationRead:
        # A shared live answer is true as of when the workflow gave it, not when it is passed on.
        at = self.shared.answered_at(row.id) if live is not None else None
        return self.floor.hold(operation_view(row, self.settings, live=live, base=base, now=at))
