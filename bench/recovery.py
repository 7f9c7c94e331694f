"""Recovery time of a strategy node with 50 open positions and their stops, killed again and again.

    .venv/bin/python bench/recovery.py [--kills 30] [--symbols 50] [--warmup-kills 10]

For each latency the emulator adds per request (0 ms, then 20 ms), and for each exec client (ours, then the
stock nautilus 1.231 Binance client), the benchmark kills the node with SIGKILL (t0 = its own kill), starts
it again from the same cached state, and reads the phases the node reports over the notify protocol
(CLOCK_MONOTONIC, one host). It prints p50/p95 of crash -> reconciled (position recovery) and crash -> READY
(full recovery), and of each phase; the import floor (a process that only starts Python and imports what
the node imports), measured in the same run; and a variant whose strategy warms an EMA of 1,000 bars.

`spare` is ours with a warm spare (supervisor/spares.py): a process that did the imports before the crash
and is handed the node at t0 + the snapshot restore, as the daemon does at detection. After each READY the
next spare starts (its memory is printed), and the next kill waits until it is ready.

The bench plays the supervisor's part itself (detect by pidfd, restore, spawn): bench/detect_restart.py
measures what the daemon adds to that (about 2 ms). Before every start it restores the node's Redis keys to
the snapshot taken once the 50 positions were protected, so every start recovers the same state (the stock
client rewrites the cache on each restart). The emulator's rate limit is raised for the run: 30 back-to-back
restarts of a 50-symbol node would exceed Binance's 2,400/min, which a fleet-wide limiter has to handle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path.pop(0)  # bench/emulator.py would shadow the emulator package
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from emulator.testing import EmulatorProcess, exchange_symbols, order_quantities, running_emulator  # noqa: E402
from supervisor.child import NodeProcess  # noqa: E402
from supervisor.notify_server import NotifyEndpoint  # noqa: E402
from supervisor.spares import SparePool, process_memory  # noqa: E402

STRATEGY = "recovery.examples.hold_many:HoldMany"
REDIS_URL = "redis://127.0.0.1:6379/0"
PHASES = ("cache_loaded", "reconciled", "state_restored", "orders_restored", "warmed", "ready")
# What the node entry point imports before it reports anything (the floor under every recovery).
IMPORTS = (
    "import recovery.node, recovery.lifecycle, recovery.build, recovery.binance.client, "
    "recovery.examples.hold_many"
)
STABLE_SECONDS = 0.5  # a recovered node runs this long before the next kill
START_TIMEOUT = 120.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Run:
    """The phases of one start, in ms since t0 (the kill), and how it ended."""

    phases: dict[str, float] = field(default_factory=dict)
    ready: bool = False
    exit_code: int | None = None
    failure: str = ""


class NodeUnderBench:
    """One strategy node process at a time, started from a spec file, reporting to our notify socket."""

    def __init__(self, work: Path, spec: dict[str, Any], env: dict[str, str], exec_client: str) -> None:
        self.work = work
        self.spec_path = work / f"spec-{exec_client}.json"
        self.spec_path.write_text(json.dumps(spec))
        self.env = env
        self.exec_client = exec_client
        self.process: asyncio.subprocess.Process | None = None
        self._messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.endpoint = NotifyEndpoint(
            work / f"n-{exec_client}.sock", lambda fields, _pid: self._messages.put_nowait(fields)
        )
        self.endpoint.open()
        self.log = (work / f"node-{exec_client}.log").open("ab")

    async def start(self, t0_ns: int) -> Run:
        self._drain_messages()
        argv = [sys.executable, "-m", "recovery.node", "--spec", str(self.spec_path)]
        if self.exec_client == "stock":
            argv += ["--exec-client", "stock"]
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            env={**self.env, "NOTIFY_SOCKET": str(self.endpoint.path), "WATCHDOG_USEC": "30000000"},
            stdout=self.log,
            stderr=self.log,
            cwd=REPO,
            start_new_session=True,
        )
        return await self._follow(t0_ns, self.process.wait())

    def _drain_messages(self) -> None:
        while not self._messages.empty():
            self._messages.get_nowait()

    async def _follow(self, t0_ns: int, exit_code: Any) -> Run:
        run = Run()
        exited = asyncio.ensure_future(exit_code)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    getter = asyncio.create_task(self._messages.get(), name="bench.notify")
                    done, _ = await asyncio.wait({getter, exited}, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        run.exit_code = exited.result()
                        return run
                    fields = getter.result()
                    mono = int(fields.get("X_MONO", time.monotonic_ns()))
                    name = fields.get("X_PHASE")
                    if name:
                        # A phase reported more than once (reconciled per venue) counts at its last report.
                        run.phases[name] = (mono - t0_ns) / 1e6
                        if name.endswith("_failed"):
                            run.failure = name
                    if fields.get("READY") == "1":
                        run.phases["ready"] = (time.monotonic_ns() - t0_ns) / 1e6
                        run.ready = True
                        return run
        finally:
            if not exited.done():
                exited.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await exited

    async def kill(self) -> int:
        """SIGKILL; returns t0 (monotonic ns, taken just before the signal)."""
        t0 = time.monotonic_ns()
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        return t0

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        self.endpoint.close()
        self.log.close()


class SpareNodeUnderBench(NodeUnderBench):
    """Ours, started by handing the node to a warm spare (cold only for the first, unmeasured, start)."""

    def __init__(self, work: Path, spec: dict[str, Any], env: dict[str, str]) -> None:
        super().__init__(work, spec, env, "spare")
        self.node: NodeProcess | None = None
        self._may_start = False
        secrets = {"BENCH_API_KEY", "BENCH_API_SECRET"}  # a spare is started without them, as the daemon does
        self.pool = SparePool(
            name="bench",
            strategies=[STRATEGY],
            env={k: v for k, v in env.items() if k not in secrets},
            cwd=str(REPO),
            wanted=lambda: 1,
            may_start=lambda: self._may_start,
            output=self._write_line,
        )
        self._pool_task = asyncio.create_task(self.pool.run(), name="bench.spares")
        self.spare_memory: list[tuple[int, int]] = []  # (rss, private) bytes of each spare when it was ready
        self.node_memory: list[tuple[int, int]] = []  # the same for the node once READY
        self.spare_ready_s: list[float] = []  # READY -> the next spare ready
        # handoff -> READY: CPU the node used (all threads), and how long its main thread waited for a core
        self.cpu: list[tuple[float, float]] = []

    def _write_line(self, _stream: str, line: str) -> None:
        self.log.write(line.encode() + b"\n")

    def _node_env(self) -> dict[str, str]:
        return {**self.env, "NOTIFY_SOCKET": str(self.endpoint.path), "WATCHDOG_USEC": "30000000"}

    async def spare_ready(self) -> None:
        began = time.monotonic()
        self._may_start = True
        self.pool.poke()
        async with asyncio.timeout(START_TIMEOUT):
            await self.pool.wait_ready()
        self.spare_ready_s.append(time.monotonic() - began)
        rss, private = self.pool.info()[0].rss_bytes, self.pool.info()[0].private_bytes
        if rss is not None and private is not None:
            self.spare_memory.append((rss, private))

    async def start(self, t0_ns: int) -> Run:
        self._drain_messages()
        self._may_start = False  # the next spare waits for READY: it would take a core from this recovery
        args = ["--spec", str(self.spec_path)]
        handoff = await self.pool.take(args, self._node_env(), str(REPO), self._write_line)
        if handoff is None:
            self.node = await NodeProcess.spawn(
                [sys.executable, "-m", "recovery.node", *args],
                env=self._node_env(),
                cwd=REPO,
                on_line=self._write_line,
            )
        else:
            self.node = handoff.process
        cpu_before = cpu_ms(self.node.pid)
        run = await self._follow(t0_ns, asyncio.shield(self.node.exited))
        run.phases["via_spare"] = 1.0 if handoff is not None else 0.0
        if run.ready and handoff is not None:
            after = cpu_ms(self.node.pid)
            if cpu_before is not None and after is not None:
                self.cpu.append((after[0] - cpu_before[0], after[1] - cpu_before[1]))
        if run.ready:
            rss, private = process_memory(self.node.pid)
            if rss is not None and private is not None:
                self.node_memory.append((rss, private))
        return run

    async def kill(self) -> int:
        await self.spare_ready()
        t0 = time.monotonic_ns()
        if self.node is not None and not self.node.exited.done():
            self.node.kill()
            await asyncio.shield(self.node.exited)
            await self.node.drain_and_close()
        return t0

    async def stop(self) -> None:
        if self.node is not None and not self.node.exited.done():
            await self.node.stop(signal.SIGTERM, 30, name="bench")
            await self.node.drain_and_close()
        self._pool_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pool_task
        self.endpoint.close()
        self.log.close()


class CacheSnapshot:
    """DUMP/RESTORE of every Redis key of one trader."""

    def __init__(self, redis: aioredis.Redis, trader_id: str) -> None:
        self.redis = redis
        self.patterns = (f"trader-{trader_id}:*", f"positions:{trader_id}:*")
        self.saved: dict[bytes, bytes] = {}

    async def _keys(self) -> list[bytes]:
        return [k for p in self.patterns async for k in self.redis.scan_iter(match=p, count=1000)]

    async def take(self) -> None:
        for key in await self._keys():
            value = await self.redis.dump(key)
            if value is not None:
                self.saved[key] = value

    async def restore(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            current = await self._keys()
            if current:
                pipe.delete(*current)
            for key, value in self.saved.items():
                pipe.restore(key, 0, value, replace=True)
            await pipe.execute()

    async def drop(self) -> None:
        keys = await self._keys()
        if keys:
            await self.redis.delete(*keys)


def node_spec(
    venue: EmulatorProcess, trader_id: str, symbols: list[str], qty: list[str], warmup: int
) -> dict[str, Any]:
    instruments = [f"{s}-PERP.BINANCE" for s in symbols]
    return {
        "fleet": "bench",
        "node": {
            "name": "bench",
            "trader_id": trader_id,
            "venues": ["emu"],
            "strategies": [
                {
                    "path": STRATEGY,
                    "config": {"instrument_ids": instruments, "quantities": qty, "order_id_tag": "001",
                               "warmup_period": warmup},
                }
            ],
            "ready_timeout": "2m",
        },
        "venues": {
            "emu": {
                "type": "binance_usdm",
                "base_url_http": venue.http_url,
                "base_url_ws": venue.ws_url,
                "api_key": {"env": "BENCH_API_KEY"},
                "api_secret": {"env": "BENCH_API_SECRET"},
            }
        },
        "redis": {"url": REDIS_URL, "timeout": "5s"},
        "state_dir": None,
    }  # fmt: skip


async def import_floor(samples: int, env: dict[str, str]) -> list[float]:
    """Spawn -> the imports done (the child reports CLOCK_MONOTONIC then; its exit is not counted)."""
    code = f"{IMPORTS}\nimport time\nprint(time.monotonic_ns())"
    times = []
    for _ in range(samples):
        started = time.monotonic_ns()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError("the import floor process failed")
        times.append((int(out.decode().split()[-1]) - started) / 1e6)
    return times


async def protected(venue: EmulatorProcess, count: int) -> bool:
    account = next(iter((await venue.admin.state())["accounts"].values()))
    return len(account["positions"]) == count and len(account["open_algo_orders"]) == 2 * count


async def scenario(
    venue: EmulatorProcess, redis: aioredis.Redis, work: Path, env: dict[str, str], *,
    symbols: list[str], warmup: int, kills: int, latencies: tuple[int, ...], clients: tuple[str, ...],
) -> dict[tuple[int, str], list[Run]]:  # fmt: skip
    await venue.admin.reset()  # no positions or orders left from an earlier scenario
    trader_id = f"BENCH{uuid.uuid4().hex[:6].upper()}-001"
    spec = node_spec(venue, trader_id, symbols, await order_quantities(venue, symbols), warmup)
    snapshot = CacheSnapshot(redis, trader_id)
    results: dict[tuple[int, str], list[Run]] = {}
    first = NodeUnderBench(work, spec, env, "fleet")
    try:
        cold = await first.start(time.monotonic_ns())
        if not cold.ready:
            raise RuntimeError(f"cold start failed ({cold}); see {first.log.name}")
        deadline = time.monotonic() + START_TIMEOUT
        while not await protected(venue, len(symbols)):
            if time.monotonic() > deadline:
                raise RuntimeError("the positions and their stops did not all reach the venue")
            await asyncio.sleep(0.2)
        await first.kill()
        await snapshot.take()
    finally:
        await first.stop()
    try:
        for latency in latencies:
            await venue.admin.clear_faults()
            if latency:
                await venue.admin.latency("/fapi/*", latency)
            for client in clients:
                node = (
                    SpareNodeUnderBench(work, spec, env)
                    if client == "spare"
                    else NodeUnderBench(work, spec, env, client)
                )
                runs: list[Run] = []
                try:
                    await snapshot.restore()
                    await node.start(time.monotonic_ns())  # the first start is not measured
                    for _ in range(kills):
                        await asyncio.sleep(STABLE_SECONDS)
                        t0 = await node.kill()
                        await snapshot.restore()
                        runs.append(await node.start(t0))
                finally:
                    await node.stop()
                results[(latency, client)] = runs
                print_runs(f"{latency:>2} ms  {client:<5}", runs)
                if isinstance(node, SpareNodeUnderBench):
                    print_spares(node, runs)
    finally:
        await venue.admin.clear_faults()
        await snapshot.drop()
    return results


def cpu_ms(pid: int) -> tuple[float, float] | None:
    """(user+system CPU of all threads, run-queue wait of the main thread) in ms so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        waited_ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) * 1000 / ticks, waited_ns / 1e6


def print_spares(node: SpareNodeUnderBench, runs: list[Run]) -> None:
    taken = sum(1 for r in runs if r.phases.get("via_spare"))
    line = f"           {taken} of {len(runs)} restarts through a spare"
    if node.spare_memory:
        rss = statistics.median(m[0] for m in node.spare_memory) / 2**20
        private = statistics.median(m[1] for m in node.spare_memory) / 2**20
        line += f"; spare RSS {rss:.0f} MiB ({private:.0f} MiB private)"
    if node.node_memory:
        rss = statistics.median(m[0] for m in node.node_memory) / 2**20
        private = statistics.median(m[1] for m in node.node_memory) / 2**20
        line += f"; the node once READY {rss:.0f} MiB ({private:.0f} MiB private)"
    if node.spare_ready_s:
        line += f"; next spare ready {statistics.median(node.spare_ready_s):.1f} s p50 after READY"
    print(line, flush=True)
    if node.cpu:
        cpu = [c[0] for c in node.cpu]
        waited = [c[1] for c in node.cpu]
        print(
            f"           handoff->READY: the node used {_p50_p95(cpu)} of CPU; its main thread waited "
            f"{_p50_p95(waited)} for a core (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
            flush=True,
        )


def print_runs(label: str, runs: list[Run]) -> None:
    ready = [r for r in runs if r.ready]
    reconciled = [r.phases.get("reconciled", r.phases.get("reconcile_failed")) for r in runs]
    reconciled_ms = [x for x in reconciled if x is not None]
    line = f"{label} n={len(runs):<3} ready {len(ready):>2}/{len(runs):<2}"
    if reconciled_ms:
        line += f"  crash->reconciled {_p50_p95(reconciled_ms)}"
    if ready:
        line += f"  crash->READY {_p50_p95([r.phases['ready'] for r in ready])}"
    failures = sorted({r.failure or f"exit {r.exit_code}" for r in runs if not r.ready})
    if failures:
        line += f"  (not ready: {', '.join(failures)})"
    print(line, flush=True)


def _p50_p95(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.0f} p95 {pct(values, 95):7.0f} ms"


def phase_table(runs: list[Run]) -> list[str]:
    lines = []
    previous = None
    for name in ("spawned", *PHASES):
        values = [r.phases[name] for r in runs if name in r.phases]
        if not values:
            continue
        step = ""
        if previous is not None:
            deltas = [
                r.phases[name] - r.phases[previous] for r in runs if name in r.phases and previous in r.phases
            ]
            step = f"   (+{statistics.median(deltas):6.0f} p50 after {previous})"
        lines.append(
            f"    {name:<16} p50 {statistics.median(values):7.0f}  p95 {pct(values, 95):7.0f} ms{step}"
        )
        previous = name
    return lines


def reconcile_phase(runs: list[Run]) -> list[float]:
    """cache_loaded -> reconciled (or the stock client's reconcile_failed): the reconciliation itself."""
    out = []
    for r in runs:
        end = r.phases.get("reconciled", r.phases.get("reconcile_failed"))
        if end is not None and "cache_loaded" in r.phases:
            out.append(end - r.phases["cache_loaded"])
    return out


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--warmup-kills", type=int, default=10)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument(
        "--quick", action="store_true", help="spare and cold (ours) only, no stock client, no warm-up variant"
    )
    args = parser.parse_args()
    clients = ("fleet", "spare") if args.quick else ("fleet", "spare", "stock")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="nf-rbench-") as tmp:
        work = Path(tmp)
        floor = await import_floor(10, env)
        print(f"import floor (a process that only does: {IMPORTS}): {_p50_p95(floor)}")
        extra = ("--weight-limit", "1000000")
        async with running_emulator(seed=11, symbols=args.symbols, extra_args=extra) as venue:
            env = {**env, "BENCH_API_KEY": venue.api_key, "BENCH_API_SECRET": venue.api_secret}
            symbols = [s["symbol"] for s in await exchange_symbols(venue)][: args.symbols]
            redis = aioredis.Redis.from_url(REDIS_URL, socket_timeout=10)
            try:
                print(
                    f"\n{len(symbols)} positions, a stop-loss and take-profit each; {args.kills} kills a row"
                )
                results = await scenario(
                    venue, redis, work, env, symbols=symbols, warmup=0, kills=args.kills,
                    latencies=(0, 20), clients=clients,
                )  # fmt: skip
                warm: dict[tuple[int, str], list[Run]] = {}
                if not args.quick:
                    print(f"\nsame, with an EMA(1000) to warm from history, {args.warmup_kills} kills, ours")
                    warm = await scenario(
                        venue, redis, work, env, symbols=symbols, warmup=1000, kills=args.warmup_kills,
                        latencies=(0, 20), clients=("fleet",),
                    )  # fmt: skip
            finally:
                await redis.aclose()
        summarize(results, warm, floor)
    return 0


def summarize(
    results: dict[tuple[int, str], list[Run]], warm: dict[tuple[int, str], list[Run]], floor: list[float]
) -> None:
    print("\nphases (ms since the kill), ours:")
    for latency in (0, 20):
        for client in ("fleet", "spare"):
            print(f"  {latency} ms per request, {'cold' if client == 'fleet' else 'through a warm spare'}:")
            for line in phase_table(results[(latency, client)]):
                print(line)
    if warm:
        print("  with EMA(1000) warm-up, 0 ms:")
        for line in phase_table(warm[(0, "fleet")]):
            print(line)
    print("\ntargets:")
    rows = {**results, **{(k[0], "fleet+warmup"): v for k, v in warm.items()}}
    for (latency, client), runs in sorted(rows.items()):
        if client != "stock":
            print(f"  NFR-001 at {latency:>2} ms ({client}): {nfr_001(runs)}")
    ours0 = pct([r.phases["ready"] for r in results[(0, "fleet")] if r.ready], 95)
    above = ours0 - pct(floor, 95)
    verdict = "met" if above <= 500 else "MISSED"
    print(
        f"  recovery above the import floor at 0 ms: READY p95 {ours0:.0f} - floor p95 {pct(floor, 95):.0f}"
    )
    print(f"    = {above:.0f} ms (target <= 500): {verdict}")
    print_spare_targets(results, floor)
    if (20, "stock") not in results:
        return
    ours20 = statistics.median(reconcile_phase(results[(20, "fleet")]))
    stock20 = statistics.median(reconcile_phase(results[(20, "stock")]))
    verdict = "met" if ours20 <= stock20 / 3 else "MISSED"
    print(f"  reconcile phase at 20 ms: ours p50 {ours20:.0f} ms, stock p50 {stock20:.0f} ms,")
    print(f"    ratio {ours20 / stock20:.2f} (target <= 0.33): {verdict}")
    stock = [r for k in ((0, "stock"), (20, "stock")) for r in results[k]]
    print(f"  stock client: {sum(r.ready for r in stock)} of {len(stock)} restarts reached READY")
    print("    (with cached state nautilus' own client fails the node's post-check: VENUE-FACTS defect 1)")


def print_spare_targets(results: dict[tuple[int, str], list[Run]], floor: list[float]) -> None:
    """Spare vs cold vs the import floor at 0 ms: crash -> reconciled <= 400 ms, crash -> READY <= 500 ms."""
    spare, cold = results[(0, "spare")], results[(0, "fleet")]
    reconciled = [r.phases["reconciled"] for r in spare if "reconciled" in r.phases]
    ready = [r.phases["ready"] for r in spare if r.ready]
    if not reconciled or not ready:
        print("  warm spare at 0 ms: MISSED (no spare restart reached READY)")
        return
    cold_reconciled = [r.phases["reconciled"] for r in cold if "reconciled" in r.phases]
    cold_ready = [r.phases["ready"] for r in cold if r.ready]
    for what, values, target, baseline in (
        ("crash->reconciled", reconciled, 400, cold_reconciled),
        ("crash->READY", ready, 500, cold_ready),
    ):
        verdict = "met" if pct(values, 95) <= target else "MISSED"
        print(
            f"  warm spare at 0 ms, {what}: p50 {statistics.median(values):.0f} p95 {pct(values, 95):.0f} ms "
            f"(target p95 <= {target}): {verdict}; cold p95 {pct(baseline, 95):.0f} ms "
            f"(ratio {pct(values, 95) / pct(baseline, 95):.2f}), import floor p95 {pct(floor, 95):.0f} ms"
        )


def nfr_001(runs: list[Run]) -> str:
    reconciled = [r.phases["reconciled"] for r in runs if "reconciled" in r.phases]
    full = [r.phases["ready"] for r in runs if r.ready]
    if len(full) < len(runs) or not reconciled:
        return f"MISSED ({len(runs) - len(full)} of {len(runs)} restarts never became ready)"
    ok = pct(reconciled, 95) < 5000 and pct(full, 95) < 30000
    verdict = "met" if ok else "MISSED"
    position, complete = pct(reconciled, 95), pct(full, 95)
    return f"position p95 {position:.0f} ms (< 5000), full p95 {complete:.0f} ms (< 30000): {verdict}"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
