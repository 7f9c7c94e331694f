"""Trading endpoints: orders, conditional (algo) orders, open/all orders, user trades, batch orders."""

from __future__ import annotations

import json

from emulator import commands, errors, history, views
from emulator.context import RequestContext
from emulator.errors import VenueError
from emulator.params import Params
from emulator.state import AlgoOrder, Order

THREE_DAYS_MS = 3 * history.DAY_MS
BATCH_MAX = 5
CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}


def _visible(order: Order, now: int) -> bool:
    """The venue forgets canceled/expired orders without fills after 3 days, and every order after 90."""
    if now - order.time > history.NINETY_DAYS_MS:
        return False
    return not (
        order.status in ("CANCELED", "EXPIRED")
        and order.executed_qty == 0
        and now - order.time > THREE_DAYS_MS
    )


# ---------------------------------------------------------------------- orders


def new_order(ctx: RequestContext) -> dict[str, object]:
    cmd = commands.parse_new_order(ctx.params, ctx.venue.specs)
    order = ctx.venue.engine.place_order(ctx.account, cmd)
    ack = (ctx.params.text("newOrderRespType") or "ACK") == "ACK"
    return views.order(order, ctx.venue.specs[order.symbol], ack=ack)


def query_order(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    order = ctx.venue.engine.find_order(
        ctx.account.name, spec.symbol, ctx.params.integer("orderId"), ctx.params.text("origClientOrderId")
    )
    if order is None or not _visible(order, ctx.now):
        raise errors.order_does_not_exist()
    return views.order(order, spec)


def query_open_order(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    order = ctx.venue.engine.find_order(
        ctx.account.name, spec.symbol, ctx.params.integer("orderId"), ctx.params.text("origClientOrderId")
    )
    if order is None or not order.is_open:
        raise VenueError(-2013, "Order does not exist.")
    return views.order(order, spec)


def cancel_order(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    order = ctx.venue.engine.cancel_order(
        ctx.account, spec.symbol, ctx.params.integer("orderId"), ctx.params.text("origClientOrderId")
    )
    return views.order(order, spec)


def modify_order(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    params = ctx.params
    order = ctx.venue.engine.find_order(
        ctx.account.name, spec.symbol, params.integer("orderId"), params.text("origClientOrderId")
    )
    if order is None:
        raise errors.order_does_not_exist()
    side = params.choice("side", commands.SIDES, required=True, invalid=errors.invalid_side)
    quantity = params.decimal("quantity", required=True)
    price = params.decimal("price", required=True)
    assert side is not None and quantity is not None and price is not None
    commands.check_quantity(quantity, spec, market=False)
    commands.check_price(price, spec)
    return views.order(ctx.venue.engine.modify_order(order, side, quantity, price), spec)


def cancel_all_orders(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    ctx.venue.engine.cancel_all_orders(ctx.account, spec.symbol)
    return CANCEL_ALL_DONE


def open_orders(ctx: RequestContext) -> object:
    spec = ctx.optional_symbol()
    specs = ctx.venue.specs
    orders = ctx.venue.engine.open_orders(ctx.account.name, spec.symbol if spec else None)
    return [views.order(o, specs[o.symbol]) for o in orders]


def all_orders(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    params = ctx.params
    span = history.window(
        params.integer("startTime"),
        params.integer("endTime"),
        ctx.now,
        history.SEVEN_DAYS_MS,
        history.SEVEN_DAYS_MS,
    )
    rows = [o for o in ctx.venue.engine.orders_of(ctx.account.name, spec.symbol) if _visible(o, ctx.now)]
    chosen = history.select(
        rows,
        time_of=lambda o: o.time,
        id_of=lambda o: o.order_id,
        span=span,
        from_id=params.integer("orderId"),
        limit=params.limit(default=500, maximum=1000),
        oldest_first=params.has("startTime"),
    )
    return [views.order(o, spec) for o in chosen]


def user_trades(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    params = ctx.params
    from_id = params.integer("fromId")
    if from_id is not None and (params.has("startTime") or params.has("endTime")):
        raise errors.combination_invalid()
    span = history.window(
        params.integer("startTime"),
        params.integer("endTime"),
        ctx.now,
        history.SEVEN_DAYS_MS,
        history.SEVEN_DAYS_MS,
    )
    rows = ctx.venue.engine.trades_of(ctx.account.name, spec.symbol)
    order_id = params.integer("orderId")
    if order_id is not None:
        rows = [t for t in rows if t.order_id == order_id]
    chosen = history.select(
        rows,
        time_of=lambda t: t.time,
        id_of=lambda t: t.trade_id,
        span=None if order_id else span,
        from_id=from_id,
        limit=params.limit(default=500, maximum=1000),
        oldest_first=params.has("startTime"),
    )
    return [views.trade(t, spec) for t in chosen]


# ---------------------------------------------------------------------- algo orders


def new_algo_order(ctx: RequestContext) -> dict[str, object]:
    cmd = commands.parse_new_algo(ctx.params, ctx.venue.specs)
    algo = ctx.venue.engine.algos.place(ctx.account, cmd)
    return views.algo(algo, ctx.venue.specs[algo.symbol])


def _find_algo(ctx: RequestContext) -> AlgoOrder | None:
    algo_id, client_id = ctx.params.integer("algoId"), ctx.params.text("clientAlgoId")
    if algo_id is None and client_id is None:
        raise errors.mandatory_missing("algoId")
    return ctx.venue.engine.algos.find(ctx.account.name, algo_id, client_id)


def query_algo_order(ctx: RequestContext) -> object:
    algo = _find_algo(ctx)
    if algo is None:
        raise errors.order_does_not_exist()
    return views.algo(algo, ctx.venue.specs[algo.symbol])


def cancel_algo_order(ctx: RequestContext) -> object:
    algo_id, client_id = ctx.params.integer("algoId"), ctx.params.text("clientAlgoId")
    if algo_id is None and client_id is None:
        raise errors.mandatory_missing("algoId")
    algo = ctx.venue.engine.algos.cancel(ctx.account, algo_id, client_id)
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}


def open_algo_orders(ctx: RequestContext) -> object:
    spec = ctx.optional_symbol()
    algo_id = ctx.params.integer("algoId")
    algos = ctx.venue.engine.algos.open(ctx.account.name, spec.symbol if spec else None)
    specs = ctx.venue.specs
    return [views.algo(a, specs[a.symbol]) for a in algos if algo_id is None or a.algo_id == algo_id]


def all_algo_orders(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    params = ctx.params
    span = history.window(
        params.integer("startTime"),
        params.integer("endTime"),
        ctx.now,
        history.SEVEN_DAYS_MS,
        history.SEVEN_DAYS_MS,
    )
    limit = params.limit(default=500, maximum=1000)
    page = params.integer("page") or 1
    rows = history.select(
        ctx.venue.engine.algos.of(ctx.account.name, spec.symbol),
        time_of=lambda a: a.create_time,
        id_of=lambda a: a.algo_id,
        span=span,
        from_id=params.integer("algoId"),
        limit=limit * max(page, 1),
        oldest_first=params.has("startTime") or params.has("algoId"),
    )
    return [views.algo(a, spec) for a in rows[(max(page, 1) - 1) * limit :]]


def cancel_all_algo_orders(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    ctx.venue.engine.algos.cancel_all(ctx.account, spec.symbol)
    return CANCEL_ALL_DONE


# ---------------------------------------------------------------------- batches


def _batch_items(ctx: RequestContext) -> list[dict[str, str]]:
    raw = ctx.params.text("batchOrders", required=True)
    assert raw is not None
    try:
        items = json.loads(raw)
    except ValueError:
        raise errors.invalid_value("batchOrders") from None
    if not isinstance(items, list) or not items or len(items) > BATCH_MAX:
        raise errors.invalid_value("batchOrders")
    if not all(isinstance(item, dict) for item in items):
        raise errors.invalid_value("batchOrders")
    return [
        {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in item.items()} for item in items
    ]


def batch_orders(ctx: RequestContext) -> object:
    """Up to 5 orders; each answered by its order or by its own error, in request order."""
    out: list[object] = []
    for item in _batch_items(ctx):
        sub = RequestContext(ctx.venue, Params(item), ctx.account_or_none, ctx.now)
        try:
            body = new_order(sub)
        except VenueError as exc:
            count_attempt(sub, "/fapi/v1/order", None, exc.code)
            out.append(exc.body())
        else:
            count_attempt(sub, "/fapi/v1/order", body, None)
            out.append(body)
    return out


ATTEMPT_FIELDS = {
    "/fapi/v1/order": ("newClientOrderId", "clientOrderId", "orderId"),
    "/fapi/v1/algoOrder": ("clientAlgoId", "clientAlgoId", "algoId"),
}


def count_attempt(ctx: RequestContext, path: str, body: object, error_code: int | None) -> None:
    """Count one placement attempt under its client order id (sent, or assigned by the venue)."""
    if ctx.account_or_none is None or path not in ATTEMPT_FIELDS:
        return
    param, id_field, order_field = ATTEMPT_FIELDS[path]
    if isinstance(body, dict):
        ctx.venue.engine.record_attempt(ctx.account.name, str(body[id_field]), int(body[order_field]), None)
        return
    client_id = ctx.params.text(param)
    if client_id is not None:
        ctx.venue.engine.record_attempt(ctx.account.name, client_id, None, error_code)


def _id_list(raw: str | None, name: str) -> list[str]:
    if raw is None:
        return []
    try:
        values = json.loads(raw)
    except ValueError:
        raise errors.invalid_value(name) from None
    if not isinstance(values, list) or len(values) > 10:
        raise errors.invalid_value(name)
    return [str(v) for v in values]


def cancel_batch(ctx: RequestContext) -> object:
    spec = ctx.symbol()
    ids = _id_list(ctx.params.text("orderIdList"), "orderIdList")
    client_ids = _id_list(ctx.params.text("origClientOrderIdList"), "origClientOrderIdList")
    if not ids and not client_ids:
        raise errors.mandatory_missing("orderIdList")
    out: list[object] = []
    targets: list[tuple[int | None, str | None]] = [(int(i), None) for i in ids if i.isdigit()]
    targets += [(None, c) for c in client_ids]
    for order_id, client_id in targets:
        try:
            order = ctx.venue.engine.cancel_order(ctx.account, spec.symbol, order_id, client_id)
        except VenueError as exc:
            out.append(exc.body())
        else:
            out.append(views.order(order, spec))
    return out
