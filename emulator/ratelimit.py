"""Request-weight rate limiting per account (unsigned requests per client address), in fixed one-minute
windows as the venue counts them: every answer carries `X-MBX-USED-WEIGHT-1M`; going over the limit answers
429 with Retry-After; a client that keeps sending after `ban_after` 429s in a window is banned (418) for
`ban_seconds`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from emulator import errors
from emulator.errors import VenueError

MINUTE_MS = 60_000
ORDER_LIMIT_PER_MINUTE = 1200


@dataclass(slots=True)
class Usage:
    window: int = 0
    used: int = 0
    orders: int = 0
    rejected: int = 0
    banned_until: int = 0


@dataclass(slots=True)
class RateLimitConfig:
    weight_per_minute: int = 2400
    ban_after: int = 3
    ban_seconds: int = 120
    orders_per_minute: int = ORDER_LIMIT_PER_MINUTE


class RateLimiter:
    def __init__(self, config: RateLimitConfig, clock: Callable[[], int]) -> None:
        self.config = config
        self.now = clock
        self._usage: dict[str, Usage] = {}

    def usage(self, key: str) -> Usage:
        usage = self._usage.get(key)
        if usage is None:
            usage = self._usage[key] = Usage()
        window = self.now() // MINUTE_MS
        if usage.window != window:
            usage.window, usage.used, usage.orders, usage.rejected = window, 0, 0, 0
        return usage

    def charge(self, key: str, weight: int, is_order: bool) -> Usage:
        """Count a request; raise the venue's 429/418 when it must be refused."""
        now = self.now()
        if self._usage.get(key) and self._usage[key].banned_until > now:
            until = self._usage[key].banned_until
            raise errors.banned(until, math.ceil((until - now) / 1000))
        usage = self.usage(key)
        retry_after = math.ceil(((usage.window + 1) * MINUTE_MS - now) / 1000)
        if usage.used + weight > self.config.weight_per_minute:
            raise self._refuse(
                usage, now, errors.too_many_requests(self.config.weight_per_minute, retry_after)
            )
        if is_order and usage.orders + 1 > self.config.orders_per_minute:
            raise self._refuse(usage, now, _too_many_orders(self.config.orders_per_minute, retry_after))
        usage.used += weight
        if is_order:
            usage.orders += 1
        return usage

    def _refuse(self, usage: Usage, now: int, error: VenueError) -> VenueError:
        usage.rejected += 1
        if usage.rejected > self.config.ban_after:
            usage.banned_until = now + self.config.ban_seconds * 1000
            return errors.banned(usage.banned_until, self.config.ban_seconds)
        return error

    def reset(self) -> None:
        self._usage.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {
            key: {"used": u.used, "orders": u.orders, "rejected": u.rejected, "banned_until": u.banned_until}
            for key, u in self._usage.items()
        }


def _too_many_orders(limit: int, retry_after: int) -> VenueError:
    return VenueError(
        -1015,
        f"Too many new orders; current limit is {limit} orders per MINUTE.",
        429,
        {"Retry-After": str(retry_after)},
    )


# Request weights of the USD-M endpoints (GET unless noted); 1 when not listed.
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/allAlgoOrders"): 5,
    ("GET", "/fapi/v1/income"): 30,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("POST", "/fapi/v1/order"): 0,
    ("POST", "/fapi/v1/algoOrder"): 0,
    ("POST", "/fapi/v1/batchOrders"): 5,
    ("DELETE", "/fapi/v1/batchOrders"): 1,
}
# Weight when the symbol parameter is omitted.
NO_SYMBOL_WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/openOrders"): 40,
    ("GET", "/fapi/v1/openAlgoOrders"): 40,
    ("GET", "/fapi/v1/ticker/price"): 2,
    ("GET", "/fapi/v1/ticker/bookTicker"): 2,
    ("GET", "/fapi/v1/premiumIndex"): 10,
}


def kline_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def weight_of(method: str, path: str, params: dict[str, str]) -> int:
    key = (method, path)
    if path == "/fapi/v1/klines":
        raw = params.get("limit", "")
        return kline_weight(int(raw) if raw.isdigit() else 500)
    if key in NO_SYMBOL_WEIGHTS and not params.get("symbol"):
        return NO_SYMBOL_WEIGHTS[key]
    return WEIGHTS.get(key, 1)
