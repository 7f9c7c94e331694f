"""Fetching what the venue holds for reconciliation: every request through the injectable limiter, with a
timeout, concurrently per symbol, and any error raised (never "no reports", which reads as "flat").

Works on the nautilus HTTP API objects the exec client already owns; returns the raw msgspec rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recovery.ratelimit import RequestLimiter, request_weight

T = TypeVar("T")

log = logging.getLogger(__name__)

# A 429 (request weight over the venue's limit) is "slow down", not "the venue is broken": wait as the venue
# says (Retry-After) and try again, a few times and within a bound; a 418 (banned) fails at once.
RATE_LIMIT_RETRIES = 2


class RateLimitedError(RuntimeError):
    """The venue refused a request for its rate limit (429) or has banned the client (418)."""

    def __init__(self, status: int, retry_after_s: float) -> None:
        kind = "banned the client" if status == 418 else "rate limited the account"
        super().__init__(f"the venue {kind} (HTTP {status}); retry after {retry_after_s:g}s")
        self.status = status
        self.retry_after_s = retry_after_s


class VenueFetchError(RuntimeError):
    """A request reconciliation needs failed: recovery must fail, never assume the venue is flat."""

    def __init__(self, what: str, cause: BaseException) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.cause = cause


@dataclass
class VenueRows:
    """What one fetch returned (raw nautilus Binance schema objects)."""

    position_risk: list[Any] = field(default_factory=list)
    open_orders: list[Any] = field(default_factory=list)
    open_algos: list[Any] = field(default_factory=list)
    trades: dict[str, list[Any]] = field(default_factory=dict)  # by venue symbol
    all_orders: dict[str, list[Any]] = field(default_factory=dict)
    all_algos: dict[str, list[Any]] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0


class Fetcher:
    """One account's reconciliation requests. `account` is the futures account HTTP API of the exec client."""

    def __init__(
        self,
        *,
        account: Any,
        limiter: RequestLimiter,
        request_timeout: float,
        max_rate_limit_wait: float = 10.0,
    ) -> None:
        self._account = account
        self._limiter = limiter
        self._timeout = request_timeout
        self._max_rate_limit_wait = max_rate_limit_wait
        self.requests = 0
        # The last successful account-wide positionRisk answer: a failed reconciliation still knows the
        # venue's positions for its report when this call succeeded.
        self.last_position_risk: list[Any] | None = None

    async def call(self, what: str, weight: int, request: Callable[[], Awaitable[T]]) -> T:
        """One request: a limiter slot, our own timeout (the Binance HTTP client has none), errors wrapped;
        a 429 is waited out (bounded), everything else fails. The HTTP transport underneath
        (`recovery/binance/http.py`) reports the venue's answer to this slot instead of taking another."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            async with self._limiter.slot(weight):
                self.requests += 1
                try:
                    async with asyncio.timeout(self._timeout):
                        return await request()
                except TimeoutError as exc:
                    raise VenueFetchError(what, TimeoutError(f"no answer within {self._timeout:g}s")) from exc
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # BinanceError, transport errors, decode errors: all fail recovery
                    limited = rate_limited(exc)
                    if limited is None:
                        raise VenueFetchError(what, exc) from exc
            if (
                limited.status == 418
                or attempt == RATE_LIMIT_RETRIES
                or limited.retry_after_s > self._max_rate_limit_wait
            ):
                raise VenueFetchError(what, limited) from None
            log.warning("%s: %s; waiting", what, limited)
            self._limiter.pause(limited.retry_after_s)
            await asyncio.sleep(limited.retry_after_s)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def position_risk(self, symbol: str | None = None) -> list[Any]:
        rows: list[Any] = await self.call(
            f"positionRisk {symbol or ''}".strip(),
            request_weight("GET", "/fapi/v3/positionRisk"),
            lambda: self._account.query_futures_position_risk(symbol),
        )
        if symbol is None:
            self.last_position_risk = rows
        return rows

    async def open_orders(self, symbol: str | None = None) -> list[Any]:
        weight = request_weight("GET", "/fapi/v1/openOrders", {"symbol": symbol or ""})
        rows: list[Any] = await self.call(
            f"openOrders {symbol or ''}".strip(), weight, lambda: self._account.query_open_orders(symbol)
        )
        return rows

    async def open_algos(self, symbol: str | None = None) -> list[Any]:
        weight = request_weight("GET", "/fapi/v1/openAlgoOrders", {"symbol": symbol or ""})
        rows: list[Any] = await self.call(
            f"openAlgoOrders {symbol or ''}".strip(),
            weight,
            lambda: self._account.query_open_algo_orders(symbol),
        )
        return rows

    async def trades(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> list[Any]:
        rows: list[Any] = await self.call(
            f"userTrades {symbol}",
            request_weight("GET", "/fapi/v1/userTrades"),
            lambda: self._account.query_user_trades(symbol=symbol, start_time=start_ms, end_time=end_ms),
        )
        return rows

    async def all_orders(self, symbol: str) -> list[Any]:
        rows: list[Any] = await self.call(
            f"allOrders {symbol}",
            request_weight("GET", "/fapi/v1/allOrders"),
            lambda: self._account.query_all_orders(symbol=symbol, limit=1000),
        )
        return rows

    async def all_algos(self, symbol: str) -> list[Any]:
        rows: list[Any] = await self.call(
            f"allAlgoOrders {symbol}",
            request_weight("GET", "/fapi/v1/allAlgoOrders"),
            lambda: self._account.query_all_algo_orders(symbol=symbol, limit=1000),
        )
        return rows


async def fetch_for_reconciliation(
    fetcher: Fetcher, symbols_for: Callable[[VenueRows], Iterable[str]]
) -> VenueRows:
    """Positions and open orders of the whole account (one call each, never time-filtered), then the history
    of every symbol `symbols_for` picks from them, all symbols at once (the limiter paces them)."""
    started = time.perf_counter()
    before = fetcher.requests
    rows = VenueRows()
    async with asyncio.TaskGroup() as group:
        risk = group.create_task(fetcher.position_risk(), name="recon.positionRisk")
        opened = group.create_task(fetcher.open_orders(), name="recon.openOrders")
        algos = group.create_task(fetcher.open_algos(), name="recon.openAlgoOrders")
    rows.position_risk, rows.open_orders, rows.open_algos = risk.result(), opened.result(), algos.result()

    symbols = sorted(set(symbols_for(rows)))
    async with asyncio.TaskGroup() as group:
        tasks = {
            symbol: (
                group.create_task(fetcher.trades(symbol), name=f"recon.userTrades[{symbol}]"),
                group.create_task(fetcher.all_orders(symbol), name=f"recon.allOrders[{symbol}]"),
                group.create_task(fetcher.all_algos(symbol), name=f"recon.allAlgoOrders[{symbol}]"),
            )
            for symbol in symbols
        }
    for symbol, (trades, orders, algo_rows) in tasks.items():
        rows.trades[symbol] = trades.result()
        rows.all_orders[symbol] = orders.result()
        rows.all_algos[symbol] = algo_rows.result()
    rows.requests = fetcher.requests - before
    rows.seconds = time.perf_counter() - started
    return rows


def rate_limited(exc: BaseException, now: float | None = None) -> RateLimitedError | None:
    """A 429/418 answer, else None. The wait is the answer's Retry-After (our HTTP transport keeps it;
    nautilus' own passes no response headers), else the venue's own rule: request weight is counted in
    one-minute windows on the clock, and the next window starts at the next full minute."""
    status = getattr(exc, "status", None)
    if status not in (418, 429):
        return None
    headers = getattr(exc, "headers", None) or {}
    raw = next((v for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    try:
        retry_after = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        retry_after = None
    if retry_after is None:
        retry_after = next_window_in(time.time() if now is None else now)
    return RateLimitedError(int(status), retry_after)


def next_window_in(now: float, window_s: float = 60.0, margin_s: float = 0.5) -> float:
    """Seconds until the venue's next rate-limit window (windows start on the clock's full minutes)."""
    return round(window_s - (now % window_s) + margin_s, 3)


def first_error(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) ExceptionGroups from a TaskGroup."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
