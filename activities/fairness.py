"""Asks the tenant's coordinator workflow for a running slot (signal-with-start, so it exists)."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts import CLOSED_SLOT_HOLDERS, REQUEST_SLOT
from bulkops.domain.model import operation_workflow_id
from bulkops.settings import Settings
from workflows.contracts import (
    COORDINATOR_WORKFLOW,
    REQUEST_SIGNAL,
    CoordinatorState,
    HolderCheck,
    SlotRequest,
    coordinator_id,
)


class FairnessActivities:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @activity.defn(name=REQUEST_SLOT)
    async def request_slot(self, req: SlotRequest) -> None:
        req = req.model_copy(
            update={
                "max_running": req.max_running or self.settings.tenant_max_running,
                "holder_check_s": self.settings.tenant_slot_check_s,
            }
        )
        await self.client.start_workflow(
            COORDINATOR_WORKFLOW,
            CoordinatorState(
                tenant_id=req.tenant_id,
                max_running=req.max_running or 1,
                holder_check_s=self.settings.tenant_slot_check_s,
            ),
            id=coordinator_id(req.tenant_id),
            task_queue=self.settings.task_queue,
            start_signal=REQUEST_SIGNAL,
            start_signal_args=[req],
            static_summary=f"fairness coordinator · tenant {req.tenant_id}",
        )

    @activity.defn(name=CLOSED_SLOT_HOLDERS)
    async def closed_slot_holders(self, check: HolderCheck) -> list[uuid.UUID]:
        """The slot holders whose workflow no longer runs (terminated, timed out, or gone)."""
        closed = []
        for op_id in check.operation_ids:
            try:
                desc = await self.client.get_workflow_handle(operation_workflow_id(op_id)).describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise  # transient: Temporal retries the activity
                closed.append(op_id)
                continue
            if desc.status != WorkflowExecutionStatus.RUNNING:
                closed.append(op_id)
        return closed
