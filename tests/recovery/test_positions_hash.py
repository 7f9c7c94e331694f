"""The seed position hash: aggregation (pure) and the writer against a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from recovery.positions_hash import PositionPart, PositionsHash, aggregate, hash_key

BTC = "BTCUSDT-PERP.BINANCE"


def part(
    qty: str, px: str, realized: str = "0", unrealized: str | None = "0", opened: int = 10, last: int = 20
) -> PositionPart:
    return PositionPart(
        instrument_id=BTC,
        signed_qty=Decimal(qty),
        avg_px_open=Decimal(px),
        realized_pnl=Decimal(realized),
        unrealized_pnl=None if unrealized is None else Decimal(unrealized),
        ts_opened=opened,
        ts_last=last,
    )


def test_one_position_as_is() -> None:
    record = aggregate(BTC, [part("0.010", "60000.00", "-0.30", "1.5")])
    assert record is not None
    assert record.fields() == {
        "instrument_id": BTC,
        "side": "LONG",
        "quantity": "0.010",
        "avg_entry_price": "60000.00",
        "unrealized_pnl": "1.5",
        "realized_pnl": "-0.30",
        "ts_opened": "10",
        "ts_last_updated": "20",
    }


def test_several_strategies_net_and_weighted_entry() -> None:
    record = aggregate(
        BTC,
        [
            part("-1", "100", "1", opened=5, last=30),
            part("-3", "200", "2"),
            part("2", "150", unrealized=None),
        ],
    )
    assert record is not None
    assert (record.side, record.quantity, record.avg_entry_price) == ("SHORT", Decimal("2"), Decimal("175"))
    assert (record.realized_pnl, record.unrealized_pnl, record.ts_opened, record.ts_last_updated) == (
        Decimal(3),
        None,
        5,
        30,
    )
    assert record.fields()["unrealized_pnl"] == ""  # not known


def test_flat_means_no_record() -> None:
    assert aggregate(BTC, [part("1", "100"), part("-1", "110")]) is None
    assert aggregate(BTC, []) is None


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.asyncio
@pytest.mark.redis
async def test_writer_applies_changes_in_order_and_sync_removes_stale(redis_client: aioredis.Redis) -> None:
    trader = f"PH{uuid.uuid4().hex[:8].upper()}-001"
    writer = PositionsHash(redis=redis_client, trader_id=trader, venue="emu", timeout_s=2)
    writer.start()
    eth = "ETHUSDT-PERP.BINANCE"
    try:
        record = aggregate(BTC, [part("0.010", "60000.00")])
        assert record is not None
        writer.update(BTC, record)
        writer.update(BTC, None)  # closed right after: the delete must win
        writer.update(BTC, record)
        assert await writer.drain(2)
        assert (await redis_client.hgetall(hash_key(trader, "emu", BTC)))[b"side"] == b"LONG"
        await redis_client.hset(hash_key(trader, "emu", eth), mapping={"side": "SHORT"})  # stale
        writer.sync([record])
        assert await writer.drain(2)
        assert await redis_client.exists(hash_key(trader, "emu", eth)) == 0
        assert await redis_client.exists(hash_key(trader, "emu", BTC)) == 1
        assert writer.failures == 0
    finally:
        await writer.aclose()
        await redis_client.delete(hash_key(trader, "emu", BTC), hash_key(trader, "emu", eth))
