"""Fan-out to every observer of the fleet; one observer failing never disturbs supervision or the others."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from supervisor.events import (
    AuditResult,
    ExitInfo,
    FleetObserver,
    NodeStatus,
    PhaseMark,
    RecoveryReport,
    ReloadOutcome,
)

log = logging.getLogger(__name__)


class FanOut:
    def __init__(self, observers: Sequence[FleetObserver] = ()) -> None:
        self._observers = list(observers)

    def add(self, observer: FleetObserver) -> None:
        self._observers.append(observer)

    def _each(self, call: Callable[[FleetObserver], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception:
                log.exception("observer %s failed", type(observer).__name__)

    def node_status(self, status: NodeStatus) -> None:
        self._each(lambda o: o.node_status(status))

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None:
        self._each(lambda o: o.node_exited(status, exit_info, will_restart))

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        self._each(lambda o: o.recovery_phase(node, phase))

    def recovery_report(self, report: RecoveryReport) -> None:
        self._each(lambda o: o.recovery_report(report))

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None:
        self._each(lambda o: o.node_removed(name, trader_id, venues))

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None:
        self._each(lambda o: o.fleet_summary(summary, counts))

    def reload_outcome(self, outcome: ReloadOutcome) -> None:
        self._each(lambda o: o.reload_outcome(outcome))

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        self._each(lambda o: o.reconcile_queue_depth(group, depth))

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        self._each(lambda o: o.audit_result(status, result, report))
