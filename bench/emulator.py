"""Benchmark of the venue emulator (prints figures; asserts nothing).

    .venv/bin/python bench/emulator.py [--seconds 3] [--symbols 50]

1. signed GET (`openOrders?symbol`, and `/fapi/v2/account` which lists every symbol): latency p50/p99 one
   request at a time, and requests/s with 8 in flight;
2. order placement with the user-stream event delivered: from sending a MARKET order to receiving its
   ORDER_TRADE_UPDATE FILLED on the user stream; p50/p99 and orders/s;
3. a nautilus-style 50-symbol restart reconciliation (the request set VENUE-FACTS.md lists, with positions,
   open orders, stops and trades in every symbol): emulator time (sum of the server-side handling time of
   those requests, from the request log) against the < 50 ms target, and the client's wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

# Run as a script, this file's directory is first on sys.path and its name would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import aiohttp  # noqa: E402

from emulator.testing import EmulatorProcess, VenueClient, running_emulator  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def show(name: str, latencies_ms: list[float], per_second: float, unit: str) -> None:
    print(
        f"{name:<46} p50 {statistics.median(latencies_ms):6.2f} ms   p99 {pct(latencies_ms, 0.99):6.2f} ms   "
        f"{per_second:8.0f} {unit}/s   (n={len(latencies_ms)})"
    )


async def bench_signed_get(client: VenueClient, seconds: float, path: str, params: dict[str, str]) -> None:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        reply = await client.get(path, params)
        latencies.append((time.perf_counter() - started) * 1000)
        assert reply.status == 200, reply.body
    show(f"signed GET {path}, sequential", latencies, len(latencies) / seconds, "req")

    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            reply = await client.get(path, params)
            assert reply.status == 200
            count += 1

    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    rate = count / (time.perf_counter() - started)
    print(f"{f'signed GET {path}, 8 in flight':<46} {rate:8.0f} req/s   (n={count})")


async def bench_orders(venue: EmulatorProcess, client: VenueClient, seconds: float) -> None:
    key = (await client.post("/fapi/v1/listenKey", sign=False)).body["listenKey"]
    filled: dict[str, asyncio.Future[float]] = {}
    latencies: list[float] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{venue.ws_url}/ws?listenKey={key}") as ws,
    ):

        async def read() -> None:
            async for msg in ws:
                event = msg.json()
                if event.get("e") == "ORDER_TRADE_UPDATE" and event["o"]["X"] == "FILLED":
                    future = filled.pop(event["o"]["c"], None)
                    if future is not None and not future.done():
                        future.set_result(time.perf_counter())

        reader = asyncio.create_task(read(), name="bench.user-stream")
        deadline = time.perf_counter() + seconds
        index = 0
        try:
            while time.perf_counter() < deadline:
                index += 1
                client_id = f"bench-{index}"
                future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                filled[client_id] = future
                started = time.perf_counter()
                reply = await client.post(
                    "/fapi/v1/order",
                    {
                        "symbol": "BTCUSDT",
                        "side": "BUY" if index % 2 else "SELL",
                        "type": "MARKET",
                        "quantity": "0.010",
                        "newClientOrderId": client_id,
                    },
                )
                assert reply.status == 200, reply.body
                delivered = await asyncio.wait_for(future, 5)
                latencies.append((delivered - started) * 1000)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    show("MARKET order -> FILLED event on user stream", latencies, len(latencies) / seconds, "orders")


async def seed_reconciliation_state(venue: EmulatorProcess, client: VenueClient, symbols: list[str]) -> None:
    """In every symbol: a position (two fills), a resting limit, a reduce-only stop."""
    state = await venue.admin.state()
    for symbol in symbols:
        last = Decimal(state["prices"][symbol]["last"])
        info = next(
            s
            for s in (await client.get("/fapi/v1/exchangeInfo", sign=False)).body["symbols"]
            if s["symbol"] == symbol
        )
        filters = {f["filterType"]: f for f in info["filters"]}
        tick = Decimal(filters["PRICE_FILTER"]["tickSize"])
        step = Decimal(filters["LOT_SIZE"]["stepSize"])
        qty = max(step, (Decimal(120) / last / step).to_integral_value() * step)
        for side in ("BUY", "BUY"):
            reply = await client.post(
                "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET", "quantity": str(qty)}
            )
            assert reply.status == 200, (symbol, reply.body)
        below = ((last * Decimal("0.97")) / tick).to_integral_value() * tick
        stop_at = ((last * Decimal("0.9")) / tick).to_integral_value() * tick
        reply = await client.post(
            "/fapi/v1/order",
            {
                "symbol": symbol,
                "side": "BUY",
                "type": "LIMIT",
                "quantity": str(qty),
                "price": str(below),
                "timeInForce": "GTC",
            },
        )
        assert reply.status == 200, (symbol, reply.body)
        reply = await client.post(
            "/fapi/v1/algoOrder",
            {
                "algoType": "CONDITIONAL",
                "symbol": symbol,
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": str(qty * 2),
                "triggerPrice": str(stop_at),
                "reduceOnly": "true",
            },
        )
        assert reply.status == 200, (symbol, reply.body)


async def reconciliation(client: VenueClient, symbols: list[str]) -> int:
    """The requests nautilus 1.231 makes on a restart with cached state (VENUE-FACTS.md), in its order."""
    calls: list[tuple[str, str, dict[str, str], bool]] = [
        ("GET", "/fapi/v1/exchangeInfo", {}, False),
        ("GET", "/fapi/v2/account", {}, True),
        ("GET", "/fapi/v3/positionRisk", {}, True),
        ("GET", "/fapi/v2/account", {"recvWindow": "5000"}, True),
        ("GET", "/fapi/v1/symbolConfig", {}, True),
        ("GET", "/fapi/v1/positionSide/dual", {}, True),
        ("GET", "/fapi/v1/time", {}, False),
        ("POST", "/fapi/v1/listenKey", {}, False),
        ("GET", "/fapi/v3/positionRisk", {}, True),
        ("GET", "/fapi/v3/positionRisk", {}, True),
        ("GET", "/fapi/v3/positionRisk", {}, True),
        ("GET", "/fapi/v1/openOrders", {}, True),
    ]
    # Cached `-PERP` ids and venue ids are both looked up, so every per-symbol call happens twice
    # (VENUE-FACTS.md, upstream defect 1).
    for _ in range(2):
        for symbol in symbols:
            calls.append(("GET", "/fapi/v1/userTrades", {"symbol": symbol}, True))
            calls.append(("GET", "/fapi/v1/allOrders", {"symbol": symbol, "limit": "1000"}, True))
    calls.append(("GET", "/fapi/v1/openAlgoOrders", {}, True))
    for _ in range(2):
        for symbol in symbols:
            calls.append(("GET", "/fapi/v1/allAlgoOrders", {"symbol": symbol, "limit": "1000"}, True))
    for symbol in symbols:
        calls.append(("GET", "/fapi/v3/positionRisk", {"symbol": symbol}, True))
    for method, path, params, signed in calls:
        reply = await client.request(method, path, params, sign=signed)
        assert reply.status == 200, (path, reply.body)
    return len(calls)


async def bench_reconciliation(venue: EmulatorProcess, client: VenueClient, symbols: list[str]) -> None:
    await seed_reconciliation_state(venue, client, symbols)
    last_seq = max(r["seq"] for r in await venue.admin.requests())
    started = time.perf_counter()
    count = await reconciliation(client, symbols)
    wall_ms = (time.perf_counter() - started) * 1000
    log: list[dict[str, Any]] = await venue.admin.requests(since=last_seq)
    server_ms = sum(r["duration_us"] for r in log) / 1000
    weight = sum(r["weight"] for r in log)
    slowest = sorted(log, key=lambda r: r["duration_us"], reverse=True)[:3]
    print(
        f"{len(symbols)}-symbol reconciliation: {count} requests, weight {weight}; "
        f"emulator time {server_ms:.1f} ms (target < 50 ms), client wall time {wall_ms:.0f} ms"
    )
    print("  slowest: " + ", ".join(f"{r['path']} {r['duration_us'] / 1000:.2f} ms" for r in slowest))


async def main(seconds: float, symbol_count: int) -> None:
    async with running_emulator(seed=1, symbols=symbol_count, tick_ms=1000) as venue:
        await venue.admin.set_ratelimit(weight_per_minute=10_000_000, orders_per_minute=10_000_000)
        async with VenueClient(venue.http_url, venue.api_key, venue.api_secret) as client:
            await bench_signed_get(client, seconds, "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
            await bench_signed_get(client, seconds, "/fapi/v2/account", {})  # lists every symbol
            await bench_orders(venue, client, seconds)
    # A fresh venue: the order benchmark leaves thousands of BTCUSDT orders that would dominate the history.
    async with running_emulator(seed=1, symbols=symbol_count, tick_ms=1000) as venue:
        await venue.admin.set_ratelimit(weight_per_minute=10_000_000, orders_per_minute=10_000_000)
        async with VenueClient(venue.http_url, venue.api_key, venue.api_secret) as client:
            symbols = (await venue.admin.health())["symbols"]
            await bench_reconciliation(venue, client, symbols)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--symbols", type=int, default=50, help="symbols listed (and reconciled)")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.symbols))
