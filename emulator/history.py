"""History queries with the venue's windows: default and maximum spans, id cursors, limits. Pure functions.

Binance USD-M: userTrades, allOrders and allAlgoOrders look at most 7 days at a time (and the last 7 days
when no time is given); asking for a longer span is an error, not a truncation. Income defaults to the last
7 days and allows up to 3 months. With an id cursor (`fromId` / `orderId` / `algoId`) rows from that id on
are returned; with a start time the first `limit` rows of the window; otherwise the latest `limit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emulator import errors

DAY_MS = 86_400_000
SEVEN_DAYS_MS = 7 * DAY_MS
NINETY_DAYS_MS = 90 * DAY_MS


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int


def window(start: int | None, end: int | None, now: int, max_span_ms: int, default_span_ms: int) -> Window:
    """The [start, end] a query covers; raises the venue's error when the requested span is too long."""
    if start is not None and end is not None:
        if end < start:
            raise errors.invalid_value("startTime")
        if end - start > max_span_ms:
            raise errors.lookup_interval_too_big(max_span_ms // 3_600_000)
        return Window(start, end)
    if start is not None:
        return Window(start, start + default_span_ms)
    if end is not None:
        return Window(end - default_span_ms, end)
    return Window(now - default_span_ms, now)


def select[T](
    rows: Sequence[T],
    *,
    time_of: Callable[[T], int],
    id_of: Callable[[T], int],
    span: Window | None,
    from_id: int | None,
    limit: int,
    oldest_first: bool,
) -> list[T]:
    """Rows (kept in id order) inside `span` (ignored with an id cursor), then limited.

    `oldest_first` takes the first `limit` rows of the window (a start time was given), otherwise the
    latest `limit`; the answer is always in ascending order.
    """
    if from_id is not None:
        chosen = [row for row in rows if id_of(row) >= from_id]
        return chosen[:limit]
    if span is not None:
        chosen = [row for row in rows if span.start <= time_of(row) <= span.end]
    else:
        chosen = list(rows)
    return chosen[:limit] if oldest_first else chosen[-limit:] if limit < len(chosen) else chosen
