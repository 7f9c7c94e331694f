"""What a reversing strategy's node must look like after every recovery, judged from the venue (emulator admin
API) and the cache in Redis: shared by the node-level reversal tests and the kill drill under the daemon."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from emulator.testing import EmulatorProcess
from tests.recovery.cache_reader import read_cache
from tests.recovery.reversing_probe import CONFIG_PATH, PATH

SYMBOL = "ETHUSDT"
ETH = "ETHUSDT-PERP.BINANCE"
STRATEGY_ID = "ReversingProbe-001"
TRADES_STREAM = "ethusdt@aggTrade"
LONG_PX, SHORT_PX, FLAT_PX = "3010.00", "2990.00", "3000.50"
SIZE = Decimal("0.010")
TARGETS = {LONG_PX: str(SIZE), SHORT_PX: str(-SIZE), FLAT_PX: "0"}
PRICE_FOR = {SIZE: LONG_PX, -SIZE: SHORT_PX, Decimal(0): FLAT_PX}


def reverser_config(**extra: Any) -> dict[str, Any]:
    return {"instrument_id": ETH, "order_id_tag": "001", "targets": TARGETS, **extra}


def reverser(**extra: Any) -> dict[str, Any]:
    """The strategy entry of a node spec / fleet.yaml."""
    return {"path": PATH, "config_path": CONFIG_PATH, "config": reverser_config(**extra)}


async def venue_position(venue: EmulatorProcess, account: str = "main") -> Decimal:
    position = (await venue.admin.state())["accounts"][account]["positions"].get(SYMBOL)
    return Decimal(position["amount"]) if position else Decimal(0)


async def open_protective(venue: EmulatorProcess, account: str = "main") -> list[dict[str, Any]]:
    algos = (await venue.admin.orders(SYMBOL, account=account))["algo_orders"]
    return [a for a in algos if a["algoStatus"] == "NEW"]


async def settled(venue: EmulatorProcess, target: Decimal, account: str = "main") -> bool:
    """The venue holds `target` and, unless flat, exactly one stop-loss and one take-profit of its size."""
    if await venue_position(venue, account) != target:
        return False
    protective = await open_protective(venue, account)
    kinds = sorted(a["clientAlgoId"][:2] for a in protective)
    if target == 0:
        return not protective
    return kinds == ["SL", "TP"] and all(Decimal(a["quantity"]) == abs(target) for a in protective)


async def trades_subscribed(venue: EmulatorProcess) -> bool:
    return TRADES_STREAM in (await venue.admin.state())["subscriptions"]


async def cache_differences(venue: EmulatorProcess, trader_id: str, account: str = "main") -> list[str]:
    """Where the node's cache differs from the venue: the net position, any order's fills (trade ids and
    quantities, by client order id; a triggered stop's fills belong to the stop), any fill the venue never
    made, any client order id the venue accepted twice. Empty: they agree."""
    problems = []
    cache = read_cache(trader_id)
    venue_net = await venue_position(venue, account)
    if cache.net().get(ETH, Decimal(0)) != venue_net:
        problems.append(f"net position: cached {cache.net().get(ETH, Decimal(0))}, venue {venue_net}")
    orders = (await venue.admin.orders(SYMBOL, account=account))["orders"]
    client_id_of = {o["orderId"]: o["clientOrderId"] for o in orders}
    venue_fills: dict[str, list[tuple[str, Decimal]]] = {}
    for trade in await venue.admin.trades(SYMBOL, account=account):
        venue_fills.setdefault(client_id_of[trade["orderId"]], []).append(
            (str(trade["id"]), Decimal(trade["qty"]))
        )
    for cid, fills in sorted(venue_fills.items()):
        cached = cache.orders.get(cid)
        cached_fills = sorted((f.trade_id, f.qty) for f in cached.fills) if cached else None
        if cached_fills != sorted(fills):
            problems.append(f"order {cid}: cached fills {cached_fills}, venue {sorted(fills)}")
    for cid, order in sorted(cache.orders.items()):
        if order.fills and cid not in venue_fills:
            problems.append(f"order {cid}: cached fills {order.fills} the venue never made")
    if cache.synthetic_orders():
        problems.append(f"invented by reconciliation: {cache.synthetic_orders()}")
    for cid, record in (await venue.admin.attempts(account=account)).items():
        if record["accepted"] > 1:
            problems.append(f"client order id {cid} accepted {record['accepted']} times")
    return problems
