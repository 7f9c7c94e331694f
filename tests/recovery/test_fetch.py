"""How long a rate-limited reconciliation request waits (pure)."""

from __future__ import annotations

import pytest

from recovery.binance.fetch import RateLimitedError, next_window_in, rate_limited


class Answer(Exception):
    """Shaped like nautilus' BinanceError: status, message, headers."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__("refused")
        self.status = status
        self.headers = headers or {}


MINUTE = 60.0 * 28_333_333  # an epoch second on a full minute


@pytest.mark.parametrize(("now", "expected"), [(MINUTE + 40, 20.5), (MINUTE + 59.9, 0.6), (MINUTE, 60.5)])
def test_the_next_window_starts_at_the_next_full_minute(now: float, expected: float) -> None:
    assert next_window_in(now) == pytest.approx(expected)


def test_429_without_retry_after_waits_for_the_next_window() -> None:
    limited = rate_limited(Answer(429), now=MINUTE + 40)
    assert isinstance(limited, RateLimitedError)
    assert (limited.status, limited.retry_after_s) == (429, 20.5)


def test_retry_after_wins_when_the_client_passes_it() -> None:
    limited = rate_limited(Answer(429, {"retry-after": "7"}), now=MINUTE + 40)
    assert limited is not None and limited.retry_after_s == 7.0
    assert "retry after 7s" in str(limited)


def test_a_ban_and_other_errors() -> None:
    banned = rate_limited(Answer(418), now=MINUTE + 40)
    assert banned is not None and "banned the client (HTTP 418)" in str(banned)
    assert rate_limited(Answer(503)) is None
    assert rate_limited(ValueError("not an HTTP answer")) is None
