"""The audit trail's vocabulary: the actions recorded once each, and an event as read back."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from bulkops.domain.people import Actor


class AuditAction(StrEnum):
    CREATED = "created"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SCHEDULED = "scheduled"
    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    RETRIED = "retried"
    REVERTED = "reverted"
    ENDED = "ended"


class AuditEventRead(BaseModel):
    id: int
    operation_id: uuid.UUID
    action: AuditAction
    actor_key_id: str | None
    actor_name: str | None
    actor_user_id: str | None = None
    actor_key_name: str | None = None
    actor_session_id: str | None = None

    @property
    def actor(self) -> Actor | None:
        """Who, as an `Actor` (a key without a person is a service key); None: bulkops itself."""
        if self.actor_name is None and self.actor_key_id is None:
            return None
        return Actor(
            key_id=self.actor_key_id,
            name=self.actor_name,
            user_id=self.actor_user_id,
            key_name=self.actor_key_name,
            session_id=self.actor_session_id,
            service=self.actor_user_id is None and self.actor_key_id is not None,
        )

    at: datetime
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventRead]
