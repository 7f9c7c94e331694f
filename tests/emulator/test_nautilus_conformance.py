"""A real nautilus_trader 1.231 TradingNode with the Binance futures data and exec clients, pointed at the
emulator with base URLs only: connect, load instruments, reconcile an existing position and stop, receive
bars and aggTrades, request historical bars, trade (market, reduce-only stop via the algo API), cancel, and
see a stop triggered by the venue arrive through the user stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from nautilus_trader.adapters.binance import (
    BINANCE,
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
)
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType, TradeTick
from nautilus_trader.model.enums import OmsType, OrderSide, OrderStatus
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.trading.strategy import Strategy

from emulator.clients import nautilus_data_urls, nautilus_exec_urls
from emulator.testing import EmulatorProcess

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

BTC = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
BAR_TYPE = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
WAIT_S = 15.0


class Probe(Strategy):  # type: ignore[misc]  # nautilus' Cython classes are untyped
    """Subscribes and records; the test drives orders through it."""

    def __init__(self) -> None:
        super().__init__(StrategyConfig(order_id_tag="001", oms_type=OmsType.NETTING))
        self.bars: list[Bar] = []
        self.trades: list[TradeTick] = []
        self.historical: list[Any] = []
        self.events: list[Any] = []

    def on_start(self) -> None:
        self.subscribe_bars(BAR_TYPE)
        self.subscribe_trade_ticks(BTC)
        self.request_bars(BAR_TYPE, start=self.clock.utc_now() - dt.timedelta(minutes=30))

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    def on_historical_data(self, data: Any) -> None:
        self.historical.append(data)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.trades.append(tick)

    def on_event(self, event: Any) -> None:
        self.events.append(event)

    def on_stop(self) -> None:
        self.unsubscribe_bars(BAR_TYPE)
        self.unsubscribe_trade_ticks(BTC)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait (bounded) for state the node updates from its own callbacks; fails with `what` on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


@dataclass
class RunningNode:
    node: TradingNode
    probe: Probe
    task: asyncio.Task[None]
    events: list[str] = field(default_factory=list)


def build_node(venue: EmulatorProcess) -> tuple[TradingNode, Probe]:
    common: dict[str, Any] = {
        "api_key": venue.api_key,
        "api_secret": venue.api_secret,
        "account_type": BinanceAccountType.USDT_FUTURES,
        "instrument_provider": InstrumentProviderConfig(load_all=True),
    }
    data: dict[str, Any] = {**common, **nautilus_data_urls(venue.http_url, venue.ws_url)}
    execution: dict[str, Any] = {**common, **nautilus_exec_urls(venue.http_url, venue.ws_url)}
    config = TradingNodeConfig(
        trader_id="EMUCONF-001",
        logging=LoggingConfig(log_level="WARNING"),
        exec_engine=LiveExecEngineConfig(reconciliation=True),
        data_clients={
            BINANCE: BinanceDataClientConfig(
                **data, update_instruments_interval_mins=None, use_agg_trade_ticks=True
            )
        },
        exec_clients={BINANCE: BinanceExecClientConfig(**execution)},
        timeout_connection=20.0,
        timeout_reconciliation=10.0,
        timeout_portfolio=5.0,
        timeout_disconnection=5.0,
        timeout_post_stop=0.5,
    )
    node = TradingNode(config=config)
    probe = Probe()
    node.trader.add_strategy(probe)
    node.add_data_client_factory(BINANCE, BinanceLiveDataClientFactory)
    node.add_exec_client_factory(BINANCE, BinanceLiveExecClientFactory)
    node.build()
    return node, probe


@pytest.fixture
async def running(venue: EmulatorProcess) -> AsyncIterator[RunningNode]:
    # State the node must find at the venue: a position and a protective stop placed by someone else.
    await venue.admin.set_position("BTCUSDT", "0.010", "59000.0")
    await venue.admin.place_algo_order(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "STOP_MARKET",
            "quantity": "0.010",
            "triggerPrice": "50000.00",
            "reduceOnly": "true",
            "clientAlgoId": "existing-stop",
        }
    )
    sigint = signal.getsignal(signal.SIGINT)
    node, probe = build_node(venue)
    task = asyncio.create_task(node.run_async(), name="test.nautilus-node")
    try:
        await until(lambda: node.trader.is_running, "the trader started")
        yield RunningNode(node, probe, task)
    finally:
        await asyncio.wait_for(node.stop_async(), 20)
        await asyncio.wait_for(task, 20)
        node.kernel.dispose()
        if node.kernel.executor is not None:
            node.kernel.executor.shutdown(wait=False, cancel_futures=True)
        signal.signal(signal.SIGINT, sigint)  # the kernel resets SIGINT for the whole process


async def test_trading_node_against_the_emulator(venue: EmulatorProcess, running: RunningNode) -> None:
    node, probe = running.node, running.probe
    cache = node.cache
    instrument = cache.instrument(BTC)
    assert instrument is not None and str(instrument.price_increment) == "0.10"
    assert cache.instrument(InstrumentId.from_str("ETHUSDT-PERP.BINANCE")) is not None

    # Reconciled: the venue's position and its open stop.
    positions = cache.positions_open(instrument_id=BTC)
    assert [str(p.quantity) for p in positions] == ["0.010"]
    existing = cache.order(ClientOrderId("existing-stop"))
    assert existing is not None and existing.status == OrderStatus.ACCEPTED
    algo_id = (await venue.admin.orders("BTCUSDT", client_order_id="existing-stop"))["algo_orders"][0][
        "algoId"
    ]
    assert existing.venue_order_id.value == str(algo_id)

    # Market data: historical bars, live aggTrades, a closed 1m bar.
    await until(lambda: bool(probe.historical), "historical bars arrived")
    assert 25 <= len(probe.historical) <= 31
    await venue.admin.set_price("BTCUSDT", "60010.0")
    await until(lambda: any(t.price == instrument.make_price(60010) for t in probe.trades), "an aggTrade")
    await venue.admin.close_bar("BTCUSDT")
    await until(lambda: bool(probe.bars), "a live bar")
    assert probe.bars[-1].close == instrument.make_price(60010)

    # A market order: accepted and filled through the user stream.
    market = probe.order_factory.market(BTC, OrderSide.BUY, instrument.make_qty(0.01))
    probe.submit_order(market)
    await until(lambda: market.status == OrderStatus.FILLED, "the market order filled")
    assert market.avg_px == 60010.0

    # A reduce-only stop goes to the algo API, is accepted by ALGO_UPDATE NEW, and can be canceled.
    stop = probe.order_factory.stop_market(
        BTC,
        OrderSide.SELL,
        instrument.make_qty(0.01),
        trigger_price=instrument.make_price(55000),
        reduce_only=True,
    )
    probe.submit_order(stop)
    await until(lambda: stop.status == OrderStatus.ACCEPTED, "the stop accepted")
    algo = (await venue.admin.orders("BTCUSDT", client_order_id=stop.client_order_id.value))["algo_orders"][0]
    assert algo["algoStatus"] == "NEW" and stop.venue_order_id.value == str(algo["algoId"])
    probe.cancel_order(stop)
    await until(lambda: stop.status == OrderStatus.CANCELED, "the stop canceled")

    # A resting limit: accepted, amended (PUT /fapi/v1/order, x=AMENDMENT), canceled.
    limit = probe.order_factory.limit(
        BTC, OrderSide.BUY, instrument.make_qty(0.01), instrument.make_price(50000)
    )
    probe.submit_order(limit)
    await until(lambda: limit.status == OrderStatus.ACCEPTED, "the limit accepted")
    probe.modify_order(limit, price=instrument.make_price(50500))
    await until(lambda: limit.price == instrument.make_price(50500), "the limit amended")
    probe.cancel_order(limit)
    await until(lambda: limit.status == OrderStatus.CANCELED, "the limit canceled")

    # A stop the venue triggers: the child order's id replaces the algo id, then the fill arrives.
    second = probe.order_factory.stop_market(
        BTC,
        OrderSide.SELL,
        instrument.make_qty(0.01),
        trigger_price=instrument.make_price(56000),
        reduce_only=True,
    )
    probe.submit_order(second)
    await until(lambda: second.status == OrderStatus.ACCEPTED, "the second stop accepted")
    await venue.admin.set_price("BTCUSDT", "55900.0")
    await until(lambda: second.status == OrderStatus.FILLED, "the triggered stop filled")
    child = (await venue.admin.orders("BTCUSDT", client_order_id=second.client_order_id.value))["orders"][0]
    assert second.venue_order_id.value == str(child["orderId"])
    assert second.avg_px == 55900.0
    kinds = {type(e).__name__ for e in probe.events}
    assert {"OrderAccepted", "OrderFilled", "OrderCanceled", "OrderUpdated"} <= kinds

    # Nothing the node asked for was answered with an error.
    errors = [r for r in await venue.admin.requests() if r["status"] not in (200, 101)]
    assert errors == []


async def _user_stream_alive(venue: EmulatorProcess, node: TradingNode, client_order_id: str) -> None:
    """An order placed by another client reaches the node through its user stream."""
    await venue.admin.place_order(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.010",
            "price": "50000.0",
            "timeInForce": "GTC",
            "newClientOrderId": client_order_id,
        }
    )
    await until(
        lambda: node.cache.order(ClientOrderId(client_order_id)) is not None, f"{client_order_id} seen"
    )


async def test_user_stream_recovers_from_expiry_and_venue_restart(
    venue: EmulatorProcess, running: RunningNode
) -> None:
    node = running.node
    await _user_stream_alive(venue, node, "web_before")
    seq = max(r["seq"] for r in await venue.admin.requests())

    # listenKeyExpired: the adapter asks for a new key and reconnects the stream.
    assert await venue.admin.expire_listen_key() == 1
    await until(lambda: venue_state_users(node) is not None, "node still running")
    await until_async(lambda: _new_user_stream(venue, seq), "a new listen key and user stream")
    await _user_stream_alive(venue, node, "web_after_expiry")

    # The venue goes away and comes back (same port, same state): streams reconnect by themselves.
    await venue.restart()
    await until_async(lambda: _user_stream_count(venue), "the user stream reconnected", timeout_s=30)
    await _user_stream_alive(venue, node, "web_after_restart")


def venue_state_users(node: TradingNode) -> object:
    return node.trader if node.trader.is_running else None


async def _user_stream_count(venue: EmulatorProcess) -> bool:
    return bool((await venue.admin.state())["accounts"]["main"]["user_streams"])


async def _new_user_stream(venue: EmulatorProcess, after_seq: int) -> bool:
    recent = await venue.admin.requests(since=after_seq)
    created = any(r["path"] == "/fapi/v1/listenKey" and r["method"] == "POST" for r in recent)
    return created and await _user_stream_count(venue)


async def until_async(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
