"""Protective-order submit pacing (pure: a fake clock is a number)."""

from __future__ import annotations

import pytest

from recovery.pacing import SubmitPacer


def test_a_burst_goes_at_once_then_the_rate_applies() -> None:
    now = [0.0]
    pacer = SubmitPacer(rate=25.0, burst=10, clock=lambda: now[0])
    delays = [pacer.delay() for _ in range(12)]
    assert delays[:10] == [0.0] * 10
    assert delays[10:] == pytest.approx([0.04, 0.08])


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    now = [0.0]
    pacer = SubmitPacer(rate=10.0, burst=2, clock=lambda: now[0])
    assert [pacer.delay(), pacer.delay()] == [0.0, 0.0]
    now[0] = 100.0  # a long pause refills only up to the burst
    assert [pacer.delay(), pacer.delay(), pacer.delay()] == pytest.approx([0.0, 0.0, 0.1])


def test_a_hundred_protective_orders_stay_under_nautilus_default_rate() -> None:
    """Submitted at the returned times, no one-second window holds more than nautilus' 100 submits."""
    now = [0.0]
    pacer = SubmitPacer(rate=25.0, burst=10, clock=lambda: now[0])
    times = []
    for _ in range(100):
        now[0] += pacer.delay()
        times.append(now[0])
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 35


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (1.0, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="submit pacing"):
        SubmitPacer(rate=rate, burst=burst)
