"""Order requests parsed and checked against the symbol's filters (state-independent checks only).

`parse_new_order` / `parse_new_algo` turn request parameters into commands or raise the venue's error for
malformed input; whatever depends on the account (duplicates, reduce-only, margin) is the engine's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from emulator import errors
from emulator.matching import CONDITIONAL_TYPES
from emulator.params import Params
from emulator.symbols import SymbolSpec

SIDES = frozenset({"BUY", "SELL"})
ORDER_TYPES = frozenset({"LIMIT", "MARKET"}) | CONDITIONAL_TYPES
ALGO_TYPES = CONDITIONAL_TYPES
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"})
WORKING_TYPES = frozenset({"CONTRACT_PRICE", "MARK_PRICE"})
RESPONSE_TYPES = frozenset({"ACK", "RESULT"})
POSITION_SIDES = frozenset({"BOTH", "LONG", "SHORT"})


@dataclass(frozen=True, slots=True)
class NewOrder:
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    client_order_id: str | None
    good_till_date: int
    response_type: str
    price_match: str = "NONE"


@dataclass(frozen=True, slots=True)
class NewAlgo:
    symbol: str
    side: str
    order_type: str
    quantity: Decimal | None
    price: Decimal | None
    trigger_price: Decimal | None
    time_in_force: str
    working_type: str
    reduce_only: bool
    close_position: bool
    price_protect: bool
    client_algo_id: str | None
    good_till_date: int
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None


def symbol_of(params: Params, specs: dict[str, SymbolSpec]) -> SymbolSpec:
    name = params.required_text("symbol")
    spec = specs.get(name.upper()) if name.isupper() else None
    if spec is None:
        raise errors.invalid_symbol()
    return spec


def check_quantity(qty: Decimal, spec: SymbolSpec, *, market: bool) -> None:
    exponent = qty.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > spec.qty_decimals:
        raise errors.precision_over_maximum()
    if qty <= 0:
        raise errors.qty_not_positive()
    if qty % spec.step_size != 0:
        raise errors.qty_not_step_multiple()
    if qty < spec.min_qty:
        raise errors.qty_below_min()
    if qty > (spec.market_max_qty if market else spec.max_qty):
        raise errors.qty_above_max()


def check_price(price: Decimal, spec: SymbolSpec) -> None:
    exponent = price.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > spec.price_decimals:
        raise errors.precision_over_maximum()
    if price % spec.tick_size != 0:
        raise errors.price_not_tick_multiple()
    if price < spec.min_price:
        raise errors.price_below_min()
    if price > spec.max_price:
        raise errors.limit_price_too_high(str(spec.max_price))


def _position_side(params: Params) -> None:
    side = params.choice("positionSide", POSITION_SIDES, default="BOTH")
    if side != "BOTH":
        raise errors.position_side_mismatch()


def _good_till_date(params: Params, tif: str) -> int:
    gtd = params.integer("goodTillDate")
    if tif == "GTD" and gtd is None:
        raise errors.mandatory_missing("goodTillDate")
    return gtd or 0


def parse_new_order(params: Params, specs: dict[str, SymbolSpec]) -> NewOrder:
    spec = symbol_of(params, specs)
    side = params.choice("side", SIDES, required=True, invalid=errors.invalid_side)
    order_type = params.choice("type", ORDER_TYPES, required=True, invalid=errors.invalid_order_type)
    assert side is not None and order_type is not None
    if order_type in CONDITIONAL_TYPES:
        raise errors.use_algo_endpoint()
    _position_side(params)
    client_id = params.client_id("newClientOrderId")
    quantity = params.decimal("quantity", required=True)
    assert quantity is not None
    check_quantity(quantity, spec, market=order_type == "MARKET")
    price: Decimal | None = None
    if order_type == "LIMIT":
        tif = params.choice("timeInForce", TIME_IN_FORCE, required=True, invalid=errors.invalid_tif)
        price = params.decimal("price", required=True)
        assert price is not None
        check_price(price, spec)
    else:
        tif = params.choice("timeInForce", TIME_IN_FORCE, default="GTC", invalid=errors.invalid_tif)
        if params.has("price"):
            raise errors.param_not_required("price")
    assert tif is not None
    return NewOrder(
        symbol=spec.symbol,
        side=side,
        type=order_type,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        reduce_only=params.boolean("reduceOnly"),
        client_order_id=client_id,
        good_till_date=_good_till_date(params, tif),
        response_type=params.choice("newOrderRespType", RESPONSE_TYPES, default="ACK") or "ACK",
    )


def _algo_prices(params: Params, spec: SymbolSpec, order_type: str) -> tuple[Decimal | None, Decimal | None]:
    price: Decimal | None = None
    trigger: Decimal | None = None
    if order_type != "TRAILING_STOP_MARKET":
        trigger = params.decimal("triggerPrice", required=True)
        assert trigger is not None
        check_price(trigger, spec)
    if order_type in ("STOP", "TAKE_PROFIT"):
        price = params.decimal("price", required=True)
        assert price is not None
        check_price(price, spec)
    elif params.has("price"):
        raise errors.param_not_required("price")
    return price, trigger


def _algo_quantity(
    params: Params, spec: SymbolSpec, close_position: bool, reduce_only: bool
) -> Decimal | None:
    if close_position:
        if params.has("quantity"):
            raise errors.param_not_required("quantity")
        if reduce_only:
            raise errors.param_not_required("reduceOnly")
        return None
    quantity = params.decimal("quantity", required=True)
    assert quantity is not None
    check_quantity(quantity, spec, market=False)
    return quantity


def _trailing(params: Params, spec: SymbolSpec) -> tuple[Decimal | None, Decimal | None]:
    rate = params.decimal("callbackRate", required=True)
    assert rate is not None
    if not Decimal("0.1") <= rate <= Decimal(10):
        raise errors.invalid_value("callbackRate")
    activate = params.decimal("activatePrice")
    if activate is not None:
        check_price(activate, spec)
    return activate, rate


def parse_new_algo(params: Params, specs: dict[str, SymbolSpec]) -> NewAlgo:
    spec = symbol_of(params, specs)
    algo_type = params.required_text("algoType")
    if algo_type != "CONDITIONAL":
        raise errors.invalid_value("algoType")
    side = params.choice("side", SIDES, required=True, invalid=errors.invalid_side)
    order_type = params.choice("type", ALGO_TYPES, required=True, invalid=errors.invalid_order_type)
    assert side is not None and order_type is not None
    _position_side(params)
    client_id = params.client_id("clientAlgoId")
    close_position = params.boolean("closePosition")
    if close_position and order_type not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
        raise errors.invalid_value("closePosition")
    reduce_only = params.boolean("reduceOnly")
    quantity = _algo_quantity(params, spec, close_position, reduce_only)
    price, trigger = _algo_prices(params, spec, order_type)
    activate, rate = _trailing(params, spec) if order_type == "TRAILING_STOP_MARKET" else (None, None)
    tif = params.choice("timeInForce", TIME_IN_FORCE, default="GTC", invalid=errors.invalid_tif)
    assert tif is not None
    return NewAlgo(
        symbol=spec.symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        trigger_price=trigger,
        time_in_force=tif,
        working_type=params.choice("workingType", WORKING_TYPES, default="CONTRACT_PRICE")
        or "CONTRACT_PRICE",
        reduce_only=reduce_only,
        close_position=close_position,
        price_protect=params.boolean("priceProtect"),
        client_algo_id=client_id,
        good_till_date=_good_till_date(params, tif),
        activate_price=activate,
        callback_rate=rate,
    )
