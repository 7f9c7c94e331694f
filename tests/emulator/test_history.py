"""History windows (spans, defaults, the venue's error for too long a span) and row selection."""

from __future__ import annotations

import pytest

from emulator import history
from emulator.errors import VenueError

NOW = 1_800_000_000_000
WEEK = history.SEVEN_DAYS_MS


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (NOW - WEEK, NOW)),
        (NOW - 1000, None, (NOW - 1000, NOW - 1000 + WEEK)),
        (None, NOW - 1000, (NOW - 1000 - WEEK, NOW - 1000)),
        (NOW - WEEK, NOW, (NOW - WEEK, NOW)),  # exactly seven days is allowed
    ],
)
def test_window(start: int | None, end: int | None, expected: tuple[int, int]) -> None:
    span = history.window(start, end, NOW, WEEK, WEEK)
    assert (span.start, span.end) == expected


def test_window_longer_than_allowed_is_the_venues_error() -> None:
    with pytest.raises(VenueError) as info:
        history.window(NOW - WEEK - 1, NOW, NOW, WEEK, WEEK)
    assert (info.value.code, info.value.status) == (-1127, 400)
    assert info.value.msg == "More than 168 hours between startTime and endTime."
    with pytest.raises(VenueError):
        history.window(NOW, NOW - 1, NOW, WEEK, WEEK)


ROWS = [(i, NOW - (10 - i) * 1000) for i in range(10)]  # (id, time), ascending


def _select(**kwargs: object) -> list[int]:
    chosen = history.select(ROWS, time_of=lambda r: r[1], id_of=lambda r: r[0], **kwargs)  # type: ignore[arg-type]
    return [r[0] for r in chosen]


def test_select() -> None:
    everything = history.Window(0, NOW)
    assert _select(span=everything, from_id=None, limit=3, oldest_first=False) == [7, 8, 9]  # latest
    assert _select(span=everything, from_id=None, limit=3, oldest_first=True) == [0, 1, 2]  # from start
    assert _select(span=everything, from_id=4, limit=3, oldest_first=False) == [4, 5, 6]  # id cursor
    assert _select(
        span=history.Window(NOW - 5000, NOW - 3000), from_id=None, limit=10, oldest_first=True
    ) == [5, 6, 7]
    assert _select(span=None, from_id=None, limit=100, oldest_first=False) == list(range(10))
