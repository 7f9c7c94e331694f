from __future__ import annotations

import pytest

from supervisor.status.backoff import ReconnectPolicy


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (50, 30.0), (10_000, 30.0)],
)
def test_ceiling_doubles_up_to_the_cap(failures: int, ceiling: float) -> None:
    assert ReconnectPolicy(initial=0.5, cap=30.0).ceiling(failures) == ceiling


@pytest.mark.parametrize(("rand", "delay"), [(0.0, 0.0), (0.5, 1.0), (0.999, 1.998)])
def test_full_jitter_spreads_over_zero_to_ceiling(rand: float, delay: float) -> None:
    assert ReconnectPolicy(initial=0.5, cap=30.0).delay(3, rand) == pytest.approx(delay)


@pytest.mark.parametrize(("initial", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_invalid_policies_are_refused(initial: float, cap: float) -> None:
    with pytest.raises(ValueError, match="initial"):
        ReconnectPolicy(initial=initial, cap=cap)
