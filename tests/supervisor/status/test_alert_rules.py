"""prometheus/alerts.yml (and the Grafana dashboard) and supervisor/status/metrics.py cannot drift apart.

Every metric, label and bucket an alert rule uses is exported. (`promtool test rules
prometheus/alerts_test.yml`, run by `make test`, checks the rules' logic.)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.clock import FakeClock
from supervisor.config.schema import MqttSpec
from supervisor.states import ExitReason, NodeState
from supervisor.status.metrics import FleetMetrics
from supervisor.status.mqtt import MqttPublisher
from supervisor.status.session import FileSessionCounter
from tests.supervisor.status.conftest import exit_info, node_status, phase, recovery_report

RULES = Path(__file__).resolve().parents[3] / "prometheus" / "alerts.yml"
DASHBOARD = RULES.with_name("grafana-dashboard.json")
# Series Prometheus makes itself, and the labels it adds to every scraped series.
PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"job", "instance"}
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")
METRIC = re.compile(r"\b(fleet_[a-zA-Z0-9_]+)\b")


def _exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    """Sample name -> label sets, as scraped from metrics that have seen every kind of event."""
    clock = FakeClock()
    publisher = MqttPublisher(
        spec=MqttSpec(),
        fleet="prod",
        host="h",
        sessions=FileSessionCounter(tmp_path_factory.mktemp("s") / "session"),
        clock=clock,
    )
    metrics = FleetMetrics(fleet="prod", host="h", clock=clock, mqtt=publisher)
    metrics.node_status(node_status(NodeState.READY))
    metrics.node_exited(node_status(NodeState.BACKOFF), exit_info(ExitReason.SIGNAL), True)
    metrics.node_status(node_status(NodeState.QUARANTINED))
    metrics.recovery_phase(node_status(NodeState.RECOVERING), phase("reconciled", 100.0))
    metrics.recovery_report(recovery_report())
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def _concrete(expr: str) -> str:
    """A dashboard query with Grafana's variables filled in, as Prometheus would receive it."""
    return expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$instance", ".*")


@pytest.mark.parametrize(("alert", "expr"), _exprs(), ids=[f"{a}-{i}" for i, (a, _) in enumerate(_exprs())])
def test_rule_uses_only_exported_metrics_labels_and_buckets(
    alert: str, expr: str, exported: dict[str, list[dict[str, str]]]
) -> None:
    check_expr(alert, expr, exported)


@pytest.mark.parametrize(("title", "expr"), _dashboard_exprs())
def test_dashboard_uses_only_exported_metrics(
    title: str, expr: str, exported: dict[str, list[dict[str, str]]]
) -> None:
    check_expr(title, _concrete(expr), exported)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses expressions when it checks rules: wrap each query in a recording rule.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _concrete(e)}
        for i, (_, e) in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is needed (Debian: prometheus)"
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def check_expr(alert: str, expr: str, exported: dict[str, list[dict[str, str]]]) -> None:
    names = set(METRIC.findall(expr))
    for name in names:
        assert name in exported, f"{alert}: {name} is not exported by FleetMetrics"

    for name, matchers in SELECTOR.findall(expr):
        if name in PROMETHEUS_OWN:
            continue
        label_sets = exported[name]
        for label, op, pattern in MATCHER.findall(matchers):
            if label in TARGET_LABELS:
                continue
            assert any(label in labels for labels in label_sets), f"{alert}: {name} has no label {label!r}"
            if op == "=~":
                # PromQL regexes are anchored at both ends; bucket bounds must hit a real bucket.
                regex = re.compile(pattern.replace("\\\\", "\\"))
                values = {labels[label] for labels in label_sets if label in labels}
                assert any(regex.fullmatch(v) for v in values), (
                    f"{alert}: {label}=~{pattern!r} matches none of {values}"
                )
            elif op == "=":
                values = {labels[label] for labels in label_sets if label in labels}
                assert pattern in values, (
                    f"{alert}: {name}{{{label}={pattern!r}}} is never exported ({values})"
                )

    known = TARGET_LABELS | {label for name in names for labels in exported[name] for label in labels}
    for group in GROUPING.findall(expr):
        for label in (part.strip() for part in group.split(",") if part.strip()):
            assert label in known, f"{alert}: groups by {label!r}, which no metric in the rule has"


def test_every_required_alert_exists() -> None:
    alerts = {alert for alert, _ in _exprs()}
    assert {
        "SupervisorDown",
        "NodeDown",
        "NodeCrashLooping",
        "NodeQuarantined",
        "RecoveryTooSlow",
        "PositionMismatch",
        "AuditMismatch",
        "DuplicateOrderAttempt",
        "MQTTDisconnected",
    } <= alerts


def test_the_drift_check_catches_an_unknown_metric(exported: dict[str, list[dict[str, str]]]) -> None:
    with pytest.raises(AssertionError, match="not exported"):
        check_expr("Bogus", "fleet_no_such_metric > 0", exported)
    with pytest.raises(AssertionError, match="matches none"):
        check_expr("Bogus", 'fleet_full_recovery_seconds_bucket{le=~"4|4\\\\.0"} > 0', exported)
    with pytest.raises(AssertionError, match="groups by"):
        check_expr("Bogus", "sum by (pod) (fleet_node_up) > 0", exported)
