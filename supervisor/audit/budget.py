"""The audit's request weight, taken from the fleet's shared budget of the node's rate group
(`supervisor/rate_budget.py`): the same Lua scripts and keys the nodes' limiters use, so an audit never
pushes a recovering fleet over the venue's limit, and waits while the venue holds the group back (a 429's
or 418's Retry-After)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from supervisor.rate_budget import (
    ACQUIRE_SCRIPT,
    OBSERVE_SCRIPT,
    limits_key,
    pause_key,
    weight_key_base,
)

# Until a node of the group has published the venue's limits: Binance USD-M's 2,400 a minute, at the default
# recovery share (0.9).
DEFAULT_BUDGET = 2160
DEFAULT_WINDOW_MS = 60_000


@dataclass(frozen=True)
class Grant:
    """An admission: `wait_ms` 0 when the weight was booked in the window starting at `window_start_ms`,
    else how long until it could be."""

    wait_ms: int
    window_start_ms: int
    window_ms: int


async def take_weight(redis: Any, group: str, weight: int, *, timeout_s: float) -> Grant:
    """Book `weight` in the group's current window if it fits its recovery budget. Raises TimeoutError or the
    Redis client's error when Redis does not answer within `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        raw = await redis.hgetall(limits_key(group))
        limits = {_text(k): int(_text(v)) for k, v in raw.items()}
        budget = limits.get("recovery_budget", DEFAULT_BUDGET)
        window_ms = limits.get("window_ms", DEFAULT_WINDOW_MS)
        admitted, _used, wait_ms, start = await redis.eval(
            ACQUIRE_SCRIPT,
            0,
            weight_key_base(group),
            "",
            weight,
            0,
            budget,
            0,
            0,
            window_ms,
            pause_key(group),
        )
    return Grant(
        wait_ms=0 if int(admitted) else max(1, int(wait_ms)), window_start_ms=int(start), window_ms=window_ms
    )


async def observe_weight(redis: Any, group: str, used: int, grant: Grant, *, timeout_s: float) -> None:
    """The venue's own count (`X-MBX-USED-WEIGHT-1M`) raises the group's shared count, never lowers it."""
    async with asyncio.timeout(timeout_s):
        await redis.eval(
            OBSERVE_SCRIPT,
            0,
            weight_key_base(group),
            "",
            used,
            0,
            -1,
            -1,
            grant.window_ms,
            grant.window_start_ms,
            pause_key(group),
            -1,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
