"""The venue's rate limits, in the scopes Binance USD-M counts them:

- REQUEST_WEIGHT per client address: every request from one address (signed or not, whatever the account or
  sub-account) adds its weight to one count, in fixed windows aligned with the clock (a minute on the venue).
  Every answer carries the address' count in `X-MBX-USED-WEIGHT-1M`. Over the limit: 429 (-1003,
  Retry-After until the next window).
- ORDERS per account, in a 10-second and a one-minute window: every order placement of the account counts,
  from any address. Order answers carry `X-MBX-ORDER-COUNT-10S` and `X-MBX-ORDER-COUNT-1M`. Over either
  limit: 429 (-1015).
- An address that keeps sending after `ban_after` 429s in a window is banned (418, -1003) for `ban_seconds`,
  for every request it sends, as the venue bans IPs.

Header names follow the venue's rule `X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)`: a weight window set
to 5 s for a test is announced as `X-MBX-USED-WEIGHT-5S` (and in exchangeInfo's `rateLimits`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator import errors
from emulator.errors import VenueError

MINUTE_MS = 60_000
ORDER_LIMIT_PER_MINUTE = 1200
ORDER_LIMIT_PER_10S = 300
ORDERS_SHORT_WINDOW_S = 10
ORDERS_LONG_WINDOW_S = 60


@dataclass(slots=True)
class AddressUsage:
    """One client address' request weight in the current weight window."""

    window: int = 0
    used: int = 0
    rejected: int = 0
    banned_until: int = 0


@dataclass(slots=True)
class OrderUsage:
    """One account's order count in the current 10-second and one-minute windows."""

    short_window: int = 0
    short: int = 0
    long_window: int = 0
    long: int = 0


@dataclass(slots=True)
class RateLimitConfig:
    # Request weight per weight window and client address (the venue: 2,400 per minute).
    weight_per_minute: int = 2400
    # The weight window in seconds: 60 on the venue; shorter only so that tests need not wait a minute.
    weight_window_s: int = 60
    ban_after: int = 3
    ban_seconds: int = 120
    orders_per_minute: int = ORDER_LIMIT_PER_MINUTE
    orders_per_10s: int = ORDER_LIMIT_PER_10S

    def check(self) -> None:
        for name in ("weight_per_minute", "weight_window_s", "orders_per_minute", "orders_per_10s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.ban_after < 0 or self.ban_seconds < 0:
            raise ValueError("ban_after and ban_seconds must be >= 0")


@dataclass(slots=True, frozen=True)
class Charged:
    """What one admitted request brought the counts to (the answer's headers)."""

    used: int
    orders_10s: int | None = None
    orders_1m: int | None = None


@dataclass(slots=True)
class _Tables:
    addresses: dict[str, AddressUsage] = field(default_factory=dict)
    accounts: dict[str, OrderUsage] = field(default_factory=dict)


def interval_suffix(seconds: int) -> str:
    """The venue's interval notation: 60 -> "1M", 10 -> "10S", 3600 -> "1H", 86400 -> "1D"."""
    for unit_s, letter in ((86_400, "D"), (3_600, "H"), (60, "M")):
        if seconds % unit_s == 0:
            return f"{seconds // unit_s}{letter}"
    return f"{seconds}S"


def interval_of(seconds: int) -> tuple[str, int]:
    """exchangeInfo's (`interval`, `intervalNum`) for a window length."""
    for unit_s, name in ((86_400, "DAY"), (3_600, "HOUR"), (60, "MINUTE")):
        if seconds % unit_s == 0:
            return name, seconds // unit_s
    return "SECOND", seconds


class RateLimiter:
    def __init__(self, config: RateLimitConfig, clock: Callable[[], int]) -> None:
        config.check()
        self.config = config
        self.now = clock
        self._tables = _Tables()

    @property
    def weight_header(self) -> str:
        return f"X-MBX-USED-WEIGHT-{interval_suffix(self.config.weight_window_s)}"

    def address_usage(self, address: str) -> AddressUsage:
        usage = self._tables.addresses.get(address)
        if usage is None:
            usage = self._tables.addresses[address] = AddressUsage()
        window = self.now() // (self.config.weight_window_s * 1000)
        if usage.window != window:
            usage.window, usage.used, usage.rejected = window, 0, 0
        return usage

    def order_usage(self, account: str) -> OrderUsage:
        usage = self._tables.accounts.get(account)
        if usage is None:
            usage = self._tables.accounts[account] = OrderUsage()
        now = self.now()
        short, long = now // (ORDERS_SHORT_WINDOW_S * 1000), now // (ORDERS_LONG_WINDOW_S * 1000)
        if usage.short_window != short:
            usage.short_window, usage.short = short, 0
        if usage.long_window != long:
            usage.long_window, usage.long = long, 0
        return usage

    def charge(self, address: str, account: str | None, weight: int, is_order: bool) -> Charged:
        """Count a request from `address` (an order placement also for `account`); raise the venue's
        429/418 when it must be refused."""
        now = self.now()
        known = self._tables.addresses.get(address)
        if known is not None and known.banned_until > now:
            retry_after = math.ceil((known.banned_until - now) / 1000)
            raise errors.banned(known.banned_until, retry_after, address)
        usage = self.address_usage(address)
        window_ms = self.config.weight_window_s * 1000
        if usage.used + weight > self.config.weight_per_minute:
            retry_after = math.ceil(((usage.window + 1) * window_ms - now) / 1000)
            interval = interval_of(self.config.weight_window_s)
            limited = errors.too_many_requests(self.config.weight_per_minute, retry_after, interval, address)
            raise self._refuse(address, usage, now, limited)
        orders = self.order_usage(account) if is_order and account is not None else None
        if orders is not None:
            for count, limit, window, length_s in (
                (orders.short, self.config.orders_per_10s, orders.short_window, ORDERS_SHORT_WINDOW_S),
                (orders.long, self.config.orders_per_minute, orders.long_window, ORDERS_LONG_WINDOW_S),
            ):
                if count + 1 > limit:
                    retry_after = math.ceil(((window + 1) * length_s * 1000 - now) / 1000)
                    raise self._refuse(address, usage, now, _too_many_orders(limit, length_s, retry_after))
        usage.used += weight
        if orders is None:
            return Charged(used=usage.used)
        orders.short += 1
        orders.long += 1
        return Charged(used=usage.used, orders_10s=orders.short, orders_1m=orders.long)

    def _refuse(self, address: str, usage: AddressUsage, now: int, error: VenueError) -> VenueError:
        """Every 429 counts against the address; beyond `ban_after` in a window it is banned (418)."""
        usage.rejected += 1
        if usage.rejected > self.config.ban_after:
            usage.banned_until = now + self.config.ban_seconds * 1000
            return errors.banned(usage.banned_until, self.config.ban_seconds, address)
        return error

    def reset(self) -> None:
        self._tables = _Tables()

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """Current counts: weight per address, orders per account (windows that have passed read 0)."""
        addresses = {address: self.address_usage(address) for address in list(self._tables.addresses)}
        accounts = {account: self.order_usage(account) for account in list(self._tables.accounts)}
        return {
            "addresses": {
                address: {"used": u.used, "rejected": u.rejected, "banned_until": u.banned_until}
                for address, u in addresses.items()
            },
            "accounts": {
                account: {"orders_10s": u.short, "orders_1m": u.long} for account, u in accounts.items()
            },
        }


def _too_many_orders(limit: int, window_s: int, retry_after: int) -> VenueError:
    interval = "TEN_SECONDS" if window_s == ORDERS_SHORT_WINDOW_S else "MINUTE"
    return VenueError(
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
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
