"""What the soak knows of the operations it started: their last seen state, and every acknowledged
(2xx) or lost (no answer) request that should have had an effect."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bulkops.domain.model import TERMINAL_STATUSES, OperationStatus


@dataclass
class SeenOperation:
    id: str
    tenant: int  # index into the soak's tenants
    operation_type: str
    status: str = "PENDING"
    success_count: int = 0
    failed_count: int = 0
    total_count: int = 0
    reverted: bool = False

    @property
    def ended(self) -> bool:
        return OperationStatus(self.status) in TERMINAL_STATUSES

    def saw(self, view: dict[str, Any]) -> None:
        self.status = view["status"]
        self.success_count = view["success_count"]
        self.failed_count = view["failed_count"]
        self.total_count = view["total_count"]


@dataclass
class Book:
    operations: dict[str, SeenOperation] = field(default_factory=dict)
    # (operation id, action) -> 2xx answers to pause, resume, cancel, approve, reject.
    acknowledged: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Controls whose answer was lost (the API process died): their effect may or may not have happened.
    unknown: set[tuple[str, str]] = field(default_factory=set)
    # Pairs of operation ids that one Idempotency-Key, sent twice at once, was answered with.
    same_key_answers: list[tuple[str, str]] = field(default_factory=list)

    def add(self, view: dict[str, Any], tenant: int) -> SeenOperation:
        seen = self.operations.get(view["id"])
        if seen is None:
            seen = SeenOperation(view["id"], tenant, view["operation_type"])
            self.operations[view["id"]] = seen
        seen.saw(view)
        return seen

    def open(self) -> list[SeenOperation]:
        return [op for op in self.operations.values() if not op.ended]

    def ended(self) -> list[SeenOperation]:
        return [op for op in self.operations.values() if op.ended]
