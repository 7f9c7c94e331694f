"""The exchange engine without a server: fills, accounting, conditional-order lifecycle, events emitted.

Prices come from a plain table the test sets (the engine's `PriceSource`); events are collected in order.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from emulator import commands
from emulator.engine import Exchange
from emulator.errors import VenueError
from emulator.params import Params
from emulator.state import Account, VenueState, initial_counters
from emulator.symbols import KNOWN_SYMBOLS

START_BALANCE = Decimal(10_000)
TAKER = Decimal("0.0005")
MAKER = Decimal("0.0002")


class Prices:
    def __init__(self) -> None:
        self.last_prices = {"BTCUSDT": Decimal("60000.0"), "ETHUSDT": Decimal("3000.00")}
        self.marks: dict[str, Decimal] = {}

    def last(self, symbol: str) -> Decimal:
        return self.last_prices[symbol]

    def mark(self, symbol: str) -> Decimal:
        return self.marks.get(symbol, self.last_prices[symbol])


class Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []  # everything but TRADE_LITE
        self.stream: list[dict[str, Any]] = []  # everything, in order
        self.prints: list[tuple[str, Decimal, Decimal, bool]] = []

    def user_event(self, account: str, payload: dict[str, Any], delay_ms: int = 0) -> None:
        self.stream.append(payload)
        if payload["e"] != "TRADE_LITE":
            self.events.append(payload)

    def trade_print(self, symbol: str, price: Decimal, qty: Decimal, buyer_maker: bool, time: int) -> None:
        self.prints.append((symbol, price, qty, buyer_maker))

    def kinds(self) -> list[str]:
        out = []
        for e in self.events:
            if e["e"] == "ORDER_TRADE_UPDATE":
                out.append(f"ORDER:{e['o']['x']}:{e['o']['X']}")
            elif e["e"] == "ALGO_UPDATE":
                out.append(f"ALGO:{e['o']['X']}")
            else:
                out.append(f"ACCOUNT:{e['a']['m']}")
        return out


class Venue:
    def __init__(self, balance: Decimal = START_BALANCE) -> None:
        self.prices = Prices()
        self.sink = Sink()
        specs = {s: KNOWN_SYMBOLS[s] for s in ("BTCUSDT", "ETHUSDT")}
        clock = itertools.count(1_800_000_000_000, 7)
        state = VenueState(seed=1, accounts={}, counters=initial_counters(1))
        self.engine = Exchange(state, specs, self.prices, self.sink, lambda: next(clock))
        self.account = Account(name="main", api_key="k", api_secret="s")
        self.engine.add_account(self.account, balance)

    def order(self, **params: str) -> Any:
        defaults = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
        if params.get("type") == "LIMIT":
            defaults["timeInForce"] = "GTC"
        cmd = commands.parse_new_order(Params({**defaults, **params}), self.engine.specs)
        return self.engine.place_order(self.account, cmd)

    def algo(self, **params: str) -> Any:
        defaults = {
            "algoType": "CONDITIONAL",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "STOP_MARKET",
            "quantity": "0.010",
            "triggerPrice": "55000.0",
        }
        cmd = commands.parse_new_algo(Params({**defaults, **params}), self.engine.specs)
        return self.engine.algos.place(self.account, cmd)

    def move(self, price: str, symbol: str = "BTCUSDT") -> None:
        self.prices.last_prices[symbol] = Decimal(price)
        self.engine.on_price(symbol)

    @property
    def wallet(self) -> Decimal:
        return self.account.wallet["USDT"]

    def position(self, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
        pos = self.account.positions.get(symbol)
        return (pos.amount, pos.entry_price) if pos else (Decimal(0), Decimal(0))


def _error(call: Any) -> VenueError:
    with pytest.raises(VenueError) as info:
        call()
    return info.value


def test_market_order_fills_at_last_price_as_taker() -> None:
    venue = Venue()
    order = venue.order(newClientOrderId="m-1")
    fee = Decimal("0.010") * Decimal("60000.0") * TAKER
    assert (order.status, order.executed_qty, order.avg_price) == (
        "FILLED",
        Decimal("0.010"),
        Decimal("60000.0"),
    )
    assert venue.position() == (Decimal("0.010"), Decimal("60000.0"))
    assert venue.wallet == START_BALANCE - fee
    assert venue.sink.kinds() == ["ORDER:NEW:NEW", "ORDER:TRADE:FILLED", "ACCOUNT:ORDER"]
    trade_event = venue.sink.events[1]["o"]
    assert (trade_event["c"], trade_event["L"], trade_event["l"], trade_event["n"], trade_event["N"]) == (
        "m-1",
        "60000.00",
        "0.010",
        "0.30000000",
        "USDT",
    )
    assert trade_event["m"] is False
    account_event = venue.sink.events[2]["a"]
    assert account_event["B"][0]["wb"] == f"{START_BALANCE - fee:.8f}"
    assert account_event["P"][0]["pa"] == "0.010" and account_event["P"][0]["ep"] == "60000"
    assert venue.sink.prints == [("BTCUSDT", Decimal("60000.0"), Decimal("0.010"), False)]
    lite, fill = venue.sink.stream[1], venue.sink.stream[2]
    assert (lite["e"], fill["e"], fill["o"]["x"]) == ("TRADE_LITE", "ORDER_TRADE_UPDATE", "TRADE")
    assert (lite["c"], lite["L"], lite["l"], lite["t"], lite["i"]) == (
        "m-1",
        "60000.00",
        "0.010",
        fill["o"]["t"],
        fill["o"]["i"],
    )


def test_round_trip_realizes_pnl_and_income_explains_the_wallet() -> None:
    venue = Venue()
    venue.order(quantity="0.020")
    venue.prices.last_prices["BTCUSDT"] = Decimal("61000.0")
    venue.order(side="SELL", quantity="0.020")
    realized = Decimal("0.020") * Decimal(1000)
    fees = Decimal("0.020") * Decimal("60000.0") * TAKER + Decimal("0.020") * Decimal("61000.0") * TAKER
    assert venue.position() == (Decimal(0), Decimal(0))
    assert venue.wallet == START_BALANCE + realized - fees
    trades = venue.engine.trades_of("main", "BTCUSDT")
    assert [t.realized_pnl for t in trades] == [Decimal(0), realized]
    income = venue.engine.income_of("main")
    assert {r.income_type for r in income} == {"TRANSFER", "REALIZED_PNL", "COMMISSION"}
    assert sum(r.income for r in income) == venue.wallet


def test_resting_limit_fills_as_maker_at_its_price_when_reached() -> None:
    venue = Venue()
    order = venue.order(type="LIMIT", price="59000.0", quantity="0.010")
    assert order.status == "NEW"
    venue.move("59500.0")
    assert order.status == "NEW"
    venue.move("58900.0")
    assert (order.status, order.avg_price) == ("FILLED", Decimal("59000.0"))
    trade = venue.engine.trades_of("main", "BTCUSDT")[0]
    assert trade.maker and trade.commission == Decimal("0.010") * Decimal("59000.0") * MAKER
    assert venue.sink.events[-2]["o"]["m"] is True


def test_crossing_limit_takes_liquidity_at_last_price() -> None:
    venue = Venue()
    order = venue.order(type="LIMIT", price="60500.0")
    assert (order.status, order.avg_price) == ("FILLED", Decimal("60000.0"))
    assert not venue.engine.trades_of("main", "BTCUSDT")[0].maker


def test_ioc_leftover_expires_and_post_only_crossing_is_rejected() -> None:
    venue = Venue()
    ioc = venue.order(type="LIMIT", price="59000.0", timeInForce="IOC")
    assert ioc.status == "EXPIRED"
    assert venue.sink.kinds()[-1] == "ORDER:EXPIRED:EXPIRED"
    assert _error(lambda: venue.order(type="LIMIT", price="60100.0", timeInForce="GTX")).code == -5022


def test_reduce_only_is_cut_to_the_position_and_rejected_when_it_cannot_reduce() -> None:
    venue = Venue()
    assert _error(lambda: venue.order(side="SELL", reduceOnly="true")).code == -2022
    venue.order(quantity="0.010")
    assert _error(lambda: venue.order(side="BUY", reduceOnly="true")).code == -2022
    cut = venue.order(side="SELL", quantity="0.050", reduceOnly="true")
    assert (cut.orig_qty, cut.executed_qty, cut.status) == (Decimal("0.010"), Decimal("0.010"), "FILLED")
    assert venue.position()[0] == 0


def test_duplicate_client_order_id_among_open_orders() -> None:
    venue = Venue()
    first = venue.order(type="LIMIT", price="59000.0", newClientOrderId="dup")
    err = _error(lambda: venue.order(type="LIMIT", price="58000.0", newClientOrderId="dup"))
    assert (err.code, err.msg, err.status) == (-4116, "ClientOrderId is duplicated.", 400)
    venue.engine.cancel_order(venue.account, "BTCUSDT", first.order_id, None)
    again = venue.order(type="LIMIT", price="58000.0", newClientOrderId="dup")  # not open any more: allowed
    assert again.order_id != first.order_id
    venue.algo(clientAlgoId="stop-dup", reduceOnly="false")
    assert _error(lambda: venue.algo(clientAlgoId="stop-dup", reduceOnly="false")).code == -4116


def test_margin_notional_and_percent_price_checks() -> None:
    venue = Venue(balance=Decimal(100))
    assert _error(lambda: venue.order(quantity="0.100")).code == -2019  # 6000 notional at 20x needs 300
    assert _error(lambda: venue.order(quantity="0.001")).code == -4164  # 60 < 100 minimum notional
    err = _error(lambda: venue.order(type="LIMIT", price="63500.0"))
    assert (err.code, err.msg) == (-4016, "Limit price can't be higher than 63000.00.")
    assert _error(lambda: venue.order(side="SELL", type="LIMIT", price="56000.0")).code == -4024


def test_stop_market_lifecycle_events() -> None:
    """NEW -> TRIGGERING -> TRIGGERED (with the child order id) -> child NEW, TRADE -> FINISHED."""
    venue = Venue()
    venue.order(quantity="0.010")
    venue.sink.events.clear()
    stop = venue.algo(clientAlgoId="sl-1", reduceOnly="true")
    assert venue.sink.kinds() == ["ALGO:NEW"]
    assert venue.sink.events[0]["o"]["ai"] == ""
    venue.move("55500.0")
    assert stop.status == "NEW"
    venue.move("54900.0")
    assert venue.sink.kinds() == [
        "ALGO:NEW",
        "ALGO:TRIGGERING",
        "ALGO:TRIGGERED",
        "ORDER:NEW:NEW",
        "ORDER:TRADE:FILLED",
        "ACCOUNT:ORDER",
        "ALGO:FINISHED",
    ]
    child_id = int(stop.actual_order_id)
    triggered = venue.sink.events[2]["o"]
    assert (triggered["ai"], triggered["aid"], triggered["caid"]) == (str(child_id), stop.algo_id, "sl-1")
    child_new = venue.sink.events[3]["o"]
    assert (child_new["i"], child_new["c"], child_new["o"], child_new["ot"], child_new["sp"]) == (
        child_id,
        "sl-1",
        "MARKET",
        "STOP_MARKET",
        "55000.00",
    )
    finished = venue.sink.events[-1]["o"]
    assert (finished["aq"], finished["ap"], finished["ai"]) == ("0.010", "54900.00", str(child_id))
    child = venue.engine.state.orders[child_id]
    assert (child.algo_id, child.status, child.reduce_only) == (stop.algo_id, "FILLED", True)
    assert venue.position()[0] == 0
    assert stop.status == "FINISHED"


def test_stop_that_would_trigger_at_once_is_rejected() -> None:
    venue = Venue()
    err = _error(lambda: venue.algo(triggerPrice="60500.0"))
    assert (err.code, err.msg) == (-2021, "Order would immediately trigger.")
    assert _error(lambda: venue.algo(type="TAKE_PROFIT_MARKET", triggerPrice="59000.0")).code == -2021


def test_mark_price_working_type_watches_the_mark() -> None:
    venue = Venue()
    venue.order(quantity="0.010")
    stop = venue.algo(workingType="MARK_PRICE", reduceOnly="true")
    venue.prices.marks["BTCUSDT"] = Decimal("60000.0")
    venue.move("54000.0")
    assert stop.status == "NEW"  # the last price crossed the trigger, the mark did not
    venue.prices.marks["BTCUSDT"] = Decimal("54999.0")
    venue.engine.on_price("BTCUSDT")
    assert stop.status == "FINISHED"


def test_reduce_only_stop_without_a_position_expires_without_a_child() -> None:
    venue = Venue()
    stop = venue.algo(reduceOnly="true")
    venue.move("54000.0")
    assert (stop.status, stop.actual_order_id) == ("EXPIRED", "")
    assert venue.sink.kinds()[-2:] == ["ALGO:TRIGGERING", "ALGO:EXPIRED"]
    assert venue.position()[0] == 0


def test_close_position_and_take_profit() -> None:
    venue = Venue()
    venue.order(quantity="0.030")
    cmd = commands.parse_new_algo(
        Params(
            {
                "algoType": "CONDITIONAL",
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "TAKE_PROFIT_MARKET",
                "triggerPrice": "62000.0",
                "closePosition": "true",
            }
        ),
        venue.engine.specs,
    )
    take_profit = venue.engine.algos.place(venue.account, cmd)
    venue.move("62100.0")
    assert take_profit.status == "FINISHED" and take_profit.executed_qty == Decimal("0.030")
    assert venue.position()[0] == 0
    assert venue.engine.trades_of("main", "BTCUSDT")[-1].realized_pnl == Decimal("0.030") * Decimal("2100.0")


def test_stop_limit_child_rests_then_fills_and_canceling_the_child_finishes_the_algo() -> None:
    venue = Venue()
    venue.order(quantity="0.020")
    stop = venue.algo(type="STOP", price="54000.0", quantity="0.010", reduceOnly="true")
    venue.move("54500.0")  # triggered; the child sells at 54000 or better, the market is at 54500: fills
    assert stop.status == "FINISHED"
    second = venue.algo(
        type="STOP", triggerPrice="54000.0", price="54500.0", quantity="0.010", reduceOnly="true"
    )
    venue.move("53900.0")  # triggered; a sell limit at 54500 is above the market: it rests
    assert second.status == "TRIGGERED"
    venue.move("54500.0")  # the market comes back to the limit: filled as maker
    assert (second.status, second.actual_price) == ("FINISHED", Decimal("54500.0"))
    assert venue.engine.trades_of("main", "BTCUSDT")[-1].maker
    fourth = venue.algo(side="BUY", type="STOP", triggerPrice="56000.0", price="55000.0", quantity="0.010")
    venue.move("56100.0")  # buy stop triggers at or above 56000; the buy limit at 55000 rests
    assert fourth.status == "TRIGGERED"
    child_id = int(fourth.actual_order_id)
    assert _error(lambda: venue.engine.algos.cancel(venue.account, fourth.algo_id, None)).code == -2011
    venue.engine.cancel_order(venue.account, "BTCUSDT", child_id, None)
    assert (fourth.status, fourth.executed_qty) == ("FINISHED", Decimal(0))


def test_insufficient_margin_at_trigger_rejects_the_algo() -> None:
    venue = Venue(balance=Decimal(200))
    stop = venue.algo(side="BUY", quantity="0.100", triggerPrice="61000.0")  # 6100 notional needs 305 at 20x
    venue.move("61100.0")
    assert stop.status == "REJECTED"
    assert venue.sink.kinds()[-1] == "ALGO:REJECTED"


def test_trailing_stop_fires_after_a_pullback() -> None:
    venue = Venue()
    venue.order(quantity="0.010")
    cmd = commands.parse_new_algo(
        Params(
            {
                "algoType": "CONDITIONAL",
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "TRAILING_STOP_MARKET",
                "quantity": "0.010",
                "callbackRate": "1",
                "activatePrice": "61000.0",
                "reduceOnly": "true",
            }
        ),
        venue.engine.specs,
    )
    trailing = venue.engine.algos.place(venue.account, cmd)
    for price in ("60500.0", "61000.0", "62000.0", "61500.0"):
        venue.move(price)
        assert trailing.status == "NEW"
    venue.move("61380.0")  # 1% below the 62000 high
    assert trailing.status == "FINISHED"


def test_funding_moves_the_wallet_and_is_recorded() -> None:
    venue = Venue()
    venue.order(quantity="0.010")
    wallet = venue.wallet
    assert venue.engine.apply_funding("BTCUSDT", Decimal("0.0001")) == 1
    paid = Decimal("0.010") * Decimal("60000.0") * Decimal("0.0001")
    assert venue.wallet == wallet - paid
    record = venue.engine.income_of("main")[-1]
    assert (record.income_type, record.income) == ("FUNDING_FEE", -paid)
    assert venue.sink.kinds()[-1] == "ACCOUNT:FUNDING_FEE"


def test_gtd_orders_expire() -> None:
    venue = Venue()
    order = venue.order(type="LIMIT", price="59000.0", timeInForce="GTD", goodTillDate="1800000000100")
    venue.engine.expire_due()
    assert order.status == "NEW"
    for _ in range(20):
        venue.engine.now()  # the test clock advances 7 ms a reading
    venue.engine.expire_due()
    assert order.status == "EXPIRED"


def test_resting_reduce_only_orders_expire_when_the_position_closes() -> None:
    venue = Venue()
    venue.order(quantity="0.010")
    take_profit = venue.order(side="SELL", type="LIMIT", price="62000.0", reduceOnly="true")
    venue.order(side="SELL", quantity="0.010")
    assert take_profit.status == "EXPIRED"


def test_silent_position_change_leaves_no_trades_and_no_events() -> None:
    venue = Venue()
    venue.engine.set_position(venue.account, "ETHUSDT", Decimal("-1.5"), Decimal("3100.00"), notify=False)
    assert venue.position("ETHUSDT") == (Decimal("-1.5"), Decimal("3100.00"))
    assert venue.engine.trades_of("main", "ETHUSDT") == []
    assert venue.sink.events == []
    venue.engine.set_position(venue.account, "ETHUSDT", Decimal(0), Decimal(0), notify=True)
    assert venue.sink.kinds() == ["ACCOUNT:ADJUSTMENT"]


def test_attempts_are_counted_per_client_id() -> None:
    venue = Venue()
    venue.engine.record_attempt("main", "cid", 1, None)
    venue.engine.record_attempt("main", "cid", None, -4116)
    record = venue.engine.state.attempts["main"]["cid"]
    assert (record.attempts, record.accepted, record.rejected, record.order_ids, record.last_error) == (
        2,
        1,
        1,
        [1],
        -4116,
    )


def test_modify_a_resting_limit() -> None:
    venue = Venue()
    order = venue.order(type="LIMIT", price="59000.0", quantity="0.010")
    venue.engine.modify_order(order, "BUY", Decimal("0.020"), Decimal("59500.0"))
    assert (order.orig_qty, order.price, order.status) == (Decimal("0.020"), Decimal("59500.0"), "NEW")
    assert venue.sink.kinds()[-1] == "ORDER:AMENDMENT:NEW"
    assert (
        _error(lambda: venue.engine.modify_order(order, "BUY", Decimal("0.020"), Decimal("59500.0"))).code
        == -5027
    )
    assert (
        _error(lambda: venue.engine.modify_order(order, "SELL", Decimal("0.020"), Decimal("59400.0"))).code
        == -1117
    )
    venue.engine.modify_order(order, "BUY", Decimal("0.020"), Decimal("60100.0"))  # now it crosses
    assert (order.status, order.avg_price) == ("FILLED", Decimal("60000.0"))
    assert (
        _error(lambda: venue.engine.modify_order(order, "BUY", Decimal("0.030"), Decimal("60100.0"))).code
        == -2011
    )


def test_admin_wallet_changes_are_booked_as_transfers() -> None:
    venue = Venue()
    venue.engine.set_wallet(venue.account, Decimal(12_345), notify=True)
    assert venue.wallet == Decimal(12_345)
    assert sum(r.income for r in venue.engine.income_of("main")) == venue.wallet
    assert venue.sink.kinds() == ["ACCOUNT:DEPOSIT"]


def test_algo_lookup_falls_back_to_the_client_id() -> None:
    venue = Venue()
    stop = venue.algo(clientAlgoId="sl-x", reduceOnly="false", side="BUY", triggerPrice="61000.0")
    algos = venue.engine.algos
    assert algos.find("main", stop.algo_id, None) is stop
    assert algos.find("main", 1, "sl-x") is stop  # nautilus sends both; the id may be a child order's
    assert algos.find("main", 1, None) is None
    assert _error(lambda: algos.find("main", None, None)).code == -1102


def test_a_market_order_sweeping_levels_fills_in_several_trades_in_one_transaction_time() -> None:
    venue = Venue()
    venue.prices.last_prices["ETHUSDT"] = Decimal("3000.00")
    venue.order(symbol="ETHUSDT", side="SELL", quantity="0.010")
    venue.engine.level_qty["ETHUSDT"] = Decimal("0.010")
    reversal = venue.order(symbol="ETHUSDT", side="BUY", quantity="0.020", newClientOrderId="rev-1")
    trades = [t for t in venue.engine.trades_of("main", "ETHUSDT") if t.order_id == reversal.order_id]
    assert [(t.price, t.qty) for t in trades] == [
        (Decimal("3000.00"), Decimal("0.010")),
        (Decimal("3000.01"), Decimal("0.010")),
    ]
    assert len({t.time for t in trades}) == 1  # one transaction time, as the venue reports a sweep
    assert (reversal.status, reversal.executed_qty) == ("FILLED", Decimal("0.020"))
    # The first trade closed the short at its entry, the second opened the long at the next level.
    assert venue.position("ETHUSDT") == (Decimal("0.010"), Decimal("3000.01"))
    assert [e["o"]["X"] for e in venue.sink.events if e["e"] == "ORDER_TRADE_UPDATE"][-2:] == [
        "PARTIALLY_FILLED",
        "FILLED",
    ]
