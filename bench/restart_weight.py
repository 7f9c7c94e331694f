"""What one restart of a strategy node costs in request weight, from the emulator's request log.

    .venv/bin/python bench/restart_weight.py [--symbols 1,50]

For each basket size (`recovery/examples/hold_many.py`: a position with a stop-loss and a take-profit per
symbol), the node is started three ways and the weight of every request it sent from spawn to READY is
summed as the venue counts it (the emulator's request log; order placements, weight 0, left out):

- fresh: an empty cache and nothing at the venue (a new node);
- restart with its cache: killed with SIGKILL and started again (the common case after a crash or reboot);
- lost cache: the venue still holds the positions and stops, Redis holds nothing of the trader.

It then prints the weight per endpoint of the fresh start and the cached restart of the largest basket. The
venue's limit is raised for the run, so that nothing waits: these are costs, not times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path.pop(0)  # bench/emulator.py would shadow the emulator package
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from bench.recovery import REDIS_URL, CacheSnapshot, NodeUnderBench, node_spec, protected  # noqa: E402
from emulator.testing import EmulatorProcess, exchange_symbols, order_quantities, running_emulator  # noqa: E402

PROTECT_TIMEOUT_S = 120.0
# A fresh basket's entries go out as trading starts, at READY: trading, not recovery (and weight 0).
ORDER_PLACEMENTS = {("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")}


async def start_and_weigh(node: NodeUnderBench, venue: EmulatorProcess) -> list[dict[str, Any]]:
    """Start the node, wait for READY; the venue's log entries of its requests up to READY."""
    await venue.admin.clear_requests()
    run = await node.start(time.monotonic_ns())
    ready_ms = time.time_ns() // 1_000_000
    if not run.ready:
        raise RuntimeError(f"the node did not become ready ({run}); see {node.log.name}")
    return [
        e
        for e in await venue.admin.requests()
        if e["method"] != "WS" and e["time"] <= ready_ms and (e["method"], e["path"]) not in ORDER_PLACEMENTS
    ]


async def basket(
    venue: EmulatorProcess, redis: aioredis.Redis, work: Path, env: dict[str, str], symbols: list[str]
) -> dict[str, list[dict[str, Any]]]:
    await venue.admin.reset()
    trader_id = f"WEIGHT{uuid.uuid4().hex[:6].upper()}-001"
    spec = node_spec(venue, trader_id, symbols, await order_quantities(venue, symbols), 0)
    snapshot = CacheSnapshot(redis, trader_id)
    rows: dict[str, list[dict[str, Any]]] = {}
    node = NodeUnderBench(work, spec, env, "fleet")
    try:
        rows["fresh"] = await start_and_weigh(node, venue)
        deadline = time.monotonic() + PROTECT_TIMEOUT_S
        while not await protected(venue, len(symbols)):
            if time.monotonic() > deadline:
                raise RuntimeError("the positions and their stops did not all reach the venue")
            await asyncio.sleep(0.2)
        await node.kill()
        await snapshot.take()
        rows["restart with its cache"] = await start_and_weigh(node, venue)
        await node.kill()
        await snapshot.drop()
        rows["lost cache"] = await start_and_weigh(node, venue)
    finally:
        await node.stop()
        await snapshot.drop()
    return rows


def by_endpoint(log: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    counts: Counter[str] = Counter()
    weights: Counter[str] = Counter()
    for entry in log:
        key = f"{entry['method']} {entry['path']}"
        counts[key] += 1
        weights[key] += entry["weight"]
    return [(key, counts[key], weights[key]) for key, _ in weights.most_common()]


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", default="1,50", help="basket sizes, comma separated")
    args = parser.parse_args()
    sizes = [int(n) for n in args.symbols.split(",")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="nf-wbench-") as tmp:
        extra = ("--weight-limit", "1000000")
        async with running_emulator(seed=11, symbols=max(sizes), extra_args=extra) as venue:
            env = {**env, "BENCH_API_KEY": venue.api_key, "BENCH_API_SECRET": venue.api_secret}
            names = [s["symbol"] for s in await exchange_symbols(venue)]
            redis = aioredis.Redis.from_url(REDIS_URL, socket_timeout=10)
            try:
                for size in sizes:
                    results[size] = await basket(venue, redis, Path(tmp), env, names[:size])
            finally:
                await redis.aclose()
    print("request weight of one start, spawn -> READY (the venue's count; limit 2,400 per minute)")
    print(f"{'symbols':>7}  {'start':<24} {'requests':>8} {'weight':>7}")
    for size, rows in results.items():
        for name, log in rows.items():
            print(f"{size:>7}  {name:<24} {len(log):>8} {sum(e['weight'] for e in log):>7}")
    for name in ("fresh", "restart with its cache"):
        print(f"\n{name}, {max(sizes)} symbols, by endpoint:")
        for key, count, weight in by_endpoint(results[max(sizes)][name]):
            print(f"  {key:<36} {count:>5} requests  weight {weight:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
