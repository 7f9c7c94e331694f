"""A token bucket for order submits, so that a burst of protective orders (a lost cache, 50 positions opened
at once) stays under the limits that would otherwise deny or reject them: nautilus' RiskEngine denies beyond
`max_order_submit_rate` (100 per second by default) and Binance USD-M allows 300 orders per 10 s per account.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class SubmitPacer:
    """At most `rate` submits per second on average, with bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"submit pacing needs rate > 0 and burst >= 1, got {rate} and {burst}")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def delay(self) -> float:
        """Take one token; the seconds to wait before using it (0 when one is available). Pure bookkeeping:
        a caller that waits the returned delay stays within the rate."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    async def wait(self) -> None:
        pause = self.delay()
        if pause > 0:
            await asyncio.sleep(pause)
