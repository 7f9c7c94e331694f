"""`fleet_rate_budget_fallbacks_total{node,venue}`: fed from the `rate_budget` a node reports in its phase
detail, counted when the node's recovery fell back from the fleet's budget in Redis to a local share."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.clock import FakeClock
from supervisor.states import NodeState
from supervisor.status.metrics import FleetMetrics
from tests.supervisor.status.conftest import node_status, phase

NAME = "fleet_rate_budget_fallbacks_total"


def fallbacks(metrics: FleetMetrics) -> dict[tuple[str, str], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.labels["node"], s.labels["venue"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == NAME
    }


def budget(
    scope: str, group: str | None = "https://fapi.binance.com@host-a", **extra: object
) -> dict[str, object]:
    return {"rate_budget": {"scope": scope, "group": group, "reason": None, "venue": "binance", **extra}}


def test_local_fallbacks_are_counted_per_node_and_venue() -> None:
    metrics = FleetMetrics(fleet="prod", host="host-a", clock=FakeClock())
    alpha = node_status(NodeState.RECOVERING)
    metrics.node_status(alpha)
    assert fallbacks(metrics) == {("alpha", "binance"): 0.0}  # there from the start, for increase()
    metrics.recovery_phase(alpha, phase("reconciled", 400.0, budget("fleet")))
    assert fallbacks(metrics)[("alpha", "binance")] == 0.0
    reason = "fleet budget in Redis unavailable: Redis did not answer within 0.5s"
    metrics.recovery_phase(alpha, phase("reconciled", 800.0, budget("local", reason=reason)))
    metrics.recovery_phase(alpha, phase("recovery_failed", 900.0, budget("local", venue="other")))
    assert fallbacks(metrics) == {("alpha", "binance"): 1.0, ("alpha", "other"): 1.0}


def test_phases_without_a_fleet_budget_count_nothing() -> None:
    metrics = FleetMetrics(fleet="prod", host="host-a", clock=FakeClock())
    alpha = node_status(NodeState.RECOVERING)
    metrics.node_status(alpha)
    metrics.recovery_phase(alpha, phase("reconciled", 400.0))  # no rate_budget (a command node)
    metrics.recovery_phase(alpha, phase("reconciled", 400.0, budget("local", group=None)))  # never shared
    metrics.recovery_phase(alpha, phase("reconciled", 400.0, {"rate_budget": "local"}))  # not an object
    assert fallbacks(metrics) == {("alpha", "binance"): 0.0}
    metrics.node_removed("alpha", "TRADER-001", ("binance",))
    assert fallbacks(metrics) == {}
