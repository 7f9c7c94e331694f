"""From the venue's rows to nautilus reports (recovery.binance.reports) against a real nautilus cache.

An order the venue reports with less filled than the cache holds is withheld from nautilus (which would fail
the whole reconciliation on it, at every start) and named, with both sides' fills.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.adapters.binance.common.schemas.account import BinanceOrder, BinanceUserTrade
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesEnumParser
from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import (
    AccountId,
    ClientOrderId,
    InstrumentId,
    TradeId,
    Venue,
    VenueOrderId,
)
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs

from recovery.binance.reports import ReportContext, build_reports

ACCOUNT = AccountId("BINANCE-USDT_FUTURES-master")
INSTRUMENT = TestInstrumentProvider.ethusdt_perp_binance()
REVERSAL_ID = "EN001-35-120"
VENUE_ORDER_ID = 4360190962


def cache_with_filled_reversal() -> Cache:
    """The cache holds the reversal order filled 0.020 by one venue trade."""
    cache = Cache()
    cache.add_instrument(INSTRUMENT)
    order = TestExecStubs.market_order(
        instrument=INSTRUMENT,
        order_side=OrderSide.BUY,
        quantity=Quantity.from_str("0.020"),
        client_order_id=ClientOrderId(REVERSAL_ID),
    )
    cache.add_order(order)
    order.apply(TestEventStubs.order_submitted(order, account_id=ACCOUNT))
    order.apply(
        TestEventStubs.order_accepted(
            order, account_id=ACCOUNT, venue_order_id=VenueOrderId(str(VENUE_ORDER_ID))
        )
    )
    order.apply(
        TestEventStubs.order_filled(
            order,
            instrument=INSTRUMENT,
            account_id=ACCOUNT,
            trade_id=TradeId("303441263"),
            last_px=Price.from_str("3010.00"),
        )
    )
    cache.update_order(order)
    cache.add_venue_order_id(order.client_order_id, order.venue_order_id)
    return cache


def order_row(executed: str) -> BinanceOrder:
    row: dict[str, Any] = {
        "symbol": "ETHUSDT",
        "orderId": VENUE_ORDER_ID,
        "clientOrderId": REVERSAL_ID,
        "price": "0",
        "avgPrice": "3010.00",
        "origQty": "0.020",
        "executedQty": executed,
        "cumQuote": "60.2",
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": "MARKET",
        "origType": "MARKET",
        "side": "BUY",
        "positionSide": "BOTH",
        "reduceOnly": False,
        "closePosition": False,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "time": 1_796_364_167_843,
        "updateTime": 1_796_364_167_843,
    }
    return msgspec.convert(row, BinanceOrder)


def trade_row(trade_id: int, qty: str) -> BinanceUserTrade:
    row = {
        "symbol": "ETHUSDT",
        "id": trade_id,
        "orderId": VENUE_ORDER_ID,
        "side": "BUY",
        "price": "3010.00",
        "qty": qty,
        "realizedPnl": "0",
        "quoteQty": "30.1",
        "commission": "0.01",
        "commissionAsset": "USDT",
        "time": 1_796_364_167_843,
        "positionSide": "BOTH",
        "buyer": True,
        "maker": False,
    }
    return msgspec.convert(row, BinanceUserTrade)


def build(cache: Cache, orders: list[BinanceOrder], trades: list[BinanceUserTrade]) -> Any:
    context = ReportContext(
        account_id=ACCOUNT,
        instrument_id=lambda symbol: InstrumentId.from_str(f"{symbol}-PERP.BINANCE"),
        enum_parser=BinanceFuturesEnumParser(),
        treat_expired_as_canceled=False,
        use_position_ids=False,
        cache=cache,
        venue=Venue("BINANCE"),
        ts_init=0,
    )
    return build_reports(
        context,
        position_risk=[],
        open_orders=[],
        open_algos=[],
        all_orders=orders,
        all_algos=[],
        trades=trades,
        fetched_symbols={"ETHUSDT"},
        in_scope=lambda symbol: True,
    )


def test_an_order_reported_with_less_filled_than_cached_is_withheld_and_named() -> None:
    built = build(cache_with_filled_reversal(), [order_row("0.010")], [trade_row(303441999, "0.010")])
    assert built.orders == [] and built.fills == []
    [mismatch] = built.history_mismatches
    assert mismatch.detail() == {
        "client_order_id": REVERSAL_ID,
        "venue_order_id": str(VENUE_ORDER_ID),
        "instrument": "ETHUSDT-PERP.BINANCE",
        "cached_filled": "0.020",
        "venue_filled": "0.010",
        "cached_trades": ["303441263"],
        "venue_trades": ["303441999"],
    }


def test_an_order_the_venue_reports_as_the_cache_holds_it_or_further_goes_to_nautilus() -> None:
    cache = cache_with_filled_reversal()
    same = build(cache, [order_row("0.020")], [trade_row(303441263, "0.020")])
    assert [r.client_order_id.value for r in same.orders] == [REVERSAL_ID]
    assert [f.trade_id.value for f in same.fills] == ["303441263"]
    assert same.history_mismatches == []
    assert Decimal(str(same.orders[0].filled_qty)) == Decimal("0.020")
