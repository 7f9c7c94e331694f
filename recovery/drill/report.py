"""The drill's results: one record per action, the figures over all recoveries, every violation with its
evidence; as JSON (machine) and as a table (people). Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from recovery.drill.invariants import Violation
from recovery.drill.plan import PlannedKill


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (a value that occurred; None without values)."""
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def figures(values: Sequence[float]) -> dict[str, Any]:
    return {
        "samples": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


@dataclass(kw_only=True)
class ActionRecord:
    plan: PlannedKill
    market: list[str] = field(default_factory=list)  # what each market step did
    kills: list[dict[str, Any]] = field(default_factory=list)  # {pid, state, note}
    moment_note: str = ""  # e.g. the order the kill followed, or why the moment fell back
    move_note: str = ""  # what was moved at the venue while the node was down
    result: str = "not run"  # the recovery report's result, or why there is none
    attempt: int | None = None
    position_ms: float | None = None
    full_ms: float | None = None
    checked: dict[str, Any] = field(default_factory=dict)  # what the checks compared after the recovery
    violations: list[Violation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "market": self.market,
            "kills": self.kills,
            "moment_note": self.moment_note,
            "move_note": self.move_note,
            "result": self.result,
            "attempt": self.attempt,
            "position_recovery_ms": self.position_ms,
            "full_recovery_ms": self.full_ms,
            "checked": self.checked,
            "violations": [v.to_json() for v in self.violations],
        }


@dataclass(kw_only=True)
class DrillReport:
    seed: int
    config: str
    fleet: str
    run_id: str
    nodes: dict[str, str]  # node -> trader id used by the drill
    left_out: list[str] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    final_violations: list[Violation] = field(default_factory=list)
    aborted: str = ""  # why the drill stopped before its last action
    duration_s: float = 0.0

    @property
    def kills(self) -> int:
        return sum(len(a.kills) for a in self.actions)

    @property
    def recoveries(self) -> int:
        return sum(1 for a in self.actions if a.attempt is not None)

    def violations(self) -> list[tuple[int | None, Violation]]:
        found: list[tuple[int | None, Violation]] = [
            (a.plan.index, v) for a in self.actions for v in a.violations
        ]
        return found + [(None, v) for v in self.final_violations]

    @property
    def ok(self) -> bool:
        return not self.violations() and not self.aborted

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "config": self.config,
            "fleet": self.fleet,
            "run_id": self.run_id,
            "nodes": self.nodes,
            "left_out": self.left_out,
            "kills": self.kills,
            "recoveries": self.recoveries,
            "ready": sum(1 for a in self.actions if a.result == "ready"),
            "position_recovery_ms": figures(
                [a.position_ms for a in self.actions if a.position_ms is not None]
            ),
            "full_recovery_ms": figures([a.full_ms for a in self.actions if a.full_ms is not None]),
            "actions": [a.to_json() for a in self.actions],
            "violations": [{"action": index, **v.to_json()} for index, v in self.violations()],
            "aborted": self.aborted or None,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 1),
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def render_table(report: DrillReport) -> str:
    header = ("#", "NODE", "MOMENT", "VENUE MOVE", "KILLS", "RESULT", "POSITION", "FULL", "VIOLATIONS")
    rows = [header]
    for action in report.actions:
        rows.append(
            (
                str(action.plan.index),
                action.plan.node,
                action.plan.moment.value,
                action.plan.move.value,
                str(len(action.kills)),
                action.result,
                _ms(action.position_ms),
                _ms(action.full_ms),
                str(len(action.violations)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    data = report.to_json()
    position, full = data["position_recovery_ms"], data["full_recovery_ms"]
    lines += [
        "",
        f"fleet {report.fleet}: {report.kills} kills, {data['recoveries']} recoveries, "
        f"{data['ready']} READY; final check of every node: {len(report.final_violations)} violations",
        f"position recovery p50 {_ms(position['p50'])}, p95 {_ms(position['p95'])}; "
        f"full recovery p50 {_ms(full['p50'])}, p95 {_ms(full['p95'])} ({full['samples']} recoveries)",
    ]
    if report.left_out:
        lines.append(f"not run: {'; '.join(report.left_out)}")
    if report.aborted:
        lines.append(f"ABORTED: {report.aborted}")
    violations = report.violations()
    if violations:
        lines.append(f"VIOLATIONS ({len(violations)}):")
        for index, violation in violations:
            where = f"action {index}" if index is not None else "final check"
            lines.append(f"  {where}: {violation.node} {violation.check}: {violation.message}")
    else:
        lines.append("violations: none")
    lines.append(f"seed {report.seed} (the same seed repeats these actions)")
    return "\n".join(lines)
