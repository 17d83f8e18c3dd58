"""deploy/: the alerting rules pass their `promtool test rules` unit tests, and every metric a rule or a
dashboard panel names is one that bulkops (or the Temporal SDK in its worker) really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import bulkops.infra.metrics  # noqa: F401  (registers bulkops' metrics, as the API and worker do)
from bulkops.devstack.postgres import free_port
from bulkops.infra.temporal_client import connect
from bulkops.worker import sdk_runtime
from tests.harness import Harness, Stack, stack_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "bulkops-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "bulkops-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "bulkops-dashboard.json"
METRIC = re.compile(r"\b(?:bulkops|temporal)_[a-z0-9_]+\b")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's prometheus package; .ci/run installs it)"
)


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_promtool
def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", RULES.name)
    promtool("test", "rules", RULE_TESTS.name)


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    fired = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert (
        fired
        == quiet
        == alerts
        == {
            "BulkOpsOperationStalled",
            "BulkOpsFailureRatioHigh",
            "BulkOpsNoWorkerPolling",
            "BulkOpsWebhookDeliveriesFailing",
            "BulkOpsWaitingForSlotTooLong",
        }
    )


def named_metrics() -> dict[str, set[str]]:
    """Each metric name a rule or a panel names, and where."""
    rules = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    panels = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    found: dict[str, set[str]] = {}
    for where, exprs in (("rules", rules), ("dashboard", panels)):
        for expr in exprs:
            for name in METRIC.findall(expr):
                found.setdefault(name, set()).add(where)
    return found


def bulkops_exported() -> set[str]:
    """The sample names of bulkops' registry (a labelled counter has no samples until first counted)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("bulkops_")
        for suffix in suffixes[family.type]
    }


async def sdk_exported(stack: Stack) -> set[str]:
    """What a real worker's Temporal runtime serves after one operation with its webhook."""
    port = free_port()
    settings = stack_settings(stack, BULKOPS_WORKER_SDK_METRICS_PORT=port)
    client = await connect(settings, runtime=sdk_runtime(settings))
    async with Harness.open(stack, client, settings) as h:
        t = await h.tenant()
        ids = await h.seed(t, 2)
        await h.start_worker()
        op = await h.start(t, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids]})
        await h.wait_end(t, op["id"])
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


async def test_rules_and_panels_name_only_exported_metrics(stack: Stack) -> None:
    named = named_metrics()
    assert {"rules", "dashboard"} <= {w for ws in named.values() for w in ws}
    exported = bulkops_exported() | await sdk_exported(stack)
    unknown = {name: sorted(where) for name, where in named.items() if name not in exported}
    assert not unknown, f"named but never exported: {unknown}"
    # And the dashboard shows each of bulkops' own metrics.
    shown = {n for n, where in named.items() if "dashboard" in where}
    assert bulkops_exported() - shown <= {"bulkops_activity_duration_seconds_sum"}, bulkops_exported() - shown
