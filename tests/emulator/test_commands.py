"""Request validation: each malformed order is answered with the venue's code, before touching state."""

from __future__ import annotations

import pytest

from emulator import commands
from emulator.errors import VenueError
from emulator.params import Params
from emulator.symbols import KNOWN_SYMBOLS

SPECS = {s: KNOWN_SYMBOLS[s] for s in ("BTCUSDT", "DOGEUSDT")}
MARKET = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
LIMIT = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.010",
    "price": "60000.0",
    "timeInForce": "GTC",
}
STOP = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "quantity": "0.010",
    "triggerPrice": "55000.0",
    "reduceOnly": "True",
}


def _order_error(params: dict[str, str]) -> int:
    with pytest.raises(VenueError) as info:
        commands.parse_new_order(Params(params), SPECS)
    assert info.value.status == 400
    return info.value.code


def _algo_error(params: dict[str, str]) -> int:
    with pytest.raises(VenueError) as info:
        commands.parse_new_algo(Params(params), SPECS)
    assert info.value.status == 400
    return info.value.code


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"symbol": ""}, -1102),
        ({"symbol": "FOOUSDT"}, -1121),
        ({"symbol": "btcusdt"}, -1121),
        ({"side": "UP"}, -1117),
        ({"type": "ICEBERG"}, -1116),
        ({"type": "STOP_MARKET", "stopPrice": "50000"}, -4120),
        ({"type": "TAKE_PROFIT_MARKET", "stopPrice": "50000"}, -4120),
        ({"quantity": ""}, -1102),
        ({"quantity": "1e-3"}, -1100),
        ({"quantity": "-1"}, -1100),
        ({"quantity": "0.0001"}, -1111),
        ({"quantity": "0"}, -4003),
        ({"quantity": "5000"}, -4005),  # above the market lot size
        ({"positionSide": "LONG"}, -4061),
        ({"newClientOrderId": "has space"}, -1100),
        ({"newClientOrderId": "x" * 37}, -1100),
        ({"reduceOnly": "maybe"}, -1130),
        ({"price": "60000"}, -1106),  # a market order takes no price
    ],
)
def test_market_order_errors(change: dict[str, str], code: int) -> None:
    assert _order_error({**MARKET, **change}) == code


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": ""}, -1102),
        ({"timeInForce": ""}, -1102),
        ({"timeInForce": "DAY"}, -1115),
        ({"price": "60000.123"}, -1111),  # more decimals than the price precision
        ({"price": "60000.15"}, -4014),  # within precision, not on the 0.10 tick
        ({"price": "abc"}, -1100),
        ({"price": "0.5"}, -4013),
        ({"timeInForce": "GTD"}, -1102),  # needs goodTillDate
    ],
)
def test_limit_order_errors(change: dict[str, str], code: int) -> None:
    assert _order_error({**LIMIT, **change}) == code


def test_tick_multiple_is_checked_apart_from_precision() -> None:
    doge = {"symbol": "DOGEUSDT", "side": "BUY", "type": "LIMIT", "quantity": "100", "timeInForce": "GTC"}
    assert commands.parse_new_order(Params({**doge, "price": "0.12345"}), SPECS).price is not None
    assert commands.parse_new_order(Params({**LIMIT, "price": "60000.1"}), SPECS).price is not None
    with pytest.raises(VenueError) as info:
        commands.check_price(KNOWN_SYMBOLS["BNBUSDT"].tick_size * 15 / 10, KNOWN_SYMBOLS["BNBUSDT"])
    assert info.value.code == -4014


def test_valid_orders_parse() -> None:
    market = commands.parse_new_order(
        Params({**MARKET, "newClientOrderId": "abc-1", "reduceOnly": "False"}), SPECS
    )
    assert (market.type, market.reduce_only, market.client_order_id, market.response_type) == (
        "MARKET",
        False,
        "abc-1",
        "ACK",
    )
    limit = commands.parse_new_order(Params({**LIMIT, "newOrderRespType": "RESULT"}), SPECS)
    assert limit.price is not None and limit.response_type == "RESULT"
    stop = commands.parse_new_algo(Params(STOP), SPECS)
    assert (stop.order_type, stop.reduce_only, stop.working_type) == ("STOP_MARKET", True, "CONTRACT_PRICE")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"algoType": ""}, -1102),
        ({"algoType": "VP"}, -1130),
        ({"type": "LIMIT"}, -1116),
        ({"triggerPrice": ""}, -1102),
        ({"triggerPrice": "55000.05"}, -4014),
        ({"triggerPrice": "55000.005"}, -1111),
        ({"workingType": "INDEX"}, -1130),
        ({"closePosition": "true"}, -1106),  # with a quantity
        ({"type": "STOP", "price": ""}, -1102),
        ({"type": "TRAILING_STOP_MARKET", "callbackRate": "20"}, -1130),
    ],
)
def test_algo_order_errors(change: dict[str, str], code: int) -> None:
    assert _algo_error({**STOP, **change}) == code


def test_close_position_algo_takes_no_quantity() -> None:
    params = {k: v for k, v in STOP.items() if k not in ("quantity", "reduceOnly")}
    parsed = commands.parse_new_algo(Params({**params, "closePosition": "true"}), SPECS)
    assert parsed.close_position and parsed.quantity is None
