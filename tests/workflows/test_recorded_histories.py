"""Deploys never break a running operation: the histories that the released workflow code wrote
(tests/workflows/histories, recorded by scripts/record_histories.py) replay with the current code. A
change that would make a running operation non-deterministic fails here, before it ships."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.workflow import NondeterminismError

from bulkops.worker import replayer
from tests.workflows.releases import PatchedRelease, UnpatchedRelease, with_release

HISTORIES = Path(__file__).parent / "histories"
# What the recorder covers; a history that goes missing is a gap in what is checked, so it fails too.
RECORDED = {
    "approval-approved",
    "cancel-control",
    "cancel-ids-pause-resume",
    "continue-as-new.run1",
    "continue-as-new.run2",
    "continue-as-new.run3",
    "export-filter",
    "local-activities",
    "refund-filter-webhook",
    "retention",
    "retries-exhausted",
    "retry-of-failed",
    "scheduled-start",
    "tenant-coordinator",
    "threshold-trip",
    "update-ids",
    "update-revert",
}


def load(names: Iterable[str]) -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text()) for name in sorted(names)
    ]


async def each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def test_every_recorded_history_is_present() -> None:
    assert {p.stem for p in HISTORIES.glob("*.json")} == RECORDED


async def test_recorded_histories_replay_with_current_code() -> None:
    histories = load(RECORDED)
    results = await replayer().replay_workflows(each(histories), raise_on_replay_failure=False)
    assert dict(results.replay_failures) == {}


async def test_a_patched_release_replays_the_recorded_histories() -> None:
    results = await replayer(with_release(PatchedRelease)).replay_workflows(
        each(load(RECORDED)), raise_on_replay_failure=False
    )
    assert dict(results.replay_failures) == {}


async def test_an_unguarded_release_fails_replay() -> None:
    """The check can fail: the same change without `workflow.patched` adds commands that the recorded
    runs never issued, which the replayer reports as non-determinism (every history with orders)."""
    histories = load(["cancel-ids-pause-resume", "refund-filter-webhook", "continue-as-new.run2"])
    results = await replayer(with_release(UnpatchedRelease)).replay_workflows(
        each(histories), raise_on_replay_failure=False
    )
    failures = results.replay_failures
    assert len(failures) == len(histories), failures
    assert all(isinstance(e, NondeterminismError) for e in failures.values()), failures
