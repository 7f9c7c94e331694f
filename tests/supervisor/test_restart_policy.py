"""Table tests for the restart policy (pure: a fake clock is just numbers here)."""

from __future__ import annotations

import pytest

from supervisor.config.schema import Duration, RestartSpec, StartLimitSpec
from supervisor.restart_policy import Decision, RestartHistory, Verdict, backoff_cap, decide_after_exit

SPEC = RestartSpec(
    backoff_initial=Duration(1.0),
    backoff_max=Duration(30.0),
    reset_after=Duration(60.0),
    start_limit=StartLimitSpec(burst=5, window=Duration(100.0)),
)


def _upper(lo: float, hi: float) -> float:
    """Deterministic stand-in for random.uniform: always the cap, so the table shows the bound."""
    return hi


@pytest.mark.parametrize(
    ("failures", "cap"),
    [
        (0, 0.0),
        (1, 0.0),
        (2, 1.0),
        (3, 2.0),
        (4, 4.0),
        (5, 8.0),
        (6, 16.0),
        (7, 30.0),
        (50, 30.0),
        (10**6, 30.0),
    ],
)
def test_backoff_cap_doubles_up_to_the_max(failures: int, cap: float) -> None:
    assert backoff_cap(SPEC, failures) == cap


@pytest.mark.parametrize(
    ("history", "now", "ran_for", "fatal", "expected_failures", "expected"),
    [
        # First crash after stable running: at once.
        (RestartHistory(0, (0.0,)), 500.0, 400.0, False, 1, Decision(Verdict.RESTART, 0.0)),
        # A crash soon after a previous one backs off.
        (RestartHistory(1, (0.0, 10.0)), 12.0, 1.0, False, 2, Decision(Verdict.RESTART, 1.0)),
        (RestartHistory(3, (0.0, 10.0, 20.0)), 25.0, 1.0, False, 4, Decision(Verdict.RESTART, 4.0)),
        # Healthy running for reset_after forgets earlier crashes.
        (RestartHistory(6, (0.0, 50.0)), 200.0, 60.0, False, 1, Decision(Verdict.RESTART, 0.0)),
        # Fatal: quarantine regardless of history.
        (RestartHistory(0, (0.0,)), 5.0, 5.0, True, 1, None),
    ],
)
def test_decisions(
    history: RestartHistory,
    now: float,
    ran_for: float,
    fatal: bool,
    expected_failures: int,
    expected: Decision | None,
) -> None:
    new, decision = decide_after_exit(history, SPEC, now=now, ran_for=ran_for, fatal=fatal, uniform=_upper)
    assert new.consecutive_failures == expected_failures
    if expected is None:
        assert decision.verdict is Verdict.QUARANTINE
        assert "fatal" in decision.reason
    else:
        assert decision == expected


def test_more_than_burst_starts_within_window_quarantines() -> None:
    history = RestartHistory()
    verdicts = []
    now = 0.0
    for _ in range(7):
        history = history.started(now, SPEC.start_limit.window)
        now += 1.0
        history, decision = decide_after_exit(
            history, SPEC, now=now, ran_for=0.0, fatal=False, uniform=_upper
        )
        verdicts.append(decision.verdict)
        if decision.verdict is Verdict.QUARANTINE:
            break
    # burst=5: five starts are allowed, the sixth would exceed it.
    assert verdicts == [Verdict.RESTART] * 4 + [Verdict.QUARANTINE]


def test_starts_outside_the_window_do_not_count() -> None:
    history = RestartHistory()
    for start in (0.0, 1.0, 2.0, 3.0):
        history = history.started(start, SPEC.start_limit.window)
    # 150 s later the earlier starts have left the 100 s window.
    history = history.started(150.0, SPEC.start_limit.window)
    assert history.start_times == (150.0,)
    _, decision = decide_after_exit(history, SPEC, now=151.0, ran_for=0.0, fatal=False, uniform=_upper)
    assert decision.verdict is Verdict.RESTART


def test_jitter_is_full_range() -> None:
    seen: list[tuple[float, float]] = []

    def record(lo: float, hi: float) -> float:
        seen.append((lo, hi))
        return lo

    decide_after_exit(RestartHistory(4, (0.0,)), SPEC, now=1.0, ran_for=0.0, fatal=False, uniform=record)
    assert seen == [(0.0, 8.0)]
