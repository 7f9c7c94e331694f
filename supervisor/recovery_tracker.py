"""Times one start of a node, phase by phase, from the moment its crash was detected.

Phases come from the node (`X_PHASE` with `X_MONO`, CLOCK_MONOTONIC ns, comparable across processes on one
host) and from the supervisor itself (`detected`, `spawned`, `ready`). Pure bookkeeping: no I/O.

A phase whose name ends in `_failed` (e.g. `recovery_failed`) with a `reason` in its detail gives the report's
`error` when the start fails.

What a node puts in a phase's `X_DETAIL` and that the report aggregates:
- `discrepancies`: list of {"venue", "instrument", "cached_qty", "venue_qty", "kind", "resolved"}
- `actions`: list of {"action", ...} (e.g. protective orders placed, re-linked or cancelled)
"""

from __future__ import annotations

from typing import Any

from supervisor.events import READY_RESULT, PhaseMark, RecoveryReport

RECONCILED = "reconciled"
READY = "ready"
DETECTED = "detected"
PREPARED = "prepared"  # the supervisor's work before the spawn (cache compaction)
SPAWNED = "spawned"


class RecoveryTracker:
    def __init__(
        self,
        *,
        node: str,
        trader_id: str,
        venues: tuple[str, ...],
        attempt: int,
        reason: str,
        detected_mono_ns: int | None,
        detected_epoch_ns: int | None,
    ) -> None:
        self.node = node
        self.trader_id = trader_id
        self.venues = venues
        self.attempt = attempt
        self.reason = reason
        self._detected_mono_ns = detected_mono_ns
        self._detected_epoch_ns = detected_epoch_ns
        self.phases: list[PhaseMark] = []
        self.finished = False
        if detected_mono_ns is not None and detected_epoch_ns is not None:
            self.mark(DETECTED, mono_ns=detected_mono_ns, epoch_ns=detected_epoch_ns)

    @property
    def detected_mono_ns(self) -> int | None:
        return self._detected_mono_ns

    @property
    def detected_epoch_ns(self) -> int | None:
        return self._detected_epoch_ns

    def mark(
        self, name: str, *, mono_ns: int, epoch_ns: int, detail: dict[str, Any] | None = None
    ) -> PhaseMark:
        since = None
        if self._detected_mono_ns is not None:
            since = round((mono_ns - self._detected_mono_ns) / 1e6, 3)
        phase = PhaseMark(
            name=name, epoch_ns=epoch_ns, mono_ns=mono_ns, ms_since_detection=since, detail=detail or {}
        )
        self.phases.append(phase)
        return phase

    def report(self, *, result: str, error: str = "") -> RecoveryReport:
        self.finished = True
        reason = self._failure_reason()
        if result != READY_RESULT and reason:
            # What the node said went wrong is what an operator needs; how the process ended comes second.
            error = f"{reason} ({error})" if error else reason
        discrepancies: list[dict[str, Any]] = []
        actions: list[dict[str, Any]] = []
        for phase in self.phases:
            discrepancies.extend(_dicts(phase.detail.get("discrepancies")))
            actions.extend(_dicts(phase.detail.get("actions")))
        return RecoveryReport(
            node=self.node,
            trader_id=self.trader_id,
            venues=self.venues,
            attempt=self.attempt,
            reason=self.reason,
            detected_at=self._detected_epoch_ns / 1e9 if self._detected_epoch_ns is not None else None,
            phases=tuple(self.phases),
            position_recovery_ms=self._last_ms(RECONCILED),
            full_recovery_ms=self._last_ms(READY) if result == READY_RESULT else None,
            discrepancies=tuple(discrepancies),
            actions=tuple(actions),
            result=result,
            error=error,
        )

    def _failure_reason(self) -> str:
        """The `reason` of the last phase the node reported as failed (`*_failed`, e.g. recovery_failed)."""
        for phase in reversed(self.phases):
            if phase.name.endswith("_failed") and isinstance(phase.detail.get("reason"), str):
                return str(phase.detail["reason"])
        return ""

    def _last_ms(self, name: str) -> float | None:
        for phase in reversed(self.phases):
            if phase.name == name:
                return phase.ms_since_detection
        return None


def _dicts(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]
