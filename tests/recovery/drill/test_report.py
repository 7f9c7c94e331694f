"""The drill's report: percentiles, counts, JSON and the table (no servers)."""

from __future__ import annotations

import json

import pytest

from recovery.drill.invariants import Violation
from recovery.drill.plan import plan_drill
from recovery.drill.report import ActionRecord, DrillReport, figures, percentile, render_table


def test_percentiles_are_nearest_rank_values_that_occurred() -> None:
    values = [120.0, 80.0, 100.0, 90.0, 110.0]
    assert percentile(values, 50) == 100.0
    assert percentile(values, 95) == 120.0
    assert percentile(values, 100) == 120.0
    assert percentile(list(range(1, 21)), 95) == 19
    assert percentile([5.0], 50) == 5.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 0)
    assert figures([]) == {"samples": 0, "p50": None, "p95": None, "max": None}


def report_of(*violations: Violation, final: tuple[Violation, ...] = ()) -> DrillReport:
    first, second = plan_drill(5, ["a", "b"], 2)
    report = DrillReport(seed=5, config="fleet.yaml", fleet="demo", run_id="abc123", nodes={"a": "A.DRILL-1"})
    report.actions = [
        ActionRecord(
            plan=first, kills=[{"pid": 1}], result="ready", attempt=2, position_ms=800.0, full_ms=900.0
        ),
        ActionRecord(
            plan=second,
            kills=[{"pid": 2}, {"pid": 3}],
            result="ready",
            attempt=4,
            position_ms=600.0,
            full_ms=1500.0,
            violations=list(violations),
        ),
    ]
    report.final_violations = list(final)
    return report


def test_the_json_report_counts_kills_recoveries_and_figures() -> None:
    data = json.loads(json.dumps(report_of().to_json()))
    assert (data["seed"], data["kills"], data["recoveries"], data["ready"], data["ok"]) == (5, 3, 2, 2, True)
    assert data["position_recovery_ms"] == {"samples": 2, "p50": 600.0, "p95": 800.0, "max": 800.0}
    assert data["full_recovery_ms"]["p50"] == 900.0
    assert [a["index"] for a in data["actions"]] == [1, 2]
    assert data["violations"] == []


def test_every_violation_is_listed_with_its_action_and_evidence() -> None:
    during = Violation(check="position", node="b", message="venue 1, cache 0", evidence={"venue": "1"})
    after = Violation(check="ready", node="a", message="a is backoff at the end")
    report = report_of(during, final=(after,))
    data = report.to_json()
    assert not report.ok and data["ok"] is False
    assert data["violations"] == [
        {
            "action": 2,
            "check": "position",
            "node": "b",
            "message": "venue 1, cache 0",
            "evidence": {"venue": "1"},
        },
        {"action": None, "check": "ready", "node": "a", "message": "a is backoff at the end", "evidence": {}},
    ]
    table = render_table(report)
    assert "action 2: b position: venue 1, cache 0" in table
    assert "final check: a ready: a is backoff at the end" in table


def test_the_table_has_a_row_per_action_and_the_figures() -> None:
    table = render_table(report_of())
    lines = table.splitlines()
    assert lines[0].split() == [
        "#",
        "NODE",
        "MOMENT",
        "VENUE",
        "MOVE",
        "KILLS",
        "RESULT",
        "POSITION",
        "FULL",
        "VIOLATIONS",
    ]
    assert lines[1].split()[0] == "1" and lines[2].split()[0] == "2"
    assert "3 kills, 2 recoveries, 2 READY" in table
    assert "position recovery p50 600 ms, p95 800 ms; full recovery p50 900 ms, p95 1500 ms" in table
    assert "violations: none" in table and "seed 5" in table


def test_an_aborted_drill_is_not_ok() -> None:
    report = report_of()
    report.aborted = "action 2: gave up after 120s"
    assert not report.ok
    assert "ABORTED: action 2" in render_table(report)
