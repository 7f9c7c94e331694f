"""What a nautilus TradingNode pays at start to load its Redis cache, before and after compaction.

    .venv/bin/python bench/cache_load.py [--sizes 0,1000,10000] [--reps 5] [--keep-closed 100]

For each size N it starts a private redis-server (never the shared 6379), writes a real nautilus 1.231
cache through nautilus' own ExecutionEngine and CacheDatabaseAdapter (tests/supervisor/nautilus_cache.py): N
closed HEDGING round trips of 5 orders each (entry, add-on, stop canceled at the close, take-profit, an entry
canceled unfilled), one AccountState per fill as a venue's ACCOUNT_UPDATE gives, plus 10 open positions with
their open stop and take-profit and 5 resting orders. Then, each time in a fresh process:
- before: `TradingNode(config)` (which runs `exec_engine.load_cache()`), `--reps` times;
- `compact_trader` (first run: the whole backlog; second run: what every later node start pays);
- after: `TradingNode(config)` again, `--reps` times, checked to load the same open positions and orders with
  nautilus' integrity check passing.
It prints p50/p95 of the constructor, the per-item cost over the N=0 baseline, and before/after ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from supervisor.compaction import DEFAULT_KEEP_CLOSED, CompactionResult, compact_trader  # noqa: E402
from tests.supervisor.nautilus_cache import BASE_TS_NS, Scenario, load, populate  # noqa: E402
from tests.supervisor.private_redis import private_redis  # noqa: E402

TRADER_ID = "BENCH-001"
# The written history is dated from 2026-01-01; compaction runs "a year later", so that the venue window
# (closed orders younger than 8 days stay) holds none of it, whatever this machine's clock says.
NOW_NS = BASE_TS_NS + 365 * 86_400 * 1_000_000_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def fmt(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):7.3f} s  p95 {percentile(values, 95):7.3f} s"


async def count_items(port: int) -> dict[str, int]:
    client = aioredis.Redis(port=port)
    try:
        counts = {"orders": 0, "positions": 0, "account_events": 0}
        for kind in ("orders", "positions"):
            async for _ in client.scan_iter(match=f"trader-{TRADER_ID}:{kind}:*", count=5000):
                counts[kind] += 1
        async for key in client.scan_iter(match=f"trader-{TRADER_ID}:accounts:*", count=5000):
            counts["account_events"] += await client.llen(key)
        return counts
    finally:
        await client.aclose()


async def compact(port: int, keep_closed: int) -> CompactionResult:
    client = aioredis.Redis(port=port, socket_timeout=5)
    try:
        return await compact_trader(
            client, TRADER_ID, keep_closed=keep_closed, time_budget=120.0, wall_clock_ns=lambda: NOW_NS
        )
    finally:
        await client.aclose()


def open_state(loaded: dict[str, Any]) -> tuple[Any, ...]:
    return (
        {p: loaded["positions"][p] for p in loaded["positions_open"]},
        {o: loaded["orders"][o] for o in loaded["orders_open"]},
    )


def measure(port: int, reps: int) -> tuple[list[float], dict[str, Any]]:
    times = []
    last: dict[str, Any] = {}
    for _ in range(reps):
        last = load(port, TRADER_ID)
        if not last["integrity"]:
            raise SystemExit(f"nautilus integrity check failed:\n{last['log'][-3000:]}")
        times.append(last["construct_seconds"])
    return times, last


def run_size(size: int, reps: int, keep_closed: int) -> dict[str, Any]:
    with private_redis() as port:
        scenario = Scenario(trader_id=TRADER_ID, closed_positions=size, open_positions=10, open_limits=5)
        populated = populate(port, scenario)
        before_items = asyncio.run(count_items(port))
        before, loaded_before = measure(port, reps)
        first = asyncio.run(compact(port, keep_closed))
        second = asyncio.run(compact(port, keep_closed))
        after_items = asyncio.run(count_items(port))
        after, loaded_after = measure(port, reps)
        same_open = open_state(loaded_before) == open_state(loaded_after)
        kept_identical = all(
            loaded_after["orders"][c] == loaded_before["orders"][c] for c in loaded_after["orders"]
        ) and all(
            loaded_after["positions"][p] == loaded_before["positions"][p] for p in loaded_after["positions"]
        )
    row = {
        "size": size,
        "populate": populated["seconds"],
        "before_items": before_items,
        "after_items": after_items,
        "before": before,
        "after": after,
        "first": first,
        "second": second,
        "same_open": same_open,
        "kept_identical": kept_identical,
    }
    print_row(row)
    return row


def items(counts: dict[str, int]) -> int:
    return sum(counts.values())


def describe(c: dict[str, int]) -> str:
    counts = f"{c['positions']} positions, {c['orders']} orders, {c['account_events']} account events"
    return f"{counts} ({items(c)} items)"


def print_row(row: dict[str, Any]) -> None:
    b, a = row["before_items"], row["after_items"]
    first: CompactionResult = row["first"]
    second: CompactionResult = row["second"]
    print(f"\n== {row['size']} closed positions (written in {row['populate']:.1f} s)")
    print(f"  cache before: {describe(b)}")
    print(f"  TradingNode() before: {fmt(row['before'])}")
    print(f"  compaction, first run:  {first.duration:.3f} s ({first.summary()})")
    print(f"  compaction, second run: {second.duration:.3f} s (nothing left to move; every later start)")
    print(f"  kept: {dict(first.kept)}")
    print(f"  cache after:  {describe(a)}")
    print(f"  TradingNode() after:  {fmt(row['after'])}")
    print(
        f"  open positions/orders identical after reload: {row['same_open']}; "
        f"every kept item identical: {row['kept_identical']}; integrity check passed on every load"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="0,1000,10000", help="closed positions per run, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep-closed", type=int, default=DEFAULT_KEEP_CLOSED)
    ns = parser.parse_args()
    sizes = [int(s) for s in ns.sizes.split(",")]
    if 0 not in sizes:
        sizes.insert(0, 0)  # the baseline the per-item cost is measured against
    print(f"nautilus cache load, {ns.reps} loads per point, keep_closed={ns.keep_closed}")
    rows = [run_size(size, ns.reps, ns.keep_closed) for size in sizes]

    base = percentile(rows[0]["before"], 50)
    base_items = items(rows[0]["before_items"])
    print("\n== summary (TradingNode() constructor, p50; per item = over the empty-history baseline)")
    header = ("closed pos", "items", "before", "ms/item", "after", "items", "ratio")
    widths = (10, 7, 9, 8, 9, 6, 7)
    print("  " + " ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for row in rows:
        before, after = percentile(row["before"], 50), percentile(row["after"], 50)
        extra = items(row["before_items"]) - base_items
        per_item = f"{(before - base) / extra * 1000:8.3f}" if extra > 0 else f"{'-':>8}"
        print(
            f"  {row['size']:>10} {items(row['before_items']):>7} {before:>8.3f}s {per_item} "
            f"{after:>8.3f}s {items(row['after_items']):>6} {before / after:>6.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
