"""Run one compaction in its own process, so that a test can kill it mid-run (kill -9)."""

from __future__ import annotations

import argparse
import asyncio

import redis.asyncio as aioredis

from supervisor.compaction import compact_trader


async def run(ns: argparse.Namespace) -> None:
    client = aioredis.Redis(port=ns.port, socket_timeout=5)
    try:
        result = await compact_trader(
            client,
            ns.trader_id,
            keep_closed=ns.keep_closed,
            batch_size=ns.batch_size,
            time_budget=60.0,
            wall_clock_ns=lambda: ns.now_ns,
        )
        print(result.summary(), flush=True)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--trader-id", required=True)
    parser.add_argument("--keep-closed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--now-ns", type=int, required=True, help="wall clock for the venue window")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
