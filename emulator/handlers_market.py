"""Public market-data endpoints: ping, time, exchangeInfo, klines, tickers, premium index, depth."""

from __future__ import annotations

import functools

from emulator import klines
from emulator.context import RequestContext
from emulator.numbers import fixed, plain
from emulator.ratelimit import interval_of
from emulator.symbols import SymbolSpec

ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX", "GTD"]
DELIVERY_DATE_PERPETUAL = 4133404800000


def ping(ctx: RequestContext) -> object:
    return {}


def server_time(ctx: RequestContext) -> object:
    return {"serverTime": ctx.now}


@functools.cache
def symbol_info(spec: SymbolSpec) -> dict[str, object]:
    qty_min = fixed(spec.min_qty, spec.qty_decimals)
    step = fixed(spec.step_size, spec.qty_decimals)
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": DELIVERY_DATE_PERPETUAL,
        "onboardDate": spec.onboard_date,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": spec.quote,
        "marginAsset": spec.quote,
        "pricePrecision": spec.price_decimals,
        "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": list(spec.underlying_sub_type),
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fixed(spec.min_price, spec.price_decimals),
                "maxPrice": plain(spec.max_price),
                "tickSize": fixed(spec.tick_size, spec.price_decimals),
            },
            {"filterType": "LOT_SIZE", "minQty": qty_min, "maxQty": plain(spec.max_qty), "stepSize": step},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": qty_min,
                "maxQty": plain(spec.market_max_qty),
                "stepSize": step,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": spec.max_open_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": spec.max_algo_orders},
            {"filterType": "MIN_NOTIONAL", "notional": plain(spec.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": str(spec.multiplier_up),
                "multiplierDown": str(spec.multiplier_down),
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": TIME_IN_FORCE,
        "permissionSets": ["GRID", "COPY"],
    }


def exchange_info(ctx: RequestContext) -> object:
    limits = ctx.venue.config.rate_limit
    weight_interval, weight_interval_num = interval_of(limits.weight_window_s)
    specs = ctx.venue.specs.values()
    assets = sorted({"USDT"} | {spec.base for spec in specs if spec.base in ("BTC", "BNB", "ETH")})
    return {
        "timezone": "UTC",
        "serverTime": ctx.now,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": weight_interval,
                "intervalNum": weight_interval_num,
                "limit": limits.weight_per_minute,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits.orders_per_minute,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": limits.orders_per_10s,
            },
        ],
        "exchangeFilters": [],
        "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets],
        "symbols": [symbol_info(spec) for spec in specs],
    }


def klines_endpoint(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    step = klines.interval_ms(ctx.params.text("interval", required=True))
    limit = ctx.params.limit(default=klines.DEFAULT_LIMIT, maximum=klines.MAX_LIMIT)
    start = ctx.params.integer("startTime")
    end = ctx.params.integer("endTime")
    return ctx.venue.feed.kline_rows(spec.symbol, step, start, end, limit)


def _for_symbols(ctx: RequestContext) -> list[SymbolSpec]:
    spec = ctx.optional_symbol()
    return [spec] if spec is not None else list(ctx.venue.specs.values())


def ticker_price(ctx: RequestContext) -> object:
    feed = ctx.venue.feed
    rows = [
        {"symbol": s.symbol, "price": fixed(feed.last(s.symbol), s.price_decimals), "time": ctx.now}
        for s in _for_symbols(ctx)
    ]
    return rows[0] if ctx.params.has("symbol") else rows


def book_ticker(ctx: RequestContext) -> object:
    feed = ctx.venue.feed
    rows = []
    for s in _for_symbols(ctx):
        price = fixed(feed.last(s.symbol), s.price_decimals)
        size = fixed(s.min_qty * 1000, s.qty_decimals)
        rows.append(
            {
                "symbol": s.symbol,
                "bidPrice": price,
                "bidQty": size,
                "askPrice": price,
                "askQty": size,
                "time": ctx.now,
                "lastUpdateId": feed.symbols[s.symbol].book_update_id,
            }
        )
    return rows[0] if ctx.params.has("symbol") else rows


def premium_index(ctx: RequestContext) -> object:
    feed = ctx.venue.feed
    rows = []
    for s in _for_symbols(ctx):
        mark = fixed(feed.mark(s.symbol), 8)
        rows.append(
            {
                "symbol": s.symbol,
                "markPrice": mark,
                "indexPrice": mark,
                "estimatedSettlePrice": mark,
                "lastFundingRate": fixed(feed.symbols[s.symbol].funding_rate, 8),
                "interestRate": "0.00010000",
                "nextFundingTime": feed.next_funding_time(ctx.now),
                "time": ctx.now,
            }
        )
    return rows[0] if ctx.params.has("symbol") else rows


def depth(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    levels = min(ctx.params.limit(default=20, maximum=1000), 20)
    feed = ctx.venue.feed
    last = feed.last(spec.symbol)
    size = fixed(spec.min_qty * 1000, spec.qty_decimals)
    bids = [[fixed(last - spec.tick_size * i, spec.price_decimals), size] for i in range(levels)]
    asks = [[fixed(last + spec.tick_size * i, spec.price_decimals), size] for i in range(levels)]
    return {
        "lastUpdateId": feed.symbols[spec.symbol].book_update_id,
        "E": ctx.now,
        "T": ctx.now,
        "bids": bids,
        "asks": asks,
    }
