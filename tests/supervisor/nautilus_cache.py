"""Real nautilus caches in Redis, written and read back by nautilus' own code (test and benchmark support).

`populate` drives a real `ExecutionEngine` over a `Cache` backed by nautilus'
`CacheDatabaseAdapter`: orders are created by `OrderFactory`, added with `Cache.add_order` (with the position
and client index entries a strategy's submit writes), and their events (submitted, accepted, filled, canceled)
go through `ExecutionEngine.process`, which opens, updates and closes positions and persists everything the
way a live node does. `load` is what a node runs at start: a real `TradingNode(config)` (which calls
`exec_engine.load_cache()`), then a summary of what it loaded.

Both run in a child process (`python -m tests.supervisor.nautilus_cache populate|load ...`, JSON out), so
nautilus' process-wide state (logging, the uvloop policy) never leaks into the test process or the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

ACCOUNT_ID = "BINANCE-USDT_FUTURES-master"
BASE_TS_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z: history starts here, one second per event


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """The history to write for one trader.

    A closed round trip is five orders: a MARKET entry (filled, opens the position), a LIMIT add (filled), a
    STOP_MARKET stop (canceled when the position closes), a LIMIT take-profit (filled, closes it) and a LIMIT
    entry that was canceled unfilled (linked to no position). An open position is a MARKET entry plus an open
    stop and an open take-profit. `open_limits` are resting entries linked to no position.
    """

    trader_id: str
    oms: str = "HEDGING"  # HEDGING: one position id per round trip; NETTING: one per instrument and strategy
    closed_positions: int = 10
    open_positions: int = 2
    open_limits: int = 1
    strategies: int = 1

    def args(self) -> list[str]:
        return [
            "--trader-id",
            self.trader_id,
            "--oms",
            self.oms,
            "--closed-positions",
            str(self.closed_positions),
            "--open-positions",
            str(self.open_positions),
            "--open-limits",
            str(self.open_limits),
            "--strategies",
            str(self.strategies),
        ]


def run_child(args: list[str], *, timeout: float = 110.0) -> dict[str, Any]:
    """Run this module in a child process and return the JSON it wrote."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"nautilus-cache-{os.getpid()}-{time.monotonic_ns()}.json"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.supervisor.nautilus_cache", *args, "--out", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"nautilus_cache {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        result["log"] = proc.stdout + proc.stderr
        return result
    finally:
        out.unlink(missing_ok=True)


def populate(port: int, scenario: Scenario, *, host: str = "127.0.0.1") -> dict[str, Any]:
    return run_child(["populate", "--host", host, "--port", str(port), *scenario.args()])


def load(port: int, trader_id: str, *, host: str = "127.0.0.1") -> dict[str, Any]:
    return run_child(["load", "--host", host, "--port", str(port), "--trader-id", trader_id])


def reconcile(
    port: int, trader_id: str, reports: list[dict[str, Any]], *, host: str = "127.0.0.1"
) -> dict[str, Any]:
    """Start a node on the cache and reconcile it against these venue order reports (FILLED, with trades).

    Each report: client_order_id, venue_order_id, instrument_id, side, type, quantity, avg_px, trades
    ([trade_id, qty, px], ...): the shape of `load()`'s order views. Writes to the cache as a node would.
    """
    path = (
        Path(os.environ.get("TMPDIR", "/tmp")) / f"nautilus-reports-{os.getpid()}-{time.monotonic_ns()}.json"
    )
    path.write_text(json.dumps(reports))
    try:
        return run_child(
            [
                "reconcile",
                "--host",
                host,
                "--port",
                str(port),
                "--trader-id",
                trader_id,
                "--reports",
                str(path),
            ]
        )
    finally:
        path.unlink(missing_ok=True)


# -- the child side (imports nautilus) -------------------------------------------------------------------


def _cache_config(host: str, port: int) -> Any:
    from nautilus_trader.config import CacheConfig, DatabaseConfig

    return CacheConfig(
        database=DatabaseConfig(host=host, port=port, connection_timeout=2, response_timeout=2),
        encoding="msgpack",
        buffer_interval_ms=None,
        persist_account_events=True,
        use_instance_id=False,
        flush_on_start=False,
    )


class _Writer:
    """Drives one engine over a database-backed cache; every call is what a live node would do."""

    def __init__(self, host: str, port: int, trader_id: str, oms: str, strategies: int) -> None:
        from nautilus_trader.cache.cache import Cache
        from nautilus_trader.cache.database import CacheDatabaseAdapter
        from nautilus_trader.common.component import MessageBus, TestClock
        from nautilus_trader.common.factories import OrderFactory
        from nautilus_trader.config import ExecEngineConfig, StrategyConfig
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.execution.engine import ExecutionEngine
        from nautilus_trader.model.identifiers import AccountId, ClientId, TraderId
        from nautilus_trader.serialization.serializer import MsgSpecSerializer
        from nautilus_trader.test_kit.providers import TestInstrumentProvider
        from nautilus_trader.trading.strategy import Strategy

        self.clock = TestClock()
        self.clock.set_time(BASE_TS_NS)
        self.trader_id = TraderId(trader_id)
        config = _cache_config(host, port)
        self.database = CacheDatabaseAdapter(
            trader_id=self.trader_id,
            instance_id=UUID4(),
            serializer=MsgSpecSerializer(encoding=__import__("msgspec").msgpack, timestamps_as_str=True),
            config=config,
        )
        self.cache = Cache(database=self.database, config=config)
        self.msgbus = MessageBus(trader_id=self.trader_id, clock=self.clock)
        # The portfolio writes nothing to Redis for a venue-reported (not calculated) account, and its PnL
        # bookkeeping grows with history; its endpoints take the engine's messages and drop them instead.
        for endpoint in ("Portfolio.update_order", "Portfolio.update_position", "Portfolio.update_account"):
            self.msgbus.register(endpoint=endpoint, handler=lambda _message: None)
        self.engine = ExecutionEngine(
            msgbus=self.msgbus, cache=self.cache, clock=self.clock, config=ExecEngineConfig()
        )
        self.client_id = ClientId("BINANCE")
        self.account_id = AccountId(ACCOUNT_ID)
        self.instruments = [
            TestInstrumentProvider.btcusdt_perp_binance(),
            TestInstrumentProvider.ethusdt_perp_binance(),
        ]
        for instrument in self.instruments:
            self.cache.add_instrument(instrument)
        self.balance = 100_000.0
        self.update_account()
        self.factories = []
        for n in range(strategies):
            strategy = Strategy(StrategyConfig(order_id_tag=f"{n + 1:03d}", oms_type=oms))
            self.engine.register_oms_type(strategy)
            self.factories.append(
                OrderFactory(trader_id=self.trader_id, strategy_id=strategy.id, clock=self.clock)
            )
        self._venue_ids = 0
        self._trade_ids = 0

    def update_account(self) -> None:
        """What a venue's ACCOUNT_UPDATE after a fill becomes: one more AccountState in the account's list."""
        from nautilus_trader.accounting.factory import AccountFactory
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.model.currencies import USDT
        from nautilus_trader.model.enums import AccountType
        from nautilus_trader.model.events import AccountState
        from nautilus_trader.model.objects import AccountBalance, Money

        ts = self.clock.timestamp_ns()
        balance = Money(self.balance, USDT)
        state = AccountState(
            account_id=self.account_id,
            account_type=AccountType.MARGIN,
            base_currency=None,
            reported=True,
            balances=[AccountBalance(balance, Money(0, USDT), balance)],
            margins=[],
            info={},
            event_id=UUID4(),
            ts_event=ts,
            ts_init=ts,
        )
        # What Portfolio.update_account does with a venue's AccountState.
        account = self.cache.account(self.account_id)
        if account is None:
            self.cache.add_account(AccountFactory.create(state))
        else:
            account.apply(state)
            self.cache.update_account(account)

    def _tick(self) -> int:
        self.clock.advance_time(self.clock.timestamp_ns() + 1_000_000_000)
        now: int = self.clock.timestamp_ns()
        return now

    def submit(self, order: Any, position_id: Any = None) -> Any:
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.model.events import OrderAccepted, OrderSubmitted
        from nautilus_trader.model.identifiers import VenueOrderId

        self.cache.add_order(order, position_id=position_id, client_id=self.client_id)
        ts = self._tick()
        common = {
            "trader_id": self.trader_id,
            "strategy_id": order.strategy_id,
            "instrument_id": order.instrument_id,
            "client_order_id": order.client_order_id,
            "account_id": self.account_id,
        }
        self.engine.process(OrderSubmitted(**common, event_id=UUID4(), ts_event=ts, ts_init=ts))
        self._venue_ids += 1
        venue_order_id = VenueOrderId(str(900_000_000 + self._venue_ids))
        ts = self._tick()
        self.engine.process(
            OrderAccepted(**common, venue_order_id=venue_order_id, event_id=UUID4(), ts_event=ts, ts_init=ts)
        )
        return venue_order_id

    def fill(self, order: Any, price: str) -> None:
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.model.enums import LiquiditySide
        from nautilus_trader.model.events import OrderFilled
        from nautilus_trader.model.identifiers import TradeId
        from nautilus_trader.model.objects import Money, Price

        order = self.cache.order(order.client_order_id)
        instrument = self.cache.instrument(order.instrument_id)
        self._trade_ids += 1
        ts = self._tick()
        px = Price.from_str(price)
        commission = Money(float(order.quantity) * float(px) * 0.0004, instrument.settlement_currency)
        self.engine.process(
            OrderFilled(
                trader_id=self.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                account_id=self.account_id,
                trade_id=TradeId(str(500_000_000 + self._trade_ids)),
                position_id=None,
                order_side=order.side,
                order_type=order.order_type,
                last_qty=order.quantity,
                last_px=px,
                currency=instrument.quote_currency,
                commission=commission,
                liquidity_side=LiquiditySide.TAKER,
                event_id=UUID4(),
                ts_event=ts,
                ts_init=ts,
            )
        )
        self.balance -= float(commission)
        self.update_account()

    def cancel(self, order: Any) -> None:
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.model.events import OrderCanceled

        order = self.cache.order(order.client_order_id)
        ts = self._tick()
        self.engine.process(
            OrderCanceled(
                trader_id=self.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                account_id=self.account_id,
                event_id=UUID4(),
                ts_event=ts,
                ts_init=ts,
            )
        )

    def round_trip(self, n: int, *, close: bool) -> None:
        """One position: entry, add-on, stop and take-profit; closed (and a canceled entry) when `close`."""
        from nautilus_trader.model.enums import OrderSide
        from nautilus_trader.model.objects import Price, Quantity

        factory = self.factories[n % len(self.factories)]
        instrument = self.instruments[n % len(self.instruments)]
        base = 50_000 if instrument.id.symbol.value.startswith("BTC") else 3_000
        px = base + (n % 100)
        entry = factory.market(instrument.id, OrderSide.BUY, Quantity.from_str("0.010"))
        self.submit(entry)
        self.fill(entry, f"{px}.0")
        position_id = self.cache.position_id(entry.client_order_id)
        if close:
            add = factory.limit(
                instrument.id, OrderSide.BUY, Quantity.from_str("0.005"), Price.from_str(f"{px - 5}.0")
            )
            self.submit(add, position_id)
            self.fill(add, f"{px - 5}.0")
        qty = Quantity.from_str("0.015" if close else "0.010")
        stop = factory.stop_market(
            instrument.id, OrderSide.SELL, qty, Price.from_str(f"{px - 100}.0"), reduce_only=True
        )
        self.submit(stop, position_id)
        take = factory.limit(
            instrument.id, OrderSide.SELL, qty, Price.from_str(f"{px + 150}.0"), reduce_only=True
        )
        self.submit(take, position_id)
        if close:
            self.fill(take, f"{px + 150}.0")
            self.cancel(stop)
            unfilled = factory.limit(
                instrument.id, OrderSide.BUY, Quantity.from_str("0.010"), Price.from_str(f"{px - 300}.0")
            )
            self.submit(unfilled)
            self.cancel(unfilled)

    def open_limit(self, n: int) -> None:
        from nautilus_trader.model.enums import OrderSide
        from nautilus_trader.model.objects import Price, Quantity

        factory = self.factories[n % len(self.factories)]
        instrument = self.instruments[n % len(self.instruments)]
        order = factory.limit(
            instrument.id, OrderSide.BUY, Quantity.from_str("0.020"), Price.from_str("1000.0")
        )
        self.submit(order)

    def close(self) -> None:
        self.database.close()  # drains the write queue before returning


def _populate_child(ns: argparse.Namespace) -> dict[str, Any]:
    writer = _Writer(ns.host, ns.port, ns.trader_id, ns.oms, ns.strategies)
    started = time.perf_counter()
    for n in range(ns.closed_positions):
        writer.round_trip(n, close=True)
    for n in range(ns.open_positions):
        # Open positions on instruments/strategies the closed history also used (NETTING reopens them).
        writer.round_trip(ns.closed_positions + n, close=False)
    for n in range(ns.open_limits):
        writer.open_limit(n)
    summary = _summary(writer.cache)
    writer.close()
    summary["seconds"] = time.perf_counter() - started
    return summary


def _load_child(ns: argparse.Namespace) -> dict[str, Any]:
    from nautilus_trader.config import LoggingConfig, TradingNodeConfig
    from nautilus_trader.live.node import TradingNode

    config = TradingNodeConfig(
        trader_id=ns.trader_id,
        logging=LoggingConfig(log_level="WARNING", log_colors=False),
        cache=_cache_config(ns.host, ns.port),
        load_state=False,
        save_state=False,
    )
    started = time.perf_counter()
    node = TradingNode(config=config)
    constructed = time.perf_counter() - started
    cache = node.kernel.cache
    started = time.perf_counter()
    node.kernel.exec_engine.load_cache()
    reloaded = time.perf_counter() - started
    summary = _summary(cache)
    summary["integrity"] = bool(cache.check_integrity())
    summary["construct_seconds"] = constructed
    summary["load_cache_seconds"] = reloaded
    node.dispose()
    return summary


def _summary(cache: Any) -> dict[str, Any]:
    from nautilus_trader.model.enums import position_side_to_str

    def order_view(order: Any) -> dict[str, Any]:
        return {
            "status": order.status_string(),
            "strategy_id": order.strategy_id.value,
            "instrument_id": order.instrument_id.value,
            "side": order.side_string(),
            "type": order.type_string(),
            "quantity": str(order.quantity),
            "filled_qty": str(order.filled_qty),
            "avg_px": order.avg_px,
            "venue_order_id": order.venue_order_id.value if order.venue_order_id is not None else None,
            "position_id": str(order.position_id) if order.position_id is not None else None,
            "tags": list(order.tags or []),
            "events": [type(e).__name__ + ":" + e.id.value for e in order.events],
            "trades": [
                [f.trade_id.value, str(f.last_qty), str(f.last_px)]
                for f in order.events
                if type(f).__name__ == "OrderFilled"
            ],
        }

    def account_view(account: Any) -> dict[str, Any]:
        return {
            "balances": sorted(str(b) for b in account.balances().values()),
            "starting": sorted(str(m) for m in account.starting_balances().values()),
            "last_event": account.last_event.id.value,
            "events": len(account.events),
        }

    def position_view(position: Any) -> dict[str, Any]:
        return {
            "side": position_side_to_str(position.side),
            "quantity": str(position.quantity),
            "avg_px_open": position.avg_px_open,
            "realized_pnl": str(position.realized_pnl),
            "is_open": position.is_open,
            "events": [e.id.value for e in position.events],
            "orders": sorted(c.value for c in position.client_order_ids),
        }

    return {
        "orders": {o.client_order_id.value: order_view(o) for o in cache.orders()},
        "orders_open": sorted(o.client_order_id.value for o in cache.orders_open()),
        "orders_closed": sorted(o.client_order_id.value for o in cache.orders_closed()),
        "positions": {p.id.value: position_view(p) for p in cache.positions()},
        "positions_open": sorted(p.id.value for p in cache.positions_open()),
        "positions_closed": sorted(p.id.value for p in cache.positions_closed()),
        "accounts": {a.id.value: account_view(a) for a in cache.accounts()},
    }


def _reconcile_child(ns: argparse.Namespace) -> dict[str, Any]:
    """Startup reconciliation as a node runs it, fed the venue's view of some orders (`--reports`)."""
    import asyncio
    from decimal import Decimal

    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.execution.reports import ExecutionMassStatus, FillReport, OrderStatusReport
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.enums import (
        LiquiditySide,
        OrderStatus,
        TimeInForce,
        order_side_from_str,
        order_type_from_str,
    )
    from nautilus_trader.model.identifiers import (
        AccountId,
        ClientId,
        ClientOrderId,
        InstrumentId,
        TradeId,
        Venue,
        VenueOrderId,
    )
    from nautilus_trader.model.objects import Money, Price, Quantity

    async def run() -> dict[str, Any]:
        from nautilus_trader.config import LiveExecEngineConfig, LoggingConfig, TradingNodeConfig
        from nautilus_trader.live.node import TradingNode

        config = TradingNodeConfig(
            trader_id=ns.trader_id,
            logging=LoggingConfig(log_level="WARNING", log_colors=False),
            cache=_cache_config(ns.host, ns.port),
            exec_engine=LiveExecEngineConfig(reconciliation=True, generate_missing_orders=True),
            load_state=False,
            save_state=False,
        )
        node = TradingNode(config=config, loop=asyncio.get_running_loop())
        cache = node.kernel.cache
        account_id = AccountId(ACCOUNT_ID)
        now = node.kernel.clock.timestamp_ns()
        mass = ExecutionMassStatus(
            client_id=ClientId("BINANCE"),
            account_id=account_id,
            venue=Venue("BINANCE"),
            report_id=UUID4(),
            ts_init=now,
        )
        for spec in json.loads(ns.reports.read_text()):
            instrument_id = InstrumentId.from_str(spec["instrument_id"])
            venue_order_id = VenueOrderId(spec["venue_order_id"])
            side = order_side_from_str(spec["side"])
            mass.add_order_reports(
                [
                    OrderStatusReport(
                        account_id=account_id,
                        instrument_id=instrument_id,
                        client_order_id=ClientOrderId(spec["client_order_id"]),
                        venue_order_id=venue_order_id,
                        order_side=side,
                        order_type=order_type_from_str(spec["type"]),
                        time_in_force=TimeInForce.GTC,
                        order_status=OrderStatus.FILLED,
                        quantity=Quantity.from_str(spec["quantity"]),
                        filled_qty=Quantity.from_str(spec["quantity"]),
                        avg_px=Decimal(str(spec["avg_px"])),
                        report_id=UUID4(),
                        ts_accepted=now,
                        ts_last=now,
                        ts_init=now,
                    )
                ]
            )
            mass.add_fill_reports(
                [
                    FillReport(
                        account_id=account_id,
                        instrument_id=instrument_id,
                        venue_order_id=venue_order_id,
                        trade_id=TradeId(trade_id),
                        order_side=side,
                        last_qty=Quantity.from_str(qty),
                        last_px=Price.from_str(px),
                        commission=Money(0, USDT),
                        liquidity_side=LiquiditySide.TAKER,
                        report_id=UUID4(),
                        ts_event=now,
                        ts_init=now,
                        client_order_id=ClientOrderId(spec["client_order_id"]),
                    )
                    for trade_id, qty, px in spec["trades"]
                ]
            )
        node.kernel.exec_engine.reconcile_execution_mass_status(mass)
        # No dispose: it stops the running loop. What reconciliation did is read from the node's cache.
        return _summary(cache)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests.supervisor.nautilus_cache")
    parser.add_argument("command", choices=["populate", "load", "reconcile"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--trader-id", required=True)
    parser.add_argument("--oms", default="HEDGING", choices=["HEDGING", "NETTING"])
    parser.add_argument("--closed-positions", type=int, default=10)
    parser.add_argument("--open-positions", type=int, default=2)
    parser.add_argument("--open-limits", type=int, default=1)
    parser.add_argument("--strategies", type=int, default=1)
    parser.add_argument("--reports", type=Path, help="reconcile: JSON list of the venue's order reports")
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args(argv)
    if ns.port == 6379:
        parser.error("refusing to write nautilus test data to the shared Redis on 6379")
    commands = {"populate": _populate_child, "load": _load_child, "reconcile": _reconcile_child}
    result = commands[ns.command](ns)
    ns.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
