"""The tenant's approval and pacing policy, and an operation's approval: which operations need a
second person, what they were predicted to do, who decided, and who may not. Imports nothing of
ours but the domain, so every layer (and the workflow) may use it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bulkops.domain.model import OperationType
from bulkops.domain.people import Actor

# `failure_reason` of an operation that never ran because nobody (or a refusal) approved it.
APPROVAL_REJECTED = "APPROVAL_REJECTED"
APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
# How far ahead `start_at` may lie.
MAX_SCHEDULE_DAYS = 366
MAX_ORDERS_PER_SECOND = 10_000.0


class TenantPolicy(BaseModel):
    """Which operations need a second person, how long they wait for one, and the default pace."""

    model_config = ConfigDict(extra="forbid")

    approval_types: list[OperationType] = Field(
        default_factory=list, description="every operation of these types needs approval"
    )
    approval_over_orders: int | None = Field(
        default=None, ge=0, description="an operation matching more orders than this needs approval"
    )
    approval_over_refund_cents: int | None = Field(
        default=None,
        ge=0,
        description="a BULK_REFUND whose predicted refund total exceeds this needs approval",
    )
    approval_window_s: int = Field(
        default=86_400, ge=1, le=30 * 86_400, description="an unapproved operation expires after this"
    )
    default_max_orders_per_second: float | None = Field(
        default=None, gt=0, le=MAX_ORDERS_PER_SECOND, description="pace of operations that set none"
    )

    # Admission limits for this tenant (None: the deployment's default from Settings).
    max_creates_per_minute: int | None = Field(
        default=None, ge=1, description="operations created per minute"
    )
    max_waiting_operations: int | None = Field(
        default=None, ge=1, description="operations waiting to run (PENDING, SCHEDULED, AWAITING_APPROVAL)"
    )
    max_concurrency_total: int | None = Field(
        default=None, ge=1, description="sum of max_concurrency over the operations that have not ended"
    )

    @property
    def gates_anything(self) -> bool:
        """Whether any operation may need approval under this policy (else no forecast is needed)."""
        return bool(
            self.approval_types
            or self.approval_over_orders is not None
            or self.approval_over_refund_cents is not None
        )

    def approval_for(
        self, operation_type: OperationType, prediction: Prediction, requested_by: str | None, now: datetime
    ) -> Approval | None:
        """The pending approval an operation with this prediction needs, or None."""
        reasons = self.approval_reasons(operation_type, prediction)
        if not reasons:
            return None
        return Approval(
            reasons=reasons,
            policy=self.model_dump(mode="json"),
            prediction=prediction,
            requested_by=requested_by,
            expires_at=now + timedelta(seconds=self.approval_window_s),
        )

    def approval_reasons(self, operation_type: OperationType, prediction: Prediction) -> list[str]:
        reasons = []
        if operation_type in self.approval_types:
            reasons.append(f"every {operation_type.value} needs approval")
        if self.approval_over_orders is not None and prediction.matched_count > self.approval_over_orders:
            reasons.append(f"{prediction.matched_count} orders > {self.approval_over_orders}")
        if (
            operation_type is OperationType.BULK_REFUND
            and self.approval_over_refund_cents is not None
            and prediction.predicted_refund_cents > self.approval_over_refund_cents
        ):
            reasons.append(
                f"predicted refund {prediction.predicted_refund_cents} cents > "
                f"{self.approval_over_refund_cents}"
            )
        return reasons


class Prediction(BaseModel):
    """The dry run's forecast, shown to whoever approves."""

    matched_count: int
    would_fail_count: int
    would_fail_by_code: dict[str, int]
    predicted_refund_cents: int = 0


class ApprovalStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"  # the operation was cancelled before anyone decided


class Approval(BaseModel):
    """Why an operation needed a second person, what it was predicted to do, and who decided."""

    status: ApprovalStatus = ApprovalStatus.PENDING
    reasons: list[str]
    policy: dict[str, Any]
    prediction: Prediction
    requested_by: str | None = None
    expires_at: datetime
    decided_by: str | None = None
    decided_by_key_id: str | None = None
    decided_by_user_id: str | None = None
    decided_by_key_name: str | None = None
    decided_by_session_id: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None

    @property
    def decider(self) -> Actor | None:
        if self.decided_by is None:
            return None
        return Actor(
            key_id=self.decided_by_key_id,
            name=self.decided_by,
            user_id=self.decided_by_user_id,
            key_name=self.decided_by_key_name,
            session_id=self.decided_by_session_id,
        )


def decision_refusal(
    actor: Actor, creator_user_id: str | None, creator_key_id: str | None, verb: str
) -> str | None:
    """Why `actor` may not `verb` (approve or reject) an operation its creator created, or None."""
    if actor.service:
        return f"a service key cannot {verb} an operation; a person must, with their own key or the console"
    if actor.same_person(creator_user_id, creator_key_id):
        return (
            f"the person who created an operation cannot {verb} it, whichever key or session they use; "
            "ask another approver"
        )
    return None
