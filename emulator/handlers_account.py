"""Account endpoints: account/balance (v2, v3), positionRisk (v2, v3), symbol config, position mode, leverage,
margin type, commission rate, income history and the user-stream listen key."""

from __future__ import annotations

from emulator import errors, history, views
from emulator.context import RequestContext
from emulator.numbers import plain
from emulator.risk import position_risk

INCOME_TYPES = frozenset(
    {
        "TRANSFER",
        "WELCOME_BONUS",
        "REALIZED_PNL",
        "FUNDING_FEE",
        "COMMISSION",
        "INSURANCE_CLEAR",
        "REFERRAL_KICKBACK",
        "COMMISSION_REBATE",
        "API_REBATE",
        "CONTEST_REWARD",
        "CROSS_COLLATERAL_TRANSFER",
        "OPTIONS_PREMIUM_FEE",
        "OPTIONS_SETTLE_PROFIT",
        "INTERNAL_TRANSFER",
        "AUTO_EXCHANGE",
        "DELIVERED_SETTELMENT",
        "COIN_SWAP_DEPOSIT",
        "COIN_SWAP_WITHDRAW",
        "POSITION_LIMIT_INCREASE_FEE",
        "STRATEGY_UMFUTURES_TRANSFER",
        "FEE_RETURN",
        "BFUSD_REWARD",
    }
)


def account_v2(ctx: RequestContext) -> object:
    engine = ctx.venue.engine
    risk = engine.risk(ctx.account, ctx.venue.specs)  # v2 lists every symbol
    return views.account_v2(ctx.account, risk, ctx.venue.specs)


def account_v3(ctx: RequestContext) -> object:
    engine = ctx.venue.engine
    risk = engine.risk(ctx.account)
    return views.account_v3(ctx.account, risk, ctx.venue.specs)


def balance_v2(ctx: RequestContext) -> object:
    return views.balances(ctx.account, ctx.venue.engine.risk(ctx.account))


def position_risk_v2(ctx: RequestContext) -> object:
    spec = ctx.optional_symbol()
    venue, account = ctx.venue, ctx.account
    wallet = venue.engine.risk(account).wallet
    specs = [spec] if spec else list(venue.specs.values())
    return [
        views.position_v2(
            position_risk(
                account, s, venue.feed.mark(s.symbol), venue.engine.open_orders_of(account.name, s.symbol)
            ),
            s,
            account,
            wallet,
        )
        for s in specs
    ]


def position_risk_v3(ctx: RequestContext) -> object:
    """v3 lists only symbols with a position or open orders."""
    spec = ctx.optional_symbol()
    venue, account = ctx.venue, ctx.account
    active = venue.engine.active_symbols(account)
    symbols = active if spec is None else [s for s in active if s == spec.symbol]
    risk = venue.engine.risk(account, symbols)
    return [
        views.position_v3(pos, venue.specs[symbol], account, risk.wallet)
        for symbol, pos in risk.positions.items()
    ]


def symbol_config(ctx: RequestContext) -> object:
    spec = ctx.optional_symbol()
    venue, account = ctx.venue, ctx.account
    specs = [spec] if spec else list(venue.specs.values())
    out = []
    for s in specs:
        leverage = account.leverage_for(s.symbol)
        cap = max(
            (b.notional_cap for b in s.brackets if b.initial_leverage >= leverage),
            default=s.brackets[0].notional_cap,
        )
        out.append(
            {
                "symbol": s.symbol,
                "marginType": account.margin_type.get(s.symbol, "CROSSED"),
                "isAutoAddMargin": False,
                "leverage": leverage,
                "maxNotionalValue": plain(cap),
            }
        )
    return out


def position_mode(ctx: RequestContext) -> object:
    return {"dualSidePosition": False}


def change_position_mode(ctx: RequestContext) -> object:
    dual = ctx.params.boolean("dualSidePosition", default=False)
    if not ctx.params.has("dualSidePosition"):
        raise errors.mandatory_missing("dualSidePosition")
    if dual:
        # Hedge mode is not emulated; the venue would accept it, we say so instead of pretending.
        raise errors.invalid_value("dualSidePosition")
    raise errors.no_need_to_change_position_side()


def leverage_bracket(ctx: RequestContext) -> object:
    spec = ctx.optional_symbol()
    specs = [spec] if spec else list(ctx.venue.specs.values())
    rows = [
        {
            "symbol": s.symbol,
            "notionalCoef": 1.0,
            "brackets": [
                {
                    "bracket": b.bracket,
                    "initialLeverage": b.initial_leverage,
                    "notionalCap": int(b.notional_cap),
                    "notionalFloor": int(b.notional_floor),
                    "maintMarginRatio": float(b.maint_margin_ratio),
                    "cum": float(b.cum),
                }
                for b in s.brackets
            ],
        }
        for s in specs
    ]
    return rows[0] if spec is not None else rows


def change_leverage(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    leverage = ctx.params.integer("leverage", required=True)
    assert leverage is not None
    ctx.venue.engine.set_leverage(ctx.account, spec.symbol, leverage)
    cap = max(
        (b.notional_cap for b in spec.brackets if b.initial_leverage >= leverage),
        default=spec.brackets[0].notional_cap,
    )
    return {"leverage": leverage, "maxNotionalValue": plain(cap), "symbol": spec.symbol}


def change_margin_type(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    margin_type = ctx.params.choice("marginType", frozenset({"ISOLATED", "CROSSED"}), required=True)
    assert margin_type is not None
    ctx.venue.engine.set_margin_type(ctx.account, spec.symbol, margin_type)
    return {"code": 200, "msg": "success"}


def commission_rate(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    return {
        "symbol": spec.symbol,
        "makerCommissionRate": str(ctx.account.maker_rate),
        "takerCommissionRate": str(ctx.account.taker_rate),
    }


def multi_assets_margin(ctx: RequestContext) -> object:
    return {"multiAssetsMargin": False}


def income(ctx: RequestContext) -> object:
    params = ctx.params
    symbol = ctx.optional_symbol()
    kind = params.choice("incomeType", INCOME_TYPES)
    span = history.window(
        params.integer("startTime"),
        params.integer("endTime"),
        ctx.now,
        history.NINETY_DAYS_MS,
        history.SEVEN_DAYS_MS,
    )
    limit = params.limit(default=100, maximum=1000)
    page = params.integer("page") or 1
    rows = [
        r
        for r in ctx.venue.engine.income_of(ctx.account.name)
        if (symbol is None or r.symbol == symbol.symbol)
        and (kind is None or r.income_type == kind)
        and span.start <= r.time <= span.end
    ]
    start = (max(page, 1) - 1) * limit
    return [views.income(r) for r in rows[start : start + limit]]


def create_listen_key(ctx: RequestContext) -> object:
    return {"listenKey": ctx.venue.create_listen_key(ctx.account)}


def keepalive_listen_key(ctx: RequestContext) -> object:
    key = ctx.venue.active_listen_key(ctx.account)
    if key is None:
        raise errors.invalid_listen_key()
    key.keepalive = ctx.now
    return {"listenKey": key.key}


def close_listen_key(ctx: RequestContext) -> object:
    key = ctx.venue.active_listen_key(ctx.account)
    if key is not None:
        ctx.venue.close_listen_key(key, expired=False)
    return {}
