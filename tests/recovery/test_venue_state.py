"""A node whose cache knows nothing of what the venue holds: a lost cache, old stops, many symbols."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess, running_emulator
from tests.recovery.cache_reader import read_cache, venue_positions
from tests.recovery.conftest import BTC, ETH, NodeLauncher, node_spec, probe_strategy
from tests.recovery.test_restart import CLIENTS

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

HISTORY_PATHS = ("/fapi/v1/userTrades", "/fapi/v1/allOrders", "/fapi/v1/allAlgoOrders")
LIMITER_CONCURRENCY = 8  # LocalRequestLimiter's default


async def market(venue: EmulatorProcess, symbol: str, side: str, qty: str, cid: str) -> None:
    reply = await venue.admin.place_order(
        {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty, "newClientOrderId": cid}
    )
    assert reply["status"] == "FILLED", reply


async def stop(venue: EmulatorProcess, symbol: str, side: str, qty: str, trigger: str, cid: str) -> None:
    await venue.admin.place_algo_order(
        {
            "symbol": symbol,
            "side": side,
            "type": "STOP_MARKET",
            "quantity": qty,
            "triggerPrice": trigger,
            "reduceOnly": "true",
            "clientAlgoId": cid,
        }
    )


async def test_lost_cache_is_reported_and_only_claimed_instruments_adopted(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    """Redis lost the trader's keys while the venue still holds its position and stop: the node does not
    start fresh quietly; it reports the empty cache against a non-empty venue, adopts what its strategy
    claims (BTC) with the real orders and ids, and leaves what nobody claims (ETH) EXTERNAL, unresolved."""
    await market(venue, "BTCUSDT", "BUY", "0.010", "LOST-ENTRY")
    await stop(venue, "BTCUSDT", "SELL", "0.010", "55000", "LOST-SL")
    await market(venue, "ETHUSDT", "SELL", "0.100", "ETH-ENTRY")
    strategy = probe_strategy(BTC, external_order_claims=[BTC])
    strategy["instruments"] = [BTC, ETH]

    node = await nodes.start(node_spec(venue, trader_id, [strategy]))
    await node.wait_ready()
    detail = node.detail("reconciled")
    assert detail["lost_cache"] is True
    assert node.detail("cache_loaded")["positions"] == 0
    by_instrument = {d["instrument"]: d for d in detail["discrepancies"]}
    assert by_instrument[BTC] | {"venue": "emu"} == {
        "venue": "emu",
        "instrument": BTC,
        "kind": "missing_in_cache",
        "cached_qty": "0",
        "venue_qty": "0.010",
        "resolved": True,
        "resolution": "adopted_venue",
    }
    assert by_instrument[ETH]["kind"] == "missing_in_cache"
    assert (
        by_instrument[ETH]["resolved"] is False and by_instrument[ETH]["resolution"] == "external_unclaimed"
    )
    assert detail["result"] == "unresolved"
    assert await node.terminate() == 0

    cached = read_cache(trader_id)
    owners = {p.instrument_id: p.strategy_id for p in cached.open_positions()}
    assert owners == {BTC: "HubProbe-001", ETH: "EXTERNAL"}
    assert cached.orders["LOST-ENTRY"].strategy_id == "HubProbe-001"
    assert cached.orders["LOST-SL"].strategy_id == "HubProbe-001"
    assert cached.orders["LOST-SL"].status == "ACCEPTED"
    assert cached.net() == {k: v.signed_qty for k, v in (await venue_positions(venue)).items()}
    # Rebuilt from the venue's real fills, nothing invented.
    assert {
        cid: r for cid, r in cached.synthetic_orders().items() if cached.orders[cid].strategy_id != "EXTERNAL"
    } == {}


@pytest.mark.parametrize("client", CLIENTS)
async def test_open_stop_older_than_the_lookback_is_recovered(
    client: str, venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    """Defect 4: a lookback of 60 minutes and a stop placed two hours ago (the cache was lost). The stock
    client drops open algo orders older than the window; ours never filters open orders."""
    await market(venue, "BTCUSDT", "BUY", "0.010", "OLD-ENTRY")
    await stop(venue, "BTCUSDT", "SELL", "0.010", "55000", "OLD-SL")
    await venue.admin.backdate(2 * 3600 * 1000, symbol="BTCUSDT", client_algo_id="OLD-SL")

    spec = node_spec(venue, trader_id, [probe_strategy(BTC)])
    node = await nodes.start(spec, "--exec-client", client, "--reconciliation-lookback-mins", "60")
    await node.wait_ready()
    assert node.detail("reconciled")["open_orders"] == 1
    assert await node.terminate() == 0
    cached = read_cache(trader_id)
    assert "OLD-SL" in cached.orders
    assert (cached.orders["OLD-SL"].status, cached.orders["OLD-SL"].strategy_id) == (
        "ACCEPTED",
        "HubProbe-001",
    )


def max_overlap(entries: list[dict[str, object]]) -> int:
    """Most requests the venue was serving at once (from its request log: end time in ms and duration). The
    end is cut by the log's 1 ms resolution, so that back-to-back requests do not count as overlapping."""
    edges: list[tuple[int, int]] = []
    for entry in entries:
        end_us = int(str(entry["time"])) * 1000 - 1000
        start_us = end_us + 1000 - int(str(entry["duration_us"]))
        edges += [(start_us, 1), (end_us, -1)]
    current = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("client", CLIENTS)
async def test_history_of_many_symbols_is_fetched_concurrently_within_the_limit(
    client: str, workdir: Path, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Defect 3: twelve symbols with positions, 20 ms per history request. The stock client asks one symbol
    after another; ours asks concurrently, never more at once than the limiter allows, each symbol once."""
    async with running_emulator(seed=9, symbols=12) as venue:
        prices = (await venue.admin.state())["prices"]
        symbols = sorted(prices)
        for symbol in symbols:
            await venue.admin.set_position(symbol, "1", prices[symbol]["last"])
        instruments = [f"{s}-PERP.BINANCE" for s in symbols]
        strategy = probe_strategy(instruments[0])
        strategy["instruments"] = instruments
        for path in HISTORY_PATHS:
            await venue.admin.latency(path, 20)
        since = max((int(e["seq"]) for e in await venue.admin.requests()), default=0)

        launcher = NodeLauncher(venue, workdir)
        try:
            node = await launcher.start(node_spec(venue, trader_id, [strategy]), "--exec-client", client)
            await node.wait_until(
                "reconciliation ended", lambda: bool({"reconciled", "recovery_failed"} & set(node.phases()))
            )
            history = [e for e in await venue.admin.requests(since=since) if e["path"] in HISTORY_PATHS]
            per_symbol = {(e["path"], e["params"]["symbol"]) for e in history}
            assert len(history) == len(per_symbol) == 3 * len(symbols)  # each symbol and endpoint once
            peak = max_overlap(history)
            assert 6 <= peak <= LIMITER_CONCURRENCY, f"at most {peak} history requests in flight"
            await node.wait_ready()
            assert await node.terminate() == 0
        finally:
            await launcher.close()
