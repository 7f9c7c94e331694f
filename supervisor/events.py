"""What the supervisor tells the outside world: node status, recovery phases and reports.

The daemon produces these values; observers (the MQTT publisher, the Prometheus metrics, the control socket)
consume them. Observers are called on the daemon's event loop and must not block: they record or enqueue.
All values are plain, frozen and JSON-ready through `to_json()`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from supervisor.states import ExitReason, NodeState


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExitInfo:
    reason: ExitReason
    # Exit code when the process exited, signal number when a signal ended it.
    code: int | None = None
    signal: int | None = None
    at: float  # epoch seconds
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": str(self.reason),
            "code": self.code,
            "signal": self.signal,
            "at": self.at,
            "detail": self.detail,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeStatus:
    """A node's state as published on every transition."""

    name: str
    trader_id: str
    venues: tuple[str, ...]
    state: NodeState
    pid: int | None
    restarts: int  # restarts since the daemon started (not reset by reset_after)
    since: float  # epoch seconds of the last transition
    started_at: float | None  # epoch seconds the current process was spawned
    last_exit: ExitInfo | None
    # ms from crash detection to READY of the last completed recovery (None until one completed).
    last_recovery_ms: float | None = None
    status_text: str = ""  # the node's last STATUS=
    quarantine_reason: str = ""
    next_start_in: float | None = None  # seconds, while in backoff
    host: str = ""  # the host id of the supervisor reporting it
    standby_reason: str = ""  # while in standby: why it does not run here (another host holds the lease)
    lease_held: bool | None = None  # this host holds the node's lease (None: the node needs no lease)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": str(self.state),
            "pid": self.pid,
            "trader_id": self.trader_id,
            "venues": list(self.venues),
            "restarts": self.restarts,
            "since": self.since,
            "started_at": self.started_at,
            "last_exit": self.last_exit.to_json() if self.last_exit else None,
            "last_recovery_ms": self.last_recovery_ms,
            "status": self.status_text,
            "quarantine_reason": self.quarantine_reason,
            "next_start_in": self.next_start_in,
            "host": self.host,
            "standby_reason": self.standby_reason,
            "lease_held": self.lease_held,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhaseMark:
    """One recovery phase as reported by the node (X_PHASE) or observed by the supervisor."""

    name: str  # detected, spawned, cache_loaded, reconciled, orders_restored, state_restored, warmed, ready
    epoch_ns: int
    mono_ns: int  # CLOCK_MONOTONIC, comparable across processes on one host
    ms_since_detection: float | None  # None for a cold start (nothing was detected)
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "ts": self.epoch_ns / 1e9,
            "ms_since_detection": self.ms_since_detection,
            "detail": self.detail,
        }


# RecoveryReport.result: the start reached READY, or how it ended before.
READY_RESULT = "ready"
FAILED_RESULT = "failed"  # it crashed, hung, timed out, was fenced or said what went wrong
STOPPED_RESULT = "stopped"  # a stop or a reload ended it on purpose (before READY, or before it was spawned)
RECOVERY_RESULTS = (READY_RESULT, FAILED_RESULT, STOPPED_RESULT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecoveryReport:
    """The end of one start of a node: READY, or failed or stopped before it."""

    node: str
    trader_id: str
    venues: tuple[str, ...]
    attempt: int  # starts of this node since the daemon started, 1-based
    reason: str  # why it (re)started: "cold_start", "signal", "exit", "watchdog", "operator", ...
    detected_at: float | None  # epoch seconds the crash was detected; None for a cold start
    phases: tuple[PhaseMark, ...]
    position_recovery_ms: float | None  # detected -> last `reconciled`
    full_recovery_ms: float | None  # detected -> ready
    discrepancies: tuple[dict[str, Any], ...]
    actions: tuple[dict[str, Any], ...]
    result: str  # READY_RESULT, FAILED_RESULT or STOPPED_RESULT
    error: str = ""
    # Added by the venue audit after READY (supervisor/audit/): its result, and what changed at the venue
    # while the node was down (per venue: positions and balances, from the audit at crash detection).
    audit: dict[str, Any] | None = None
    downtime: tuple[dict[str, Any], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.audit is not None:
            extra["audit"] = self.audit
        if self.downtime is not None:
            extra["downtime"] = list(self.downtime)
        return {
            "node": self.node,
            "trader_id": self.trader_id,
            "venues": list(self.venues),
            "attempt": self.attempt,
            "reason": self.reason,
            "detected_at": self.detected_at,
            "phases": [p.to_json() for p in self.phases],
            "position_recovery_ms": self.position_recovery_ms,
            "full_recovery_ms": self.full_recovery_ms,
            "discrepancies": list(self.discrepancies),
            "actions": list(self.actions),
            "result": self.result,
            "error": self.error,
            **extra,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditResult:
    """One venue audit of a node: the supervisor's own comparison, through ccxt, of what the node holds with
    what the venue holds (supervisor/audit/)."""

    node: str
    trader_id: str
    venues: tuple[str, ...]
    result: str  # "matched", "mismatch", "error" (venue or Redis unreadable), "skipped" (no request budget)
    trigger: str  # "ready" (the first audit after READY) or "interval"
    at: float  # epoch seconds the audit finished
    duration_ms: float
    differences: tuple[dict[str, Any], ...] = ()  # the exact diff (supervisor/audit/compare.py)
    error: str = ""
    weight: int = 0  # request weight it took from the rate group's budget

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "trader_id": self.trader_id,
            "venues": list(self.venues),
            "result": self.result,
            "trigger": self.trigger,
            "at": self.at,
            "duration_ms": self.duration_ms,
            "differences": list(self.differences),
            "error": self.error,
            "weight": self.weight,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReloadOutcome:
    """The end of one reload of fleet.yaml: applied (with what changed) or refused (with why; the fleet
    runs on unchanged)."""

    applied: bool
    at: float  # epoch seconds
    trigger: str  # "file", "sighup", "control"
    detail: str  # the changes when applied, the reason when refused

    def to_json(self) -> dict[str, Any]:
        return {
            "result": "applied" if self.applied else "refused",
            "at": self.at,
            "trigger": self.trigger,
            "detail": self.detail,
        }


class FleetObserver(Protocol):
    """Receives what the daemon publishes. Methods are called on the event loop and must not block."""

    def node_status(self, status: NodeStatus) -> None: ...

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None: ...

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None: ...

    def recovery_report(self, report: RecoveryReport) -> None: ...

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None: ...

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None: ...

    def reload_outcome(self, outcome: ReloadOutcome) -> None: ...

    def reconcile_queue_depth(self, group: str, depth: int) -> None: ...

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        """A venue audit finished; `report` is the node's last recovery report with the audit (and the
        downtime changes) added, for the first audit after READY, else None."""
        ...
