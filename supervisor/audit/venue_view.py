"""What the venue holds for one account, through ccxt's Binance USD-M client: positions, open conditional
orders (algo orders) and wallet balances, on the symbols asked for.

ccxt is imported here, lazily, and only ever called in a worker thread (`afetch_venue_view`): the daemon's
event loop never waits on the venue. Each call is bounded twice: ccxt's own per-request timeout, and an
overall deadline on the thread's result. ccxt's raw endpoint methods are used (one request each, no market
loading): `GET /fapi/v3/positionRisk` (weight 5), `GET /fapi/v1/openAlgoOrders` (1 per symbol, 40 without
one) and `GET /fapi/v3/account` (5).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from supervisor.audit.holdings import ConditionalOrder
from supervisor.secrets import Secret

LIVE_FAPI = "https://fapi.binance.com"
POSITIONS_WEIGHT = 5
BALANCES_WEIGHT = 5
ALGO_ORDERS_ALL_WEIGHT = 40
# Above this many symbols one request without a symbol (weight 40) is cheaper than one per symbol.
PER_SYMBOL_ORDERS_MAX = ALGO_ORDERS_ALL_WEIGHT - 1
# Algo orders that still wait at the venue (the others triggered, were cancelled or expired).
_OPEN_ALGO_STATUSES = frozenset({"NEW"})
_ZERO = Decimal(0)


class VenueAuditError(Exception):
    """The venue could not be read (an error answer, a timeout, credentials refused)."""


@dataclass(frozen=True, kw_only=True)
class VenueRequest:
    """One account's view to fetch. `symbols` are venue symbols (BTCUSDT)."""

    base_url: str | None  # the venue entry's base_url_http; None: Binance (live or testnet)
    testnet: bool
    api_key: Secret
    api_secret: Secret
    symbols: tuple[str, ...]
    orders: bool = True
    balances: bool = False
    timeout_s: float = 10.0  # per request

    def weight(self) -> int:
        """The request weight this fetch costs at Binance USD-M."""
        orders = 0
        if self.orders and self.symbols:
            orders = (
                len(self.symbols) if len(self.symbols) <= PER_SYMBOL_ORDERS_MAX else ALGO_ORDERS_ALL_WEIGHT
            )
        return POSITIONS_WEIGHT + orders + (BALANCES_WEIGHT if self.balances else 0)

    def requests(self) -> int:
        orders = 0
        if self.orders and self.symbols:
            orders = len(self.symbols) if len(self.symbols) <= PER_SYMBOL_ORDERS_MAX else 1
        return 1 + orders + (1 if self.balances else 0)


@dataclass(frozen=True, kw_only=True)
class VenueView:
    positions: Mapping[str, Decimal]  # symbol -> signed net quantity (flat ones left out)
    orders: Mapping[str, ConditionalOrder]  # by client order id; `instrument` is the venue symbol here
    balances: Mapping[str, Decimal] | None  # asset -> wallet balance; None when not fetched
    used_weight: int | None  # the venue's X-MBX-USED-WEIGHT-1M after the last request


# One ccxt client per account and endpoint, kept: building one is ~0.1 s of pure Python (it holds the GIL,
# and with it the daemon's event loop), and its HTTP session keeps its connections. A client is not
# thread-safe: audits of one account take turns (its lock).
_CLIENTS: dict[tuple[str | None, bool, str, str, float], tuple[Any, threading.Lock]] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(request: VenueRequest) -> tuple[Any, threading.Lock]:
    key = (
        request.base_url,
        request.testnet,
        request.api_key.reveal(),
        hashlib.sha256(request.api_secret.reveal().encode()).hexdigest(),
        request.timeout_s,
    )
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            import ccxt  # lazily: the daemon must start without it

            exchange = ccxt.binanceusdm(
                {
                    "apiKey": request.api_key.reveal(),
                    "secret": request.api_secret.reveal(),
                    "timeout": int(request.timeout_s * 1000),
                    "enableRateLimit": False,  # the fleet's budget in Redis paces us, not ccxt's own limiter
                    "options": {"fetchCurrencies": False, "adjustForTimeDifference": False},
                }
            )
            if request.testnet:
                exchange.set_sandbox_mode(True)
            if request.base_url:
                point_at(exchange, request.base_url)
            _CLIENTS[key] = (exchange, threading.Lock())
        return _CLIENTS[key]


def close_clients() -> None:
    """Close every kept client's connections (when the audits stop). Blocking but brief: sockets only."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for exchange, lock in clients:
        with lock, contextlib.suppress(Exception):
            exchange.session.close()


def fetch_venue_view(request: VenueRequest) -> VenueView:
    """Blocking: run it in a worker thread (`afetch_venue_view`)."""
    import ccxt

    exchange, lock = _client(request)
    with lock:
        return _fetch(exchange, request, ccxt.BaseError)


def _fetch(exchange: Any, request: VenueRequest, ccxt_error: type[Exception]) -> VenueView:
    try:
        symbols = set(request.symbols)
        positions: dict[str, Decimal] = {}
        for row in exchange.fapiPrivateV3GetPositionRisk():
            symbol = row.get("symbol")
            if symbol in symbols:
                positions[symbol] = positions.get(symbol, _ZERO) + _decimal(row.get("positionAmt"))
        orders: dict[str, ConditionalOrder] = {}
        if request.orders and symbols:
            if len(symbols) <= PER_SYMBOL_ORDERS_MAX:
                rows = [
                    r for s in sorted(symbols) for r in exchange.fapiPrivateGetOpenAlgoOrders({"symbol": s})
                ]
            else:
                rows = list(exchange.fapiPrivateGetOpenAlgoOrders())
            for row in rows:
                order = _algo_order(row)
                if order is not None and order.instrument in symbols:
                    orders[order.client_order_id] = order
        balances: dict[str, Decimal] | None = None
        if request.balances:
            account = exchange.fapiPrivateV3GetAccount()
            balances = {a["asset"]: _decimal(a.get("walletBalance")) for a in account.get("assets", [])}
        return VenueView(
            positions={s: q for s, q in positions.items() if q != _ZERO},
            orders=orders,
            balances=balances,
            used_weight=_used_weight(exchange.last_response_headers),
        )
    except ccxt_error as exc:
        raise VenueAuditError(f"{type(exc).__name__}: {_short(exc)}") from None


async def afetch_venue_view(request: VenueRequest) -> VenueView:
    """`fetch_venue_view` in a worker thread, never longer than every request's timeout together (+1 s)."""
    deadline = request.timeout_s * request.requests() + 1.0
    try:
        async with asyncio.timeout(deadline):
            return await asyncio.to_thread(fetch_venue_view, request)
    except TimeoutError:
        raise VenueAuditError(f"the venue did not answer within {deadline:g}s") from None


def point_at(exchange: Any, base_url: str) -> None:
    """Send the USD-M requests to `base_url` instead of Binance's host (an emulator, a proxy). ccxt picks its
    futures error map by URL prefix, so the USD-M (linear) map is merged into the global one."""
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str) and url.startswith(LIVE_FAPI):
            api[name] = base_url.rstrip("/") + url[len(LIVE_FAPI) :]
    linear = exchange.exceptions.get("linear", {})
    for kind in ("exact", "broad"):
        exchange.exceptions[kind] = {**exchange.exceptions.get(kind, {}), **linear.get(kind, {})}


def venue_symbol(instrument: str) -> str:
    """nautilus' `BTCUSDT-PERP.BINANCE` -> the venue's `BTCUSDT`."""
    return instrument.split(".", 1)[0].removesuffix("-PERP")


def _algo_order(row: Mapping[str, Any]) -> ConditionalOrder | None:
    if row.get("algoStatus", "NEW") not in _OPEN_ALGO_STATUSES or not row.get("clientAlgoId"):
        return None
    close_position = str(row.get("closePosition", "false")).lower() == "true"
    trigger = row.get("triggerPrice")
    return ConditionalOrder(
        client_order_id=str(row["clientAlgoId"]),
        instrument=str(row.get("symbol", "")),
        order_type=str(row.get("orderType", "")),
        side=str(row.get("side", "")),
        quantity=None if close_position else _decimal(row.get("quantity")),
        trigger_price=None if trigger in (None, "") else _decimal(trigger),
    )


def _decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return _ZERO


def _used_weight(headers: Mapping[str, str] | None) -> int | None:
    for key, value in (headers or {}).items():
        if key.lower() == "x-mbx-used-weight-1m" and str(value).isdigit():
            return int(value)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."
