"""Asks the tenant's coordinator workflow for a running slot (signal-with-start, so it exists)."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from bulkops.models import CoordinatorState, SlotRequest
from bulkops.settings import Settings


class FairnessActivities:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @activity.defn(name="request_slot")
    async def request_slot(self, req: SlotRequest) -> None:
        from workflows.tenant_coordinator import TenantCoordinatorWorkflow, coordinator_id

        req = req.model_copy(update={"max_running": req.max_running or self.settings.tenant_max_running})
        await self.client.start_workflow(
            TenantCoordinatorWorkflow.run,
            CoordinatorState(tenant_id=req.tenant_id, max_running=req.max_running or 1),
            id=coordinator_id(req.tenant_id),
            task_queue=self.settings.task_queue,
            start_signal="request",
            start_signal_args=[req],
            static_summary=f"fairness coordinator · tenant {req.tenant_id}",
        )
