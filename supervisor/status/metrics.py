"""Prometheus metrics for the fleet, in a registry of their own. Implements `supervisor.events.FleetObserver`.

Names follow Prometheus conventions: `fleet_` prefix, base units (seconds), `_total` on counters. Every
per-node series is created (at zero) when the node is first seen, so `increase()` in the alert rules also
counts a node's very first restart, recovery or duplicate. Removing a node removes all of its series.
The table of metrics is in docs/status.md; prometheus/alerts.yml is checked against this module by a test.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from supervisor.clock import Clock
from supervisor.events import (
    FAILED_RESULT,
    READY_RESULT,
    RECOVERY_RESULTS,
    AuditResult,
    ExitInfo,
    NodeStatus,
    PhaseMark,
    RecoveryReport,
    ReloadOutcome,
)
from supervisor.states import ExitReason, NodeState
from supervisor.status import build
from supervisor.status.shapes import (
    ActionKind,
    DiscrepancyKind,
    action_kind,
    discrepancy_kind,
    is_unresolved,
    venue_label,
)

log = logging.getLogger(__name__)

# The SLO bounds (5 s position, 30 s full recovery) are bucket bounds, so the alert rules are exact.
RECOVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0)
# Phases timed from crash detection (`detected` itself is 0 by definition). Other phase names a node may
# report go to MQTT only, so a node cannot grow the label set without bound.
TIMED_PHASES = (
    "spawned",
    "cache_loaded",
    "reconciled",
    "orders_restored",
    "state_restored",
    "warmed",
    "ready",
    "audited",
)
# A node admitted by the reconciliation gate after waiting (supervisor/reconcile_gate.py).
ADMITTED_PHASE = "admitted"
# Waits at the reconciliation gate: a storm of 20 nodes spreads over several venue windows (minutes).
QUEUE_WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# A venue audit is a few requests (positions, one per symbol for open stops, balances).
AUDIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AUDIT_RESULTS = ("matched", "mismatch", "error", "skipped")
_PROTECTIVE = {
    ActionKind.PROTECTIVE_PLACED: "placed",
    ActionKind.PROTECTIVE_CANCELLED: "cancelled",
    ActionKind.PROTECTIVE_RELINKED: "relinked",
}

_M = TypeVar("_M", bound=MetricWrapperBase)


class MqttHealth(Protocol):
    """What the metrics read from the MQTT publisher at scrape time."""

    @property
    def connected(self) -> bool: ...

    @property
    def queued_events(self) -> int: ...

    @property
    def dropped_events(self) -> int: ...


class _MqttCollector:
    def __init__(self, mqtt: MqttHealth) -> None:
        self._mqtt = mqtt

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "fleet_mqtt_connected",
            "1 while the status publisher is connected to the MQTT broker.",
            value=1.0 if self._mqtt.connected else 0.0,
        )
        yield GaugeMetricFamily(
            "fleet_mqtt_events_queued",
            "Events waiting to be published (they queue while the broker is unreachable).",
            value=float(self._mqtt.queued_events),
        )
        yield CounterMetricFamily(
            "fleet_mqtt_events_dropped",
            "Events dropped because the queue was full (oldest first).",
            value=float(self._mqtt.dropped_events),
        )


class FleetMetrics:
    """The fleet's Prometheus metrics. Serve `registry` with `MetricsServer`."""

    def __init__(
        self,
        *,
        fleet: str,
        host: str,
        clock: Clock,
        mqtt: MqttHealth | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._clock = clock
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("fleet_supervisor_build", "The supervisor's build.", registry=r).info(
            {"version": build.version(), "python": build.python_version(), "fleet": fleet, "host": host}
        )
        Gauge(
            "fleet_supervisor_start_time_seconds", "When the supervisor started (epoch seconds).", registry=r
        ).set(clock.time())
        self._node_info = Gauge(
            "fleet_node_info", "1 per supervised node, with its trader id.", ["node", "trader_id"], registry=r
        )
        self._up = Gauge(
            "fleet_node_up", "1 while the node is ready (trading), else 0.", ["node"], registry=r
        )
        self._state = Gauge(
            "fleet_node_state",
            "The node's state, one-hot: 1 for its current state.",
            ["node", "state"],
            registry=r,
        )
        self._host = host
        self._lease = Gauge(
            "fleet_node_lease_held",
            "1 while this host (label host: its supervisor's host id) holds the node's lease and may run it "
            "(also 1 for a node that needs no lease and runs here), else 0.",
            ["node", "host"],
            registry=r,
        )
        self._quarantined = Gauge(
            "fleet_nodes_quarantined", "Nodes in quarantine (crash-looped; not restarted).", registry=r
        )
        self._restarts = Counter(
            "fleet_node_restarts",
            "Restarts of a node, by the reason its previous process ended.",
            ["node", "reason"],
            registry=r,
        )
        self._recoveries = Counter(
            "fleet_recoveries",
            "Completed starts of a node (recoveries and cold starts), by result: ready, failed, or stopped "
            "(a stop or a reload ended it).",
            ["node", "result"],
            registry=r,
        )
        self._phase = Histogram(
            "fleet_recovery_phase_seconds",
            "Seconds from crash detection until the node reached the phase.",
            ["node", "phase"],
            buckets=RECOVERY_BUCKETS,
            registry=r,
        )
        self._position = Histogram(
            "fleet_position_recovery_seconds",
            "Seconds from crash detection until positions equalled the venue's (the last `reconciled`).",
            ["node"],
            buckets=RECOVERY_BUCKETS,
            registry=r,
        )
        self._full = Histogram(
            "fleet_full_recovery_seconds",
            "Seconds from crash detection until the node was ready (stops in place, state back, trading).",
            ["node"],
            buckets=RECOVERY_BUCKETS,
            registry=r,
        )
        self._last_recovery = Gauge(
            "fleet_node_last_recovery_timestamp_seconds",
            "When the node last became ready after a start (epoch seconds).",
            ["node"],
            registry=r,
        )
        self._discrepancies = Counter(
            "fleet_position_discrepancies",
            "Position discrepancies found at reconciliation, by kind (resolved or not).",
            ["node", "venue", "kind"],
            registry=r,
        )
        self._unresolved = Gauge(
            "fleet_position_discrepancies_unresolved",
            "Position discrepancies still unresolved at the end of the node's last recovery.",
            ["node", "venue"],
            registry=r,
        )
        self._protective = Counter(
            "fleet_recovery_protective_orders",
            "Protective orders (stop-loss, take-profit) placed, cancelled or relinked during recovery.",
            ["node", "venue", "action"],
            registry=r,
        )
        self._duplicates = Counter(
            "fleet_duplicate_client_order_ids_rejected",
            "Orders the venue rejected because their client order id already existed.",
            ["node", "venue"],
            registry=r,
        )
        self._queue_depth = Gauge(
            "fleet_reconcile_queue_depth",
            "Strategy nodes waiting at the reconciliation gate, per rate group (venue endpoint and egress).",
            ["rate_group"],
            registry=r,
        )
        self._queue_wait = Histogram(
            "fleet_reconcile_queue_wait_seconds",
            "How long nodes that had to wait at the reconciliation gate waited before they were admitted.",
            ["rate_group"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self._reload_failures = Counter(
            "fleet_reload_failures",
            "Reloads of fleet.yaml that were refused (an invalid file, or any failure while reloading); "
            "the fleet kept running unchanged.",
            registry=r,
        )
        self._reload_ok = Gauge(
            "fleet_config_last_reload_successful",
            "1 when the last reload of fleet.yaml was applied (or none happened yet), 0 when it was refused.",
            registry=r,
        )
        self._reload_ok.set(1)
        self._budget_fallbacks = Counter(
            "fleet_rate_budget_fallbacks",
            "Recoveries whose venue requests fell back from the fleet's request budget in Redis to a local "
            "share (Redis unreachable), as the node reported in its phase detail (`rate_budget`).",
            ["node", "venue"],
            registry=r,
        )
        self._audits = Counter(
            "fleet_audits",
            "Venue audits of a node (the supervisor's own check through ccxt), by result: matched, mismatch, "
            "error (venue or Redis unreadable) or skipped (no request budget).",
            ["node", "result"],
            registry=r,
        )
        self._audit_mismatches = Counter(
            "fleet_audit_mismatches",
            "Venue audits that found the venue's positions or open protective orders differing from the "
            "node's.",
            ["node"],
            registry=r,
        )
        self._audit_differences = Gauge(
            "fleet_audit_differences",
            "Differences the node's last venue audit found (0 when it matched).",
            ["node"],
            registry=r,
        )
        self._audit_last_ok = Gauge(
            "fleet_audit_last_success_timestamp_seconds",
            "When a venue audit of the node last matched (epoch seconds; 0: never since the daemon started).",
            ["node"],
            registry=r,
        )
        self._audit_duration = Histogram(
            "fleet_audit_duration_seconds",
            "How long a venue audit took (budget wait, Redis reads, venue requests, a confirming second "
            "look).",
            ["node"],
            buckets=AUDIT_BUCKETS,
            registry=r,
        )
        if mqtt is not None:
            r.register(_MqttCollector(mqtt))
        self._series: dict[str, set[tuple[MetricWrapperBase, tuple[str, ...]]]] = {}
        self._states: dict[str, NodeState] = {}
        self._trader_ids: dict[str, str] = {}
        self._venues: dict[str, set[str]] = {}

    # ----- FleetObserver -----

    def node_status(self, status: NodeStatus) -> None:
        node = status.name
        if node not in self._series:
            self._init_node(node)
        self._init_venues(node, status.venues)
        old_trader = self._trader_ids.get(node)
        if old_trader is not None and old_trader != status.trader_id:
            self._forget(node, self._node_info, (node, old_trader))
        self._trader_ids[node] = status.trader_id
        self._child(self._node_info, node, status.trader_id).set(1)
        self._child(self._up, node).set(1 if status.state is NodeState.READY else 0)
        runs_here = status.state not in (NodeState.STOPPED, NodeState.STANDBY)
        held = status.lease_held if status.lease_held is not None else runs_here
        self._child(self._lease, node, self._host).set(1 if held else 0)
        for state in NodeState:
            self._child(self._state, node, str(state)).set(1 if state is status.state else 0)
        self._states[node] = status.state
        self._count_quarantined()

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None:
        if will_restart:
            self._child(self._restarts, status.name, str(exit_info.reason)).inc()

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        if phase.name in TIMED_PHASES and phase.ms_since_detection is not None:
            self._child(self._phase, node.name, phase.name).observe(phase.ms_since_detection / 1000.0)
        if phase.name == ADMITTED_PHASE:
            waited, group = phase.detail.get("waited_ms"), phase.detail.get("rate_group")
            if isinstance(waited, int | float) and isinstance(group, str):
                self._queue_wait.labels(group).observe(waited / 1000.0)
        budget = phase.detail.get("rate_budget")
        if isinstance(budget, dict) and budget.get("scope") == "local" and budget.get("group") is not None:
            # A node reports its budget once per start; a local one without a group never had a fleet budget.
            venue = venue_label(budget.get("venue", phase.detail.get("venue")))
            self._init_venues(node.name, (venue,))
            self._child(self._budget_fallbacks, node.name, venue).inc()

    def recovery_report(self, report: RecoveryReport) -> None:
        node = report.node
        if node not in self._series:
            self._init_node(node)
        self._init_venues(node, report.venues)
        result = report.result if report.result in RECOVERY_RESULTS else FAILED_RESULT
        self._child(self._recoveries, node, result).inc()
        if report.detected_at is not None:
            if report.position_recovery_ms is not None:
                self._child(self._position, node).observe(report.position_recovery_ms / 1000.0)
            if report.full_recovery_ms is not None:
                self._child(self._full, node).observe(report.full_recovery_ms / 1000.0)
        if result == READY_RESULT:
            self._child(self._last_recovery, node).set(_ready_time(report.phases, self._clock))
        unresolved = dict.fromkeys(self._venues.get(node, ()), 0)
        for entry in _dicts(report.discrepancies, "discrepancy", node):
            venue = venue_label(entry.get("venue"))
            self._init_venues(node, (venue,))
            self._child(self._discrepancies, node, venue, str(discrepancy_kind(entry.get("kind")))).inc()
            if is_unresolved(entry):
                unresolved[venue] = unresolved.get(venue, 0) + 1
        for venue, count in unresolved.items():
            self._child(self._unresolved, node, venue).set(count)
        for entry in _dicts(report.actions, "action", node):
            kind = action_kind(entry.get("action"))
            venue = venue_label(entry.get("venue"))
            if kind in _PROTECTIVE:
                self._init_venues(node, (venue,))
                self._child(self._protective, node, venue, _PROTECTIVE[kind]).inc()
            elif kind is ActionKind.DUPLICATE_REJECTED:
                self._init_venues(node, (venue,))
                self._child(self._duplicates, node, venue).inc()

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None:
        for metric, labels in self._series.pop(name, set()):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)
        self._states.pop(name, None)
        self._trader_ids.pop(name, None)
        self._venues.pop(name, None)
        self._count_quarantined()

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None:
        # Everything in the summary is already in fleet_node_state (sum by state).
        return

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        self._queue_depth.labels(group).set(depth)

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        node = status.name
        if node not in self._series:
            self._init_node(node)
        label = result.result if result.result in AUDIT_RESULTS else "error"
        self._child(self._audits, node, label).inc()
        self._child(self._audit_duration, node).observe(result.duration_ms / 1000.0)
        if label == "mismatch":
            self._child(self._audit_mismatches, node).inc()
        if label in ("matched", "mismatch"):
            self._child(self._audit_differences, node).set(len(result.differences))
        if label == "matched":
            self._child(self._audit_last_ok, node).set(result.at)

    def reload_outcome(self, outcome: ReloadOutcome) -> None:
        self._reload_ok.set(1 if outcome.applied else 0)
        if not outcome.applied:
            self._reload_failures.inc()

    # ----- helpers -----

    def _child(self, metric: _M, node: str, *labels: str) -> _M:
        values = (node, *labels)
        self._series.setdefault(node, set()).add((metric, values))
        return metric.labels(*values)

    def _forget(self, node: str, metric: MetricWrapperBase, values: tuple[str, ...]) -> None:
        self._series.get(node, set()).discard((metric, values))
        with contextlib.suppress(KeyError):
            metric.remove(*values)

    def _init_node(self, node: str) -> None:
        self._series.setdefault(node, set())
        for reason in ExitReason:
            self._child(self._restarts, node, str(reason))
        for result in RECOVERY_RESULTS:
            self._child(self._recoveries, node, result)
        for phase in TIMED_PHASES:
            self._child(self._phase, node, phase)
        self._child(self._position, node)
        self._child(self._full, node)
        for result in AUDIT_RESULTS:
            self._child(self._audits, node, result)
        self._child(self._audit_mismatches, node)
        self._child(self._audit_differences, node)
        self._child(self._audit_last_ok, node)
        self._child(self._audit_duration, node)

    def _init_venues(self, node: str, venues: Iterable[str]) -> None:
        known = self._venues.setdefault(node, set())
        for raw in venues:
            venue = venue_label(raw)
            if venue in known:
                continue
            known.add(venue)
            self._child(self._unresolved, node, venue).set(0)
            self._child(self._duplicates, node, venue)
            self._child(self._budget_fallbacks, node, venue)
            for action in _PROTECTIVE.values():
                self._child(self._protective, node, venue, action)
            for kind in DiscrepancyKind:
                self._child(self._discrepancies, node, venue, str(kind))

    def _count_quarantined(self) -> None:
        self._quarantined.set(sum(1 for s in self._states.values() if s is NodeState.QUARANTINED))


def _ready_time(phases: tuple[PhaseMark, ...], clock: Clock) -> float:
    for phase in reversed(phases):
        if phase.name == "ready":
            return phase.epoch_ns / 1e9
    return clock.time()


def _dicts(entries: Iterable[object], what: str, node: str) -> Iterator[dict[str, object]]:
    for entry in entries:
        if isinstance(entry, dict):
            yield entry
        else:
            log.warning("node %s: ignoring a %s that is not an object: %r", node, what, entry)
