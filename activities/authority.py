"""Activities take their authority from the operation's row, never from their input: the workflow
calling must be the row's own (its id is on the row), the operation must not have ended, and what
the input says about tenant, type and parameters must be what the row says. Anything else is refused
non-retryably and changes nothing — a workflow started by hand on the cluster, pointing at another
tenant or carrying other parameters, gets nowhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import AUTHORITY_REFUSED
from bulkops.domain.model import OperationStatus, OperationType
from bulkops.domain.requests import parse_parameters
from bulkops.store.tables import OPERATIONS


def refused(operation_id: uuid.UUID, why: str) -> ApplicationError:
    return ApplicationError(f"operation {operation_id}: {why}", type=AUTHORITY_REFUSED, non_retryable=True)


@dataclass(frozen=True)
class Operation:
    """What the row says, and so what the activities act on."""

    id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    parameters: dict[str, Any]
    workflow_id: str
    status: OperationStatus

    @classmethod
    def of(cls, operation_id: uuid.UUID, row: Any) -> Operation:
        """From a SQLAlchemy row of the operations table (None: refused)."""
        return cls.from_mapping(operation_id, row._mapping if row is not None else None)

    @classmethod
    def from_mapping(
        cls, operation_id: uuid.UUID, columns: Mapping[str, Any] | None, prefix: str = ""
    ) -> Operation:
        """From the operation's columns, named `prefix` + column (psycopg's dict rows)."""
        if columns is None:
            raise refused(operation_id, "no such operation")
        return cls(
            operation_id,
            columns[f"{prefix}tenant_id"],
            OperationType(columns[f"{prefix}operation_type"]),
            columns[f"{prefix}parameters"],
            columns[f"{prefix}workflow_id"],
            OperationStatus(columns[f"{prefix}status"]),
        )

    def verify(
        self,
        *,
        tenant_id: str | None = None,
        operation_type: OperationType | None = None,
        parameters: dict[str, Any] | None = None,
        open_only: bool = True,
        caller: str | None = None,
    ) -> Operation:
        """This operation if the caller may act on it; else a non-retryable refusal."""
        caller = caller if caller is not None else activity.info().workflow_id
        if caller != self.workflow_id:
            raise refused(self.id, f"workflow {caller} is not the operation's own")
        if open_only and self.status.terminal:
            raise refused(self.id, f"it has ended ({self.status.value})")
        if tenant_id is not None and tenant_id != self.tenant_id:
            raise refused(self.id, "the tenant in the input is not the operation's")
        if operation_type is not None and OperationType(operation_type) != self.operation_type:
            raise refused(self.id, "the type in the input is not the operation's")
        if parameters is not None and parameters != self.parameters:
            raise refused(self.id, "the parameters in the input are not the operation's")
        return self

    def checked_parameters(self) -> dict[str, Any]:
        """The row's parameters, validated again by the model that accepted them."""
        try:
            return parse_parameters(self.operation_type, self.parameters)
        except ValueError as exc:
            raise refused(self.id, f"its parameters are not valid: {exc}") from exc


async def load(session: AsyncSession, operation_id: uuid.UUID, *, lock: bool = False) -> Operation:
    stmt = select(OPERATIONS).where(OPERATIONS.c.id == operation_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).one_or_none()
    return Operation.of(operation_id, row)
