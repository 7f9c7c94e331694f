"""A reboot storm: every strategy node of a host recovering at once against one venue address.

    .venv/bin/python bench/reboot_storm.py [--nodes 20] [--symbols 50] [--baseline-timeout 10m]

The real daemon (`python -m supervisor run`) supervises `--nodes` strategy nodes
(`recovery/examples/hold_many.py`, a position with a stop-loss and a take-profit per symbol), each trading
its own emulator account, all from 127.0.0.1: one address, one REQUEST_WEIGHT budget of the venue's real
2,400 per minute, with 429s escalating to 418 bans (the emulator's default: after 3 refusals in a window, a
ban of 120 s). The fleet opens its positions with the limit raised; then, with the real limit:

- one node: a single node killed alone, its time from the kill to READY (the "one node's recovery" of the
  target);
- kill all: every node killed with SIGKILL at once (a crash of everything, the daemon survives);
- daemon restart: the daemon and every node killed with SIGKILL, and the daemon started again (a reboot);
- the same two storms with `coordination: {enabled: false}`: each node keeps to its own local limiter and
  all reconcile at once (the behaviour before the fleet's budget and gate), as the baseline.

For each storm it prints the time until every node is READY again, the 429s and 418s the venue answered,
failed recoveries (starts that did not reach READY, nodes not READY at the end), the request weight the
venue counted and its peak per venue minute against the limit, and the target: READY within 1.1 x (the
storm's weight / the limit per minute) + one node's recovery. A baseline storm that does not finish within
`--baseline-timeout` is reported as such (bans keep nodes failing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path.pop(0)  # bench/emulator.py would shadow the emulator package
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from bench.daemon_process import start_daemon  # noqa: E402
from bench.recovery import REDIS_URL, STRATEGY  # noqa: E402
from emulator.config import AccountSpec  # noqa: E402
from emulator.testing import EmulatorProcess, exchange_symbols, order_quantities, running_emulator  # noqa: E402
from supervisor import rate_budget  # noqa: E402
from supervisor.config.duration import parse_duration  # noqa: E402
from supervisor.control_client import ControlClient  # noqa: E402

LIMIT_PER_MINUTE = 2400
SETUP_TIMEOUT_S = 600.0
POLL_S = 0.5
REFUSED = (418, 429)


@dataclass
class StormResult:
    name: str
    seconds: float | None  # None: not every node was READY within the timeout
    ready: int
    nodes: int
    refused: Counter[int]
    failed_starts: int
    weight: int
    peak_minute: int
    one_node_s: float
    # The weight the venue counted in each of its minutes the storm touched, and how far into its first
    # minute the storm began (a storm that starts late in a minute has most of a fresh budget soon).
    minutes: list[int] = field(default_factory=list)
    start_offset_s: float = 0.0

    @property
    def target_s(self) -> float:
        return 1.1 * self.weight / LIMIT_PER_MINUTE * 60 + self.one_node_s

    @property
    def failed(self) -> int:
        return self.failed_starts + (self.nodes - self.ready)


@dataclass
class Daemon:
    """The daemon as a child process; its log goes to a file (20 nodes say a lot)."""

    work: Path
    config: Path
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    pids: set[int] = field(default_factory=set)  # every node process seen, to kill whatever is left
    client: ControlClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = ControlClient(self.work / "run" / "control.sock")

    async def start(self) -> None:
        self.starts += 1
        log_path = self.work / f"daemon-{self.starts}.log"
        self.process = await start_daemon(self.config, self.env, log_path, self.client)

    async def nodes(self) -> dict[str, dict[str, Any]]:
        reply = await asyncio.to_thread(self.client.request, {"cmd": "status"})
        nodes = {n["name"]: n for n in reply["nodes"]}
        self.pids |= {int(n["pid"]) for n in nodes.values() if n["pid"]}
        return nodes

    async def kill(self) -> None:
        """SIGKILL the daemon and every node it ran (a host going down)."""
        with contextlib.suppress(OSError, ValueError):
            await self.nodes()
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # each node leads its own process group
        self.pids.clear()


STORMS = ("kill all", "daemon restart")


def fleet_yaml(
    work: Path, venue: EmulatorProcess, plan: dict[str, Any], *, coordinated: bool, share: float | None
) -> str:
    venues = "".join(
        f"""
          emu-{i:02d}:
            base_url_http: {venue.http_url}
            base_url_ws: {venue.ws_url}
            api_key: {{env: KEY_{i}}}
            api_secret: {{env: SECRET_{i}}}"""
        for i in range(plan["nodes"])
    )
    strategy = json.dumps(
        {
            "path": STRATEGY,
            "config": {
                "instrument_ids": [f"{s}-PERP.BINANCE" for s in plan["symbols"]],
                "quantities": plan["quantities"],
                "order_id_tag": "001",
            },
        }
    )
    nodes = "".join(
        f"""
          - name: node-{i:02d}
            trader_id: {plan["prefix"]}-{i:03d}
            venues: [emu-{i:02d}]
            strategies: [{strategy}]"""
        for i in range(plan["nodes"])
    )
    share_setting = f", recovery_share: {share}" if share is not None else ""
    return textwrap.dedent(
        f"""\
        fleet: storm
        runtime_dir: {work}/run
        state_dir: {work}/state
        redis: {{url: "{REDIS_URL}"}}
        mqtt: {{enabled: false}}
        metrics: {{enabled: false}}
        coordination: {{enabled: {str(coordinated).lower()}{share_setting}}}
        venues:{venues}
        defaults:
          restart: {{backoff_initial: 1s, backoff_max: 30s, start_limit: {{burst: 10, window: 10m}}}}
          ready_timeout: 2m
          watchdog: {{timeout: 30s}}
        nodes:{nodes}
        """
    )


async def until_all_ready(
    daemon: Daemon, old_pids: dict[str, int], timeout_s: float
) -> tuple[float | None, dict[str, dict[str, Any]]]:
    """Seconds until every node is READY in a process other than `old_pids`' (None after `timeout_s`), and
    the nodes as last seen."""
    started = time.monotonic()
    nodes: dict[str, dict[str, Any]] = {}
    while time.monotonic() - started < timeout_s:
        with contextlib.suppress(OSError, ValueError):
            nodes = await daemon.nodes()
        if nodes and all(
            n["state"] == "ready" and n["pid"] != old_pids.get(name) for name, n in nodes.items()
        ):
            return time.monotonic() - started, nodes
        await asyncio.sleep(POLL_S)
    return None, nodes


async def protected(venue: EmulatorProcess, accounts: int, symbols: int) -> bool:
    state = (await venue.admin.state())["accounts"]
    return len(state) >= accounts and all(
        len(a["positions"]) == symbols and len(a["open_algo_orders"]) == 2 * symbols for a in state.values()
    )


async def fresh_venue_minute(venue: EmulatorProcess, redis: aioredis.Redis, group: str) -> None:
    """Every storm starts on an unused budget: the venue's counts and bans cleared, the group's shared
    counters too (what it learned of the venue's limits stays)."""
    await venue.admin.set_ratelimit(weight_per_minute=LIMIT_PER_MINUTE, weight_window_s=60, reset=True)
    base = rate_budget.weight_key_base(group)
    keys = [k async for k in redis.scan_iter(match=f"{base}*")]
    if keys:
        await redis.delete(*keys)
    await venue.admin.clear_requests()


def venue_figures(
    log: list[dict[str, Any]], since_ms: int, until_ms: int
) -> tuple[Counter[int], int, int, list[int]]:
    """(refusals by status, weight counted, the peak weight of one venue minute, the weight of each venue
    minute from the storm's first to its last) of the storm's requests."""
    entries = [e for e in log if e["method"] != "WS" and since_ms <= e["time"] <= until_ms]
    refused = Counter(e["status"] for e in entries if e["status"] in REFUSED)
    counted = [e for e in entries if e["status"] not in REFUSED]
    per_minute: Counter[int] = Counter()
    for entry in counted:
        per_minute[entry["time"] // 60_000] += entry["weight"]
    first, last = since_ms // 60_000, until_ms // 60_000
    minutes = [per_minute[m] for m in range(first, last + 1)]
    return refused, sum(e["weight"] for e in counted), max(per_minute.values(), default=0), minutes


async def storm(
    name: str,
    daemon: Daemon,
    venue: EmulatorProcess,
    redis: aioredis.Redis,
    group: str,
    *,
    restart_daemon: bool,
    only: str | None = None,
    timeout_s: float,
    one_node_s: float = 0.0,
    start_at: float | None = None,
) -> StormResult:
    await fresh_venue_minute(venue, redis, group)
    if start_at is not None:
        # Where in the venue's minute a storm begins decides how much of the first minute it can use.
        await asyncio.sleep((start_at - time.time() % 60) % 60)
    before = await daemon.nodes()
    victims = [only] if only else list(before)
    pids = {n: int(before[n]["pid"]) for n in victims}
    restarts_before = {n: int(v["restarts"]) for n, v in before.items()}
    since_ms = time.time_ns() // 1_000_000
    if restart_daemon:
        await daemon.kill()
        await daemon.start()
    else:
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
    seconds, nodes = await until_all_ready(daemon, pids, timeout_s)
    until_ms = time.time_ns() // 1_000_000
    refused, weight, peak, minutes = venue_figures(await venue.admin.requests(), since_ms, until_ms)
    # A kill is one restart. So is a node a new daemon finds dead (re-attach: it carries the counts on and
    # recovers the node with reason `signal`).
    expected = 1
    failed_starts = sum(
        max(0, int(nodes[n]["restarts"]) - restarts_before[n] - expected) for n in victims if n in nodes
    )
    ready = sum(1 for n in victims if n in nodes and nodes[n]["state"] == "ready")
    return StormResult(
        name, seconds, ready, len(victims), refused, failed_starts, weight, peak, one_node_s,
        minutes=minutes, start_offset_s=(since_ms % 60_000) / 1000,
    )  # fmt: skip


async def settle(daemon: Daemon, venue: EmulatorProcess, plan: dict[str, Any], timeout_s: float) -> None:
    """Every node READY and every account holding its protected basket (the state each storm starts from)."""
    seconds, nodes = await until_all_ready(daemon, {}, timeout_s)
    if seconds is None:
        states = {n: v["state"] for n, v in nodes.items()}
        raise RuntimeError(f"the fleet did not come back READY within {timeout_s:.0f}s: {states}")
    deadline = time.monotonic() + timeout_s
    while not await protected(venue, plan["nodes"], len(plan["symbols"])):
        if time.monotonic() > deadline:
            raise RuntimeError("the baskets and their stops did not all reach the venue")
        await asyncio.sleep(1)


async def run(args: argparse.Namespace, work: Path) -> list[StormResult]:
    accounts = [
        AccountSpec(name=f"acct-{i:02d}", api_key=f"key-{i:02d}", api_secret=f"secret-{i:02d}")
        for i in range(args.nodes)
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLEET_LOG_LEVEL": "INFO"}
    env |= {f"KEY_{i}": a.api_key for i, a in enumerate(accounts)}
    env |= {f"SECRET_{i}": a.api_secret for i, a in enumerate(accounts)}
    results: list[StormResult] = []
    redis = aioredis.Redis.from_url(REDIS_URL, socket_timeout=10)
    prefix = f"STORM{uuid.uuid4().hex[:5].upper()}"
    async with running_emulator(seed=17, symbols=args.symbols, accounts=accounts) as venue:
        group = rate_budget.default_rate_group(venue.http_url, rate_budget.host_egress())
        symbols = [s["symbol"] for s in await exchange_symbols(venue)][: args.symbols]
        plan = {
            "nodes": args.nodes,
            "symbols": symbols,
            "quantities": await order_quantities(venue, symbols),
            "prefix": prefix,
        }
        config = work / "fleet.yaml"
        daemon = Daemon(work, config, env)
        try:
            for coordinated in (True, False)[: 1 if args.skip_baseline else 2]:
                label = "coordinated" if coordinated else "baseline (coordination off)"
                config.write_text(
                    fleet_yaml(work, venue, plan, coordinated=coordinated, share=args.recovery_share)
                )
                if daemon.process is None:
                    # The baskets are opened with the limit out of the way: the storms are what is measured.
                    await venue.admin.set_ratelimit(weight_per_minute=1_000_000, reset=True)
                    await daemon.start()
                    await settle(daemon, venue, plan, SETUP_TIMEOUT_S)
                    one = await storm("one node", daemon, venue, redis, group, restart_daemon=False,
                                      only="node-00", timeout_s=300)  # fmt: skip
                    if one.seconds is None:
                        raise RuntimeError("a single node did not recover within 300 s")
                    one_node_s = one.seconds
                    results.append(one)
                    print_result(one, flush=True)
                else:
                    await daemon.kill()  # the new fleet.yaml takes effect with the next daemon
                    await fresh_venue_minute(venue, redis, group)
                    await daemon.start()
                    await settle(daemon, venue, plan, SETUP_TIMEOUT_S)
                timeout = args.timeout_s if coordinated else args.baseline_timeout_s
                storms = [s for s in (("kill all", False), ("daemon restart", True)) if s[0] in args.storms]
                for name, restart_daemon in storms:
                    result = await storm(f"{name}, {label}", daemon, venue, redis, group,
                                         restart_daemon=restart_daemon, timeout_s=timeout,
                                         one_node_s=one_node_s, start_at=args.start_at)  # fmt: skip
                    results.append(result)
                    print_result(result, flush=True)
                    if result.seconds is None:
                        await daemon.kill()  # the next storm starts from a settled fleet
                        await fresh_venue_minute(venue, redis, group)
                        await daemon.start()
                        await settle(daemon, venue, plan, SETUP_TIMEOUT_S)
        finally:
            with contextlib.suppress(Exception):
                await daemon.kill()
            await forget(redis, prefix, group)
            await redis.aclose()
    return results


async def forget(redis: aioredis.Redis, prefix: str, group: str) -> None:
    for pattern in (f"*{prefix}-*", f"{rate_budget.KEY_PREFIX}:*{group}*"):
        keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
        if keys:
            await redis.delete(*keys)


def print_result(result: StormResult, *, flush: bool = False) -> None:
    took = f"{result.seconds:7.1f}s" if result.seconds is not None else "  never"
    target = f"target {result.target_s:6.1f}s" if result.one_node_s else ""
    print(
        f"{result.name:<42} {took} {result.ready:>3}/{result.nodes:<3} "
        f"429s {result.refused[429]:>5}  418s {result.refused[418]:>5}  failed {result.failed:>3}  "
        f"weight {result.weight:>6}  peak/min {result.peak_minute:>5}/{LIMIT_PER_MINUTE}  {target}",
        flush=flush,
    )
    if len(result.minutes) > 1:
        print(
            f"{'':<42} began {result.start_offset_s:4.1f}s into a venue minute; weight per venue minute: "
            + " ".join(str(w) for w in result.minutes),
            flush=flush,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--timeout", default="20m", help="a coordinated storm's bound")
    parser.add_argument("--baseline-timeout", default="10m", help="a baseline storm's bound")
    parser.add_argument(
        "--recovery-share", type=float, help="coordination.recovery_share (default: fleet.yaml's)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="only the coordinated storms")
    parser.add_argument(
        "--storm",
        dest="storms",
        action="append",
        choices=STORMS,
        help="run only this storm (repeatable; default: both)",
    )
    parser.add_argument(
        "--start-at",
        type=float,
        help="begin each storm this many seconds into a venue minute (default: once the fleet is ready)",
    )
    parser.add_argument(
        "--keep", type=Path, help="a directory for the daemon logs and fleet.yaml, kept afterwards"
    )
    args = parser.parse_args()
    args.storms = args.storms or list(STORMS)
    args.timeout_s = float(parse_duration(args.timeout))
    args.baseline_timeout_s = float(parse_duration(args.baseline_timeout))
    print(f"reboot storm: {args.nodes} nodes x {args.symbols} symbols, one address, "
          f"{LIMIT_PER_MINUTE} weight/min, bans on")  # fmt: skip
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="nf-storm-", dir="/tmp") as tmp:
            results = asyncio.run(run(args, Path(tmp)))
    print("\nsummary (until every node READY; target: 1.1 x weight / limit per minute + one node's recovery)")
    for result in results:
        print_result(result)
    coordinated = [r for r in results if "coordinated" in r.name]
    met = all(r.seconds is not None and r.seconds <= r.target_s and r.failed == 0 and not r.refused
              for r in coordinated)  # fmt: skip
    print(f"coordinated storms {'meet' if met else 'MISS'} the target (0 bans, 0 failures, READY in time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
