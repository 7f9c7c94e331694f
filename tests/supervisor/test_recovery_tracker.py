"""The recovery report a start of a node produces (pure)."""

from __future__ import annotations

from supervisor.recovery_tracker import RecoveryTracker


def _tracker() -> RecoveryTracker:
    return RecoveryTracker(
        node="n",
        trader_id="T-1",
        venues=("v",),
        attempt=2,
        reason="signal",
        detected_mono_ns=1_000_000_000,
        detected_epoch_ns=1_700_000_000_000_000_000,
    )


def test_timings_are_from_detection() -> None:
    tracker = _tracker()
    tracker.mark("spawned", mono_ns=1_010_000_000, epoch_ns=1)
    tracker.mark(
        "reconciled", mono_ns=1_400_000_000, epoch_ns=2, detail={"discrepancies": [{"kind": "quantity"}]}
    )
    tracker.mark(
        "orders_restored", mono_ns=1_450_000_000, epoch_ns=3, detail={"actions": [{"action": "x"}, 5]}
    )
    tracker.mark("ready", mono_ns=1_500_000_000, epoch_ns=4)
    report = tracker.report(result="ready")
    assert [p.name for p in report.phases] == [
        "detected",
        "spawned",
        "reconciled",
        "orders_restored",
        "ready",
    ]
    assert (report.position_recovery_ms, report.full_recovery_ms) == (400.0, 500.0)
    assert report.discrepancies == ({"kind": "quantity"},)
    assert report.actions == ({"action": "x"},)  # malformed entries are dropped
    assert report.error == ""


def test_a_failed_start_carries_the_reason_the_node_gave() -> None:
    tracker = _tracker()
    tracker.mark(
        "recovery_failed", mono_ns=1_200_000_000, epoch_ns=1, detail={"reason": "venue error: userTrades"}
    )
    report = tracker.report(result="failed", error="exit: exit code 1")
    assert report.error == "venue error: userTrades (exit: exit code 1)"
    assert report.full_recovery_ms is None


def test_a_cold_start_has_no_recovery_times() -> None:
    tracker = RecoveryTracker(
        node="n",
        trader_id="T-1",
        venues=(),
        attempt=1,
        reason="cold_start",
        detected_mono_ns=None,
        detected_epoch_ns=None,
    )
    tracker.mark("ready", mono_ns=5, epoch_ns=5)
    report = tracker.report(result="ready")
    assert report.position_recovery_ms is None and report.full_recovery_ms is None
    assert report.phases[0].ms_since_detection is None
