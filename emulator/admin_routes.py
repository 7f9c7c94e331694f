"""The admin API under `/_admin` (unsigned; loopback clients only unless `--admin-allow-remote`).

It drives the venue from the outside: prices, fills and triggers while a client is away, silent position
changes, orders placed by "another client", faults, stream drops, snapshots, and the counters tests assert
on (attempts per client order id, the request log). `emulator.admin.AdminClient` is its Python client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from emulator import commands, views
from emulator.errors import VenueError
from emulator.faults import FaultRule
from emulator.params import Params
from emulator.state import Account
from emulator.venue import Venue

PREFIX = "/_admin"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_encode = msgspec.json.Encoder().encode


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PriceRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    price: Decimal | None = None
    mark: Decimal | None = None
    ticks: int | None = None


class ModeRequest(msgspec.Struct, forbid_unknown_fields=True):
    mode: str


class SymbolRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str | None = None


class DepthRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    level_qty: Decimal | None = None  # None: one level of unlimited liquidity again


class FillRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    account: str | None = None
    order_id: int | None = None
    client_order_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None


class TriggerRequest(msgspec.Struct, forbid_unknown_fields=True):
    account: str | None = None
    algo_id: int | None = None
    client_algo_id: str | None = None
    price: Decimal | None = None


class PositionRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    amount: Decimal
    entry_price: Decimal | None = None
    account: str | None = None
    notify: bool = False


class WalletRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: Decimal
    account: str | None = None
    notify: bool = False


class FundingRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    rate: Decimal | None = None


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True):
    params: dict[str, str]
    account: str | None = None


class CancelRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An order (symbol with order_id/client_order_id) or an algo order (algo_id/client_algo_id)."""

    symbol: str | None = None
    account: str | None = None
    order_id: int | None = None
    client_order_id: str | None = None
    algo_id: int | None = None
    client_algo_id: str | None = None


class BackdateRequest(CancelRequest, kw_only=True, forbid_unknown_fields=True):
    ms: int


class WsRequest(msgspec.Struct, forbid_unknown_fields=True):
    kind: str = "all"
    account: str | None = None
    abrupt: bool = True
    frozen: bool = True
    count: int = 1


class AccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    account: str | None = None


class PathRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: str | None = None


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    seed: int | None = None


class RateLimitRequest(msgspec.Struct, forbid_unknown_fields=True):
    weight_per_minute: int | None = None
    weight_window_s: int | None = None
    ban_after: int | None = None
    ban_seconds: int | None = None
    orders_per_minute: int | None = None
    orders_per_10s: int | None = None
    reset: bool = False


RATE_LIMIT_FIELDS = (
    "weight_per_minute",
    "weight_window_s",
    "ban_after",
    "ban_seconds",
    "orders_per_minute",
    "orders_per_10s",
)


def _ok(body: object, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


async def _body[S: msgspec.Struct](request: web.Request, kind: type[S]) -> S:
    raw = await request.read()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.DecodeError as exc:
        raise AdminError(400, f"bad request body: {exc}") from exc


def _account(venue: Venue, name: str | None) -> Account:
    if name is None:
        return next(iter(venue.engine.state.accounts.values()))
    account = venue.engine.state.accounts.get(name)
    if account is None:
        raise AdminError(404, f"no account named {name!r}")
    return account


def _symbol(venue: Venue, symbol: str) -> str:
    if symbol not in venue.specs:
        raise AdminError(404, f"symbol {symbol!r} is not listed")
    return symbol


class Admin:
    """Handlers; each returns a JSON body."""

    def __init__(self, venue_of: web.AppKey[Venue]) -> None:
        self._key = venue_of

    def venue(self, request: web.Request) -> Venue:
        return request.app[self._key]

    async def health(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        return _ok(
            {
                "ok": True,
                "seed": venue.seed,
                "symbols": list(venue.specs),
                "price_mode": venue.feed.mode,
                "accounts": list(venue.engine.state.accounts),
                "time": venue.now(),
            }
        )

    async def state(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        engine = venue.engine
        accounts = {}
        for name, account in engine.state.accounts.items():
            risk = engine.risk(account)
            accounts[name] = {
                "wallet": str(risk.wallet),
                "available": str(risk.available),
                "unrealized": str(risk.unrealized),
                "positions": {
                    s: {
                        "amount": str(p.amount),
                        "entry_price": str(p.entry_price),
                        "realized": str(p.accumulated_realized),
                    }
                    for s, p in account.positions.items()
                    if p.amount != 0
                },
                "open_orders": [
                    views.order(o, venue.specs[o.symbol]) for o in engine.open_orders(name, None)
                ],
                "open_algo_orders": [
                    views.algo(a, venue.specs[a.symbol]) for a in engine.algos.open(name, None)
                ],
                "user_streams": venue.hub.user_connections(name),
            }
        prices = {s: {"last": str(venue.feed.last(s)), "mark": str(venue.feed.mark(s))} for s in venue.specs}
        return _ok(
            {
                "time": venue.now(),
                "prices": prices,
                "accounts": accounts,
                "market_streams": venue.hub.market_connections(),
                "subscriptions": venue.hub.subscribed_streams(),
                "subscribers": venue.hub.subscriber_counts(),
            }
        )

    async def dump(self, request: web.Request) -> web.Response:
        return web.Response(body=self.venue(request).snapshot_bytes(), content_type="application/json")

    async def price(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, PriceRequest)
        symbol = _symbol(venue, body.symbol)
        if body.ticks is not None:
            venue.step_price(symbol, body.ticks)
        elif body.price is not None:
            venue.set_price(symbol, body.price, body.mark)
        elif body.mark is not None:
            venue.set_price(symbol, venue.feed.last(symbol), body.mark)
        else:
            raise AdminError(400, "give price, mark or ticks")
        return _ok(
            {"symbol": symbol, "last": str(venue.feed.last(symbol)), "mark": str(venue.feed.mark(symbol))}
        )

    async def price_mode(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, ModeRequest)
        if body.mode not in ("walk", "manual"):
            raise AdminError(400, "mode must be 'walk' or 'manual'")
        if body.mode == "walk" and venue.feed.mode != "walk":
            venue.feed.mode = "walk"
            for feed in venue.feed.symbols.values():  # continue the path from the current price
                feed.scale = float(feed.last) / feed.path.raw(venue.now())
        venue.feed.mode = body.mode
        return _ok({"mode": body.mode})

    async def depth(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, DepthRequest)
        symbol = _symbol(venue, body.symbol)
        if body.level_qty is None:
            venue.engine.level_qty.pop(symbol, None)
        elif body.level_qty <= 0:
            raise AdminError(400, "level_qty must be above 0 (or null for unlimited)")
        else:
            venue.engine.level_qty[symbol] = body.level_qty
        level = venue.engine.level_qty.get(symbol)
        return _ok({"symbol": symbol, "level_qty": None if level is None else str(level)})

    async def close_bar(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, SymbolRequest)
        symbols = [_symbol(venue, body.symbol)] if body.symbol else list(venue.specs)
        return _ok({"closed": [s for s in symbols if venue.feed.close_bar(s)]})

    async def fill(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, FillRequest)
        account = _account(venue, body.account)
        order = venue.engine.find_order(
            account.name, _symbol(venue, body.symbol), body.order_id, body.client_order_id
        )
        if order is None:
            raise AdminError(404, "no such order")
        venue.engine.admin_fill(order, body.qty, body.price)
        return _ok(views.order(order, venue.specs[order.symbol]))

    async def trigger(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, TriggerRequest)
        account = _account(venue, body.account)
        algo = venue.engine.algos.find(account.name, body.algo_id, body.client_algo_id)
        if algo is None or algo.status != "NEW":
            raise AdminError(404, "no untriggered algo order with that id")
        venue.engine.algos.trigger(algo, body.price)
        return _ok(views.algo(algo, venue.specs[algo.symbol]))

    async def position(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, PositionRequest)
        account = _account(venue, body.account)
        symbol = _symbol(venue, body.symbol)
        entry = body.entry_price if body.entry_price is not None else venue.feed.last(symbol)
        venue.engine.set_position(account, symbol, body.amount, entry, body.notify)
        return _ok({"symbol": symbol, "amount": str(body.amount), "entry_price": str(entry)})

    async def wallet(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, WalletRequest)
        venue.engine.set_wallet(_account(venue, body.account), body.amount, body.notify)
        return _ok({"wallet": str(body.amount)})

    async def funding(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, FundingRequest)
        symbol = _symbol(venue, body.symbol)
        rate = body.rate if body.rate is not None else venue.feed.symbols[symbol].funding_rate
        return _ok({"settled": venue.engine.apply_funding(symbol, rate)})

    async def order(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, OrderRequest)
        cmd = commands.parse_new_order(Params(body.params), venue.specs)
        order = venue.engine.place_order(_account(venue, body.account), cmd, source="admin")
        return _ok(views.order(order, venue.specs[order.symbol]))

    async def algo_order(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, OrderRequest)
        cmd = commands.parse_new_algo(Params({"algoType": "CONDITIONAL", **body.params}), venue.specs)
        algo = venue.engine.algos.place(_account(venue, body.account), cmd, source="admin")
        return _ok(views.algo(algo, venue.specs[algo.symbol]))

    async def cancel(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, CancelRequest)
        account = _account(venue, body.account)
        if body.algo_id is not None or body.client_algo_id is not None:
            algo = venue.engine.algos.cancel(account, body.algo_id, body.client_algo_id)
            return _ok(views.algo(algo, venue.specs[algo.symbol]))
        if body.symbol is None:
            raise AdminError(400, "give symbol with order_id/client_order_id, or algo_id/client_algo_id")
        order = venue.engine.cancel_order(
            account, _symbol(venue, body.symbol), body.order_id, body.client_order_id
        )
        return _ok(views.order(order, venue.specs[order.symbol]))

    async def backdate(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, BackdateRequest)
        account = _account(venue, body.account)
        if body.ms <= 0:
            raise AdminError(400, "ms must be positive")
        if body.algo_id is not None or body.client_algo_id is not None:
            algo = venue.engine.algos.find(account.name, body.algo_id, body.client_algo_id)
            if algo is None:
                raise AdminError(404, "no such algo order")
            venue.engine.algos.backdate(algo, body.ms)
            return _ok(views.algo(algo, venue.specs[algo.symbol]))
        if body.symbol is None:
            raise AdminError(400, "give symbol with order_id/client_order_id, or algo_id/client_algo_id")
        order = venue.engine.find_order(
            account.name, _symbol(venue, body.symbol), body.order_id, body.client_order_id
        )
        if order is None:
            raise AdminError(404, "no such order")
        venue.engine.backdate_order(order, body.ms)
        return _ok(views.order(order, venue.specs[order.symbol]))

    async def faults_list(self, request: web.Request) -> web.Response:
        return _ok([msgspec.to_builtins(r) for r in self.venue(request).faults.rules()])

    async def faults_add(self, request: web.Request) -> web.Response:
        rule = await _body(request, FaultRule)
        try:
            added = self.venue(request).faults.add(rule)
        except ValueError as exc:
            raise AdminError(400, str(exc)) from exc
        return _ok(msgspec.to_builtins(added))

    async def faults_clear(self, request: web.Request) -> web.Response:
        return _ok({"removed": self.venue(request).faults.clear()})

    async def faults_remove(self, request: web.Request) -> web.Response:
        rule_id = int(request.match_info["rule_id"])
        if not self.venue(request).faults.remove(rule_id):
            raise AdminError(404, f"no fault rule {rule_id}")
        return _ok({"removed": 1})

    async def ws_drop(self, request: web.Request) -> web.Response:
        body = await _body(request, WsRequest)
        return _ok({"dropped": self.venue(request).hub.drop(body.kind, body.account, abrupt=body.abrupt)})

    async def ws_freeze(self, request: web.Request) -> web.Response:
        body = await _body(request, WsRequest)
        return _ok({"affected": self.venue(request).hub.freeze(body.kind, body.account, body.frozen)})

    async def ws_refuse(self, request: web.Request) -> web.Response:
        body = await _body(request, WsRequest)
        self.venue(request).hub.refuse_remaining = body.count
        return _ok({"refusing": body.count})

    async def expire_listen_key(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, AccountRequest)
        key = venue.active_listen_key(_account(venue, body.account))
        if key is None:
            raise AdminError(404, "the account has no active listen key")
        return _ok({"closed_streams": venue.close_listen_key(key, expired=True)})

    async def snapshot(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, PathRequest)
        path = Path(body.path) if body.path else venue.config.state_file
        if path is None:
            raise AdminError(400, "give a path (no --state file configured)")
        return _ok({"path": str(path), "bytes": venue.snapshot(path)})

    async def restore(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, PathRequest)
        if not body.path:
            raise AdminError(400, "give the snapshot's path")
        try:
            venue.restore(Path(body.path))
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise AdminError(400, f"cannot restore {body.path}: {exc}") from exc
        return _ok({"restored": body.path})

    async def reset(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        body = await _body(request, ResetRequest)
        venue.reset(body.seed)
        return _ok({"seed": venue.seed})

    async def attempts(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        account = _account(venue, request.query.get("account"))
        records = venue.engine.state.attempts.get(account.name, {})
        wanted = request.query.get("client_order_id")
        chosen = {k: v for k, v in records.items() if wanted is None or k == wanted}
        return _ok({k: msgspec.to_builtins(v) for k, v in chosen.items()})

    async def orders(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        account = _account(venue, request.query.get("account"))
        symbol = _symbol(venue, request.query["symbol"]) if "symbol" in request.query else None
        wanted = request.query.get("client_order_id")
        symbols = [symbol] if symbol else list(venue.specs)
        rows = [
            views.order(o, venue.specs[s])
            for s in symbols
            for o in venue.engine.orders_of(account.name, s)
            if wanted is None or o.client_order_id == wanted
        ]
        algos = [
            views.algo(a, venue.specs[s])
            for s in symbols
            for a in venue.engine.algos.of(account.name, s)
            if wanted is None or a.client_algo_id == wanted
        ]
        return _ok({"orders": rows, "algo_orders": algos})

    async def trades(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        account = _account(venue, request.query.get("account"))
        symbols = (
            [_symbol(venue, request.query["symbol"])] if "symbol" in request.query else list(venue.specs)
        )
        return _ok(
            [views.trade(t, venue.specs[s]) for s in symbols for t in venue.engine.trades_of(account.name, s)]
        )

    async def requests(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        since = int(request.query.get("since", "0"))
        entries = venue.requests.since(since, request.query.get("path"))
        return _ok([msgspec.to_builtins(e) for e in entries])

    async def requests_clear(self, request: web.Request) -> web.Response:
        self.venue(request).requests.clear()
        return _ok({"cleared": True})

    async def ratelimit(self, request: web.Request) -> web.Response:
        venue = self.venue(request)
        if request.method == "POST":
            body = await _body(request, RateLimitRequest)
            changes = {f: getattr(body, f) for f in RATE_LIMIT_FIELDS if getattr(body, f) is not None}
            candidate = dataclasses.replace(venue.ratelimiter.config, **changes)
            try:
                candidate.check()
            except ValueError as exc:
                return _ok({"error": str(exc)}, 400)
            for name, value in changes.items():  # in place: exchangeInfo reads the same object
                setattr(venue.ratelimiter.config, name, value)
            if body.reset or "weight_window_s" in changes:
                venue.ratelimiter.reset()
        config = venue.ratelimiter.config
        return _ok(
            {
                **{name: getattr(config, name) for name in RATE_LIMIT_FIELDS},
                "weight_header": venue.ratelimiter.weight_header,
                "usage": venue.ratelimiter.snapshot(),
            }
        )


def register(app: web.Application, venue_key: web.AppKey[Venue]) -> None:
    admin = Admin(venue_key)
    routes = [
        ("GET", "/health", admin.health),
        ("GET", "/state", admin.state),
        ("GET", "/dump", admin.dump),
        ("POST", "/price", admin.price),
        ("POST", "/price_mode", admin.price_mode),
        ("POST", "/depth", admin.depth),
        ("POST", "/close_bar", admin.close_bar),
        ("POST", "/fill", admin.fill),
        ("POST", "/trigger", admin.trigger),
        ("POST", "/position", admin.position),
        ("POST", "/wallet", admin.wallet),
        ("POST", "/funding", admin.funding),
        ("POST", "/order", admin.order),
        ("POST", "/algo_order", admin.algo_order),
        ("POST", "/cancel", admin.cancel),
        ("POST", "/backdate", admin.backdate),
        ("GET", "/faults", admin.faults_list),
        ("POST", "/faults", admin.faults_add),
        ("DELETE", "/faults", admin.faults_clear),
        ("DELETE", "/faults/{rule_id:\\d+}", admin.faults_remove),
        ("POST", "/ws/drop", admin.ws_drop),
        ("POST", "/ws/freeze", admin.ws_freeze),
        ("POST", "/ws/refuse", admin.ws_refuse),
        ("POST", "/listen_key/expire", admin.expire_listen_key),
        ("POST", "/snapshot", admin.snapshot),
        ("POST", "/restore", admin.restore),
        ("POST", "/reset", admin.reset),
        ("GET", "/attempts", admin.attempts),
        ("GET", "/orders", admin.orders),
        ("GET", "/trades", admin.trades),
        ("GET", "/requests", admin.requests),
        ("DELETE", "/requests", admin.requests_clear),
        ("GET", "/ratelimit", admin.ratelimit),
        ("POST", "/ratelimit", admin.ratelimit),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, PREFIX + path, handler)
    app.middlewares.append(_admin_guard(venue_key))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _admin_guard(venue_key: web.AppKey[Venue]) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PREFIX):
            return await handler(request)
        venue = request.app[venue_key]
        if not venue.config.admin_allow_remote and request.remote not in LOOPBACK:
            return _ok({"error": "the admin API answers loopback clients only"}, 403)
        try:
            return await handler(request)
        except AdminError as exc:
            return _ok({"error": str(exc)}, exc.status)
        except VenueError as exc:
            return _ok({"error": exc.msg, "code": exc.code}, exc.status)

    return guard
