"""A short soak on a fixed seed: two workers and two APIs, every kind of fault at least once, then
every invariant at 0 violations (`bulkops chaos` runs the long ones; the README quotes them)."""

from __future__ import annotations

import json
import logging

from bulkops.chaos.faults import FaultKind
from bulkops.chaos.soak import SoakOptions, soak_and_report

log = logging.getLogger(__name__)


def test_short_soak_keeps_every_invariant() -> None:
    opts = SoakOptions(
        seed=2026,
        duration_s=55,
        every_s=6.5,
        tenants=5,
        orders_per_tenant=60,
        settle_s=120,
        max_operations=80,
    )
    report, status = soak_and_report(opts)
    log.info("chaos report: %s", json.dumps(report))
    assert set(report["faults"]) == {k.value for k in FaultKind}, report["faults"]
    for name, verdict in report["invariants"].items():
        assert verdict["violations"] == 0, (name, verdict)
        assert verdict["checks"] > 0, name
    assert report["processes_exited"] == [] and report["violations"] == 0 and status == 0
    # The traffic was real: operations of every type ended, outages were met with 503s.
    assert set(report["operations_by_type"]) == {"BULK_CANCEL", "BULK_REFUND", "BULK_UPDATE", "BULK_EXPORT"}
    assert report["operations"] >= 15 and report["orders"] >= 150
    assert report["settled_within_s"] is not None
