"""Fetching what the venue holds for reconciliation: every request through the injectable limiter, with a
timeout, concurrently per symbol, and any error raised (never "no reports", which reads as "flat").

Works on the nautilus HTTP API objects the exec client already owns; returns the raw msgspec rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recovery.ratelimit import WEIGHTS, RequestLimiter

T = TypeVar("T")


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

    def __init__(self, *, account: Any, limiter: RequestLimiter, request_timeout: float) -> None:
        self._account = account
        self._limiter = limiter
        self._timeout = request_timeout
        self.requests = 0

    async def call(self, what: str, weight: int, request: Callable[[], Awaitable[T]]) -> T:
        """One request: a limiter slot, our own timeout (the Binance HTTP client has none), errors wrapped."""
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
                raise VenueFetchError(what, exc) from exc

    async def position_risk(self, symbol: str | None = None) -> list[Any]:
        rows: list[Any] = await self.call(
            f"positionRisk {symbol or ''}".strip(),
            WEIGHTS["positionRisk"],
            lambda: self._account.query_futures_position_risk(symbol),
        )
        return rows

    async def open_orders(self, symbol: str | None = None) -> list[Any]:
        weight = WEIGHTS["openOrders:symbol" if symbol else "openOrders"]
        rows: list[Any] = await self.call(
            f"openOrders {symbol or ''}".strip(), weight, lambda: self._account.query_open_orders(symbol)
        )
        return rows

    async def open_algos(self, symbol: str | None = None) -> list[Any]:
        weight = WEIGHTS["openAlgoOrders:symbol" if symbol else "openAlgoOrders"]
        rows: list[Any] = await self.call(
            f"openAlgoOrders {symbol or ''}".strip(),
            weight,
            lambda: self._account.query_open_algo_orders(symbol),
        )
        return rows

    async def trades(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> list[Any]:
        rows: list[Any] = await self.call(
            f"userTrades {symbol}",
            WEIGHTS["userTrades"],
            lambda: self._account.query_user_trades(symbol=symbol, start_time=start_ms, end_time=end_ms),
        )
        return rows

    async def all_orders(self, symbol: str) -> list[Any]:
        rows: list[Any] = await self.call(
            f"allOrders {symbol}",
            WEIGHTS["allOrders"],
            lambda: self._account.query_all_orders(symbol=symbol, limit=1000),
        )
        return rows

    async def all_algos(self, symbol: str) -> list[Any]:
        rows: list[Any] = await self.call(
            f"allAlgoOrders {symbol}",
            WEIGHTS["allAlgoOrders"],
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


def first_error(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) ExceptionGroups from a TaskGroup."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
