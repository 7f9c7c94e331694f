"""Where an audit's result goes: Prometheus (counted by result, mismatches, differences, last success),
the MQTT payloads (the retained audit topic with the exact diff, the event), the recovery report's JSON with
the audit and the downtime changes."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.clock import FakeClock
from supervisor.events import AuditResult
from supervisor.states import NodeState
from supervisor.status import payloads
from supervisor.status.metrics import FleetMetrics
from supervisor.status.topics import Topics
from tests.supervisor.status.conftest import node_status, recovery_report

DIFF: dict[str, Any] = {
    "venue": "binance",
    "what": "position",
    "instrument": "BTCUSDT-PERP.BINANCE",
    "kind": "quantity",
    "node": {"side": "LONG", "quantity": "0.010"},
    "venue_holds": {"side": "LONG", "quantity": "0.025"},
}


def result(outcome: str, *differences: dict[str, Any], at: float = 1000.0) -> AuditResult:
    return AuditResult(
        node="alpha",
        trader_id="TRADER-001",
        venues=("binance",),
        result=outcome,
        trigger="interval",
        at=at,
        duration_ms=120.0,
        differences=differences,
        weight=6,
    )


def scrape(metrics: FleetMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_mismatches_and_keep_the_last_success() -> None:
    metrics = FleetMetrics(fleet="prod", host="h", clock=FakeClock())
    status = node_status(NodeState.READY)
    metrics.node_status(status)
    node = frozenset({("node", "alpha")})
    before = scrape(metrics)
    assert before[("fleet_audit_mismatches_total", node)] == 0

    metrics.audit_result(status, result("matched", at=900.0), None)
    metrics.audit_result(status, result("mismatch", DIFF, at=1000.0), None)
    metrics.audit_result(status, result("error", at=1100.0), None)
    after = scrape(metrics)
    assert after[("fleet_audit_mismatches_total", node)] == 1
    assert after[("fleet_audit_differences", node)] == 1  # an error does not hide the last mismatch
    assert after[("fleet_audit_last_success_timestamp_seconds", node)] == 900.0
    assert after[("fleet_audits_total", node | {("result", "error")})] == 1
    assert after[("fleet_audit_duration_seconds_count", node)] == 3

    metrics.audit_result(status, result("matched", at=1200.0), None)
    again = scrape(metrics)
    assert again[("fleet_audit_differences", node)] == 0
    assert again[("fleet_audit_last_success_timestamp_seconds", node)] == 1200.0


def test_the_retained_audit_topic_carries_the_exact_diff() -> None:
    topics = Topics(prefix="nautilus-fleet/prod", host="trading-1")
    assert topics.node_audit("alpha") == "nautilus-fleet/prod/nodes/alpha/audit"
    payload = payloads.audit_payload(result("mismatch", DIFF), "trading-1")
    assert payload == {
        "node": "alpha",
        "trader_id": "TRADER-001",
        "venues": ["binance"],
        "result": "mismatch",
        "trigger": "interval",
        "at": 1000.0,
        "duration_ms": 120.0,
        "differences": [DIFF],
        "error": "",
        "weight": 6,
        "host": "trading-1",
    }
    event = payloads.audit_event(
        node_status(NodeState.READY), result("mismatch", DIFF), seq=3, ts=1.0, host="h"
    )
    assert (event["event"], event["result"], event["differences"]) == ("audit", "mismatch", 1)


def test_the_recovery_report_shows_audit_and_downtime_only_once_audited() -> None:
    report = recovery_report()
    assert "audit" not in report.to_json() and "downtime" not in report.to_json()
    downtime = {"venue": "binance", "positions": [], "balances": []}
    amended = report.__class__(**{**report.__dict__, "audit": {"result": "matched"}, "downtime": (downtime,)})
    assert amended.to_json()["audit"] == {"result": "matched"}
    assert amended.to_json()["downtime"] == [downtime]
