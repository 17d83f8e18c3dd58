"""A release of `BulkOperationWorkflow` as a test ships it: the same workflow name, one change that adds
commands (a checkpoint of the counters to the operation's row before every fourth order), once behind
`workflow.patched` as the README's release procedure says, and once without it, as a careless release
would. Registered in place of the current class on a new worker (`build_worker(workflows=…)`).
"""

from __future__ import annotations

from temporalio import workflow

from activities.contracts import Target
from bulkops.domain.views import Progress
from bulkops.worker import WORKFLOWS
from workflows.bulk_operation import BulkOperationWorkflow
from workflows.contracts import BULK_OPERATION_WORKFLOW, BulkOperationInput

PATCH_ID = "checkpoint-every-4th-order"
EVERY = 4


@workflow.defn(name=BULK_OPERATION_WORKFLOW, sandboxed=False)
class PatchedRelease(BulkOperationWorkflow):
    """A run that began on the old code replays without the marker, so `patched` is false there, and
    the SDK keeps that answer for the rest of the run: it keeps the old behaviour to its end. Runs that
    begin on this code (new operations, and the next run after continue-as-new) take the new branch
    and record the marker."""

    @workflow.run
    async def run(self, inp: BulkOperationInput) -> Progress:
        return await super().run(inp)

    async def _process(self, target: Target) -> None:
        if target.seq % EVERY == 0 and workflow.patched(PATCH_ID):
            await self._persist_status()
        await super()._process(target)


@workflow.defn(name=BULK_OPERATION_WORKFLOW, sandboxed=False)
class UnpatchedRelease(BulkOperationWorkflow):
    """The same change, unguarded: replaying a history recorded before it fails (nondeterminism)."""

    @workflow.run
    async def run(self, inp: BulkOperationInput) -> Progress:
        return await super().run(inp)

    async def _process(self, target: Target) -> None:
        if target.seq % EVERY == 0:
            await self._persist_status()
        await super()._process(target)


def with_release(release: type) -> list[type]:
    """The worker's workflows with `release` in place of the current `BulkOperationWorkflow`."""
    return [release if w is BulkOperationWorkflow else w for w in WORKFLOWS]
