"""Reads what the checks compare: the venue (the emulator's admin API), the node's nautilus cache and its
strategies' state records (Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from decimal import Decimal

import redis.asyncio as aioredis

from emulator.admin import AdminClient
from recovery.drill.cache_reader import RedisLocation, read_cache
from recovery.drill.invariants import OpenProtective, StateRecord, VenueBook, protective_of
from recovery.drill.values import CachedState

STATE_KEY = "trader-{trader_id}:general:recovery:{strategy}:state"


class Observer:
    def __init__(self, admin: AdminClient, redis: aioredis.Redis, location: RedisLocation) -> None:
        self.admin = admin
        self.redis = redis
        self.location = location

    async def venue_book(self, account: str, symbols: Iterable[str]) -> VenueBook:
        return await venue_book(self.admin, account, symbols)

    async def cache(self, trader_id: str) -> CachedState:
        return await asyncio.to_thread(read_cache, trader_id, location=self.location)

    async def states(self, trader_id: str) -> dict[str, StateRecord]:
        """Every RecoverableStrategy state record of the trader, by strategy id."""
        pattern = STATE_KEY.format(trader_id=trader_id, strategy="*")
        prefix, suffix = pattern.split("*")
        records = {}
        async for raw in self.redis.scan_iter(match=pattern, count=1000):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            data = await self.redis.get(key)
            if data is None:
                continue
            record = json.loads(data)
            records[key.removeprefix(prefix).removesuffix(suffix)] = StateRecord(
                seq=int(record["seq"]), fields=dict(record["fields"])
            )
        return records


async def venue_book(admin: AdminClient, account: str, symbols: Iterable[str]) -> VenueBook:
    """One account at the venue, limited to `symbols`, as the checks take it."""
    wanted = set(symbols)
    state = (await admin.state())["accounts"][account]
    positions = {
        symbol: Decimal(row["amount"])
        for symbol, row in state["positions"].items()
        if symbol in wanted and Decimal(row["amount"]) != 0
    }
    protective: list[OpenProtective] = []
    for algo in state["open_algo_orders"]:
        mine = protective_of(algo)
        if mine is not None and mine.symbol in wanted:
            protective.append(mine)
    fills: dict[str, list[tuple[str, Decimal]]] = {}
    for symbol in sorted(wanted):
        orders = (await admin.orders(symbol, account=account))["orders"]
        client_id_of = {o["orderId"]: o["clientOrderId"] for o in orders}
        for trade in await admin.trades(symbol, account=account):
            fills.setdefault(client_id_of[trade["orderId"]], []).append(
                (str(trade["id"]), Decimal(trade["qty"]))
            )
    attempts = await admin.attempts(account=account)
    return VenueBook(
        positions=positions,
        open_protective=tuple(sorted(protective, key=lambda p: p.client_id)),
        fills={cid: tuple(sorted(rows)) for cid, rows in fills.items()},
        accepted={cid: int(row["accepted"]) for cid, row in attempts.items()},
    )
