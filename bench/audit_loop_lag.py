"""Does the venue audit keep the daemon's event loop free? Event-loop lag with audits running, against a
baseline without them, in the same invocation.

    .venv/bin/python bench/audit_loop_lag.py [--nodes 20] [--seconds 5] [--latency-ms 200]

`--nodes` strategy nodes (each on a venue account of its own, holding the position the venue holds) are
audited back to back by one `AuditScheduler` (its waits shortened, so that audits never pause) against the
emulator, which answers positionRisk after `--latency-ms`. Meanwhile a ticker on the loop asks for a 5 ms
sleep over and over; its lateness is the lag every other task of the daemon (the control socket, notify
messages, the watchdog) would see. The first second includes importing ccxt and building one client per
account (once per daemon), so it is shown apart. Needs Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path.pop(0)  # bench/emulator.py would shadow the emulator package
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from emulator.config import AccountSpec  # noqa: E402
from emulator.testing import running_emulator  # noqa: E402
from supervisor.audit.scheduler import AuditScheduler  # noqa: E402
from supervisor.config.loader import parse_fleet  # noqa: E402
from supervisor.events import AuditResult, NodeStatus, PhaseMark, RecoveryReport  # noqa: E402
from supervisor.rate_budget import limits_key, rate_group  # noqa: E402
from supervisor.states import NodeState  # noqa: E402

BTC = "BTCUSDT-PERP.BINANCE"
TICK_S = 0.005


class BusyClock:
    """Real time, but the scheduler's waits (interval, budget) pass at once: audits run back to back."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class Count:
    def __init__(self) -> None:
        self.results: list[AuditResult] = []

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        pass

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        self.results.append(result)


async def lag(seconds: float) -> tuple[list[float], list[float]]:
    """How late each 5 ms sleep woke, in ms: in the first second, and after it."""
    first: list[float] = []
    rest: list[float] = []
    start = time.monotonic()
    while (now := time.monotonic()) < start + seconds:
        await asyncio.sleep(TICK_S)
        (first if now - start < 1.0 else rest).append((time.monotonic() - now - TICK_S) * 1000)
    return first, rest


def figures(name: str, late: list[float]) -> str:
    q = statistics.quantiles(late, n=100)
    worst = max(late)
    return f"{name:<22} p50 {q[49]:6.2f} ms   p95 {q[94]:6.2f} ms   max {worst:7.2f} ms   ({len(late)} ticks)"


async def main(nodes: int, seconds: float, latency_ms: int) -> None:
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    run = uuid.uuid4().hex[:6].upper()
    traders = [f"BENCH{run}{i:02d}-001" for i in range(nodes)]
    accounts = [
        AccountSpec(name=f"a{i}", api_key=f"key{i:02d}" * 4, api_secret=f"secret{i:02d}" * 4)
        for i in range(nodes)
    ]
    env = {f"K{i}": a.api_key for i, a in enumerate(accounts)} | {
        f"S{i}": a.api_secret for i, a in enumerate(accounts)
    }
    async with running_emulator(seed=1, symbols=("BTCUSDT",), accounts=accounts) as venue:
        await venue.admin.set_ratelimit(weight_per_minute=10**9)
        text = "fleet: bench\naudit: {interval: 5s}\nvenues:\n"
        for i, account in enumerate(accounts):
            await venue.admin.set_position("BTCUSDT", "0.010", "60000", account=account.name)
            refs = f"api_key: {{env: K{i}}}, api_secret: {{env: S{i}}}"
            text += f"  emu{i}: {{base_url_http: '{venue.http_url}', {refs}}}\n"
        text += "nodes:\n"
        for i, trader in enumerate(traders):
            text += (
                f"  - {{name: n{i}, trader_id: {trader}, venues: [emu{i}],\n"
                f"     strategies: [{{path: 'x.y:Z', config: {{instrument_id: {BTC}}}}}]}}\n"
            )
        fleet = parse_fleet(text, "bench.yaml")
        group = rate_group(fleet.venues["emu0"], "bench")
        await redis.hset(
            limits_key(group), mapping={"weight": 10**9, "window_ms": 60_000, "recovery_budget": 10**9}
        )
        for i, trader in enumerate(traders):
            await redis.hset(
                f"positions:{trader}:emu{i}:{BTC}",
                mapping={"instrument_id": BTC, "side": "LONG", "quantity": "0.010"},
            )
        count = Count()
        scheduler = AuditScheduler(
            fleet=lambda: fleet,
            redis=lambda: redis,
            call_timeout_s=5.0,
            observer=count,
            status_of=lambda name: NodeStatus(
                name=name,
                trader_id="x",
                venues=("emu",),
                state=NodeState.READY,
                pid=1,
                restarts=0,
                since=0.0,
                started_at=0.0,
                last_exit=None,
            ),
            env_of=lambda node: env,
            host="bench",
            clock=BusyClock(),
        )
        _, baseline = await lag(seconds)
        await venue.admin.latency("/fapi/v3/positionRisk", latency_ms)
        runner = asyncio.create_task(scheduler.run(), name="bench.audits")
        await asyncio.sleep(0)
        for i, trader in enumerate(traders):
            scheduler.recovery_report(
                RecoveryReport(
                    node=f"n{i}",
                    trader_id=trader,
                    venues=("emu",),
                    attempt=1,
                    reason="cold_start",
                    detected_at=None,
                    phases=(),
                    position_recovery_ms=None,
                    full_recovery_ms=None,
                    discrepancies=(),
                    actions=(),
                    result="ready",
                )
            )
        started = time.monotonic()
        warmup, during = await lag(seconds)
        elapsed = time.monotonic() - started
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        for key in [k async for k in redis.scan_iter(match=f"positions:BENCH{run}*")] + [limits_key(group)]:
            await redis.delete(key)
        await redis.aclose()
    matched = sum(1 for r in count.results if r.result == "matched")
    print(f"{nodes} nodes audited back to back for {seconds:g}s, venue positionRisk latency {latency_ms} ms")
    print(f"audits finished: {len(count.results)} ({matched} matched, {len(count.results) / elapsed:.1f}/s)")
    print(figures("baseline (no audits)", baseline))
    print(figures("during audits, 1st s", warmup))
    print(figures("during audits, after", during))
    base95 = statistics.quantiles(baseline, n=100)[94]
    print(f"p95 ratio during/baseline: {statistics.quantiles(during, n=100)[94] / max(base95, 1e-6):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency-ms", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.nodes, options.seconds, options.latency_ms))
