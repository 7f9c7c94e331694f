"""Reversing probes: their fleet entry, the venue's view of them, the market the kill drill moves them with,
and what their node must look like after every recovery (by the product's checks, `recovery.drill`)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

from emulator.admin import AdminClient
from emulator.testing import EmulatorProcess
from recovery.drill.cache_reader import read_cache
from recovery.drill.invariants import book_violations
from recovery.drill.observe import venue_book
from supervisor.emulated_fleet import bounded_poll
from tests.recovery.reversing_probe import CONFIG_PATH, PATH

SYMBOL = "ETHUSDT"
ETH = "ETHUSDT-PERP.BINANCE"
STRATEGY_ID = "ReversingProbe-001"
TRADES_STREAM = "ethusdt@aggTrade"
LONG_PX, SHORT_PX, FLAT_PX = "3010.00", "2990.00", "3000.50"
SIZE = Decimal("0.010")
TARGETS = {LONG_PX: str(SIZE), SHORT_PX: str(-SIZE), FLAT_PX: "0"}
PRICE_FOR = {SIZE: LONG_PX, -SIZE: SHORT_PX, Decimal(0): FLAT_PX}
DEPTHS = (None, SIZE, Decimal("0.005"))  # one trade; close and open apart; four trades for a reversal


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
    """Where the node's cache differs from the venue, by the product's own checks (`fleet drill`'s): the net
    position, one stop-loss and one take-profit per position and none when flat, every order's fills, nothing
    invented by reconciliation, no client order id accepted twice. Empty: they agree."""
    book = await venue_book(venue.admin, account, [SYMBOL])
    cache = await asyncio.to_thread(read_cache, trader_id)
    return [f"{v.check}: {v.message}" for v in book_violations(trader_id, [ETH], book, cache)]


class ReversalMarket:
    """The kill drill's market for reversing probes (`fleet drill`'s Market): every step picks a new target
    position, a depth (one trade, or a sweep through several levels) and prints the target's price, once every
    probe receives trade prints (a print before a node's subscription reaches the venue is not delivered)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.target = Decimal(0)

    async def prepare(self, admin: AdminClient) -> None:
        await admin.set_price(SYMBOL, "3000.00")

    async def step(self, admin: AdminClient, rng: random.Random, *, seek_order: bool = False) -> str:
        self.target = rng.choice([t for t in (SIZE, -SIZE, Decimal(0)) if t != self.target])
        depth = rng.choice(DEPTHS)
        await admin.set_depth(SYMBOL, depth)

        async def subscribed() -> bool:
            return int((await admin.state())["subscribers"].get(TRADES_STREAM, 0)) >= self.nodes

        await bounded_poll("every probe receiving trade prints", subscribed, within=60)
        await admin.set_price(SYMBOL, PRICE_FOR[self.target])
        return f"target {self.target} at {PRICE_FOR[self.target]}, depth {depth or 'one level'}"
