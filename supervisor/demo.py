"""`make demo`: the example fleet (three EMA-cross nodes) against the venue emulator, a kill -9 at a random
moment, and the recovery as the supervisor reports it, with the invariant check. Runs until Ctrl-C.

It starts what it needs: the emulator on fleet.yaml's port (8900) with one account per node, and the daemon
with its runtime and state in a temporary directory. Redis and Mosquitto are the ones on 127.0.0.1 that
`make demo` made sure of; the demo traders' keys from an earlier run are cleared first. The daemon's own log
(and every node's output) goes to a file, whose path is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from emulator.admin import AdminClient
from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from supervisor.cli import render_status
from supervisor.config import load_fleet, resolve_paths, topic_prefix
from supervisor.config.schema import FleetSpec
from supervisor.emulated_fleet import FleetDaemon, RecoveryReports, bounded_poll, forget_traders

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "fleet.yaml"
EMULATOR_PORT = 8900
# The emulator's demo accounts, one per venue entry of fleet.yaml (nothing real).
ACCOUNTS = {"A": "emulator-a", "B": "emulator-b", "C": "emulator-c"}
WAIT = 120.0  # seconds for any one step before the demo gives up and says what it waited for


def say(text: str = "") -> None:
    print(text, flush=True)


def demo_env(work: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "RUNTIME_DIRECTORY": str(work / "run"),
        "STATE_DIRECTORY": str(work / "state"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for letter in ACCOUNTS:
        env[f"DEMO_{letter}_API_KEY"] = f"demo-key-{letter.lower()}"
        env[f"DEMO_{letter}_API_SECRET"] = f"demo-secret-{letter.lower()}"
    return env


def demo_accounts(env: dict[str, str]) -> list[AccountSpec]:
    return [
        AccountSpec(
            name=f"demo-{letter.lower()}",
            api_key=env[f"DEMO_{letter}_API_KEY"],
            api_secret=env[f"DEMO_{letter}_API_SECRET"],
        )
        for letter in ACCOUNTS
    ]


async def poll(what: str, check: Any) -> Any:
    """Bounded wait for something the demo can only ask about (the venue's or the daemon's state)."""
    return await bounded_poll(f"demo: {what}", check, within=WAIT, interval=0.2)


async def run_demo(
    spec: FleetSpec, venue: EmulatorProcess, daemon: FleetDaemon, reports: RecoveryReports
) -> None:
    admin = venue.admin
    say("demo: waiting for the nodes to connect, reconcile and warm up (cold start) ...")
    nodes = await poll("every node ready", lambda: _all_ready(daemon))
    say("\n$ fleet status")
    say(render_status(list(nodes.values()), now=time.time()))

    say("\ndemo: closing the current 1-minute bar: each EMA-cross enters with a stop-loss and take-profit")
    symbols = {s.config["instrument_id"].split("-")[0] for n in spec.nodes for s in n.strategies or ()}
    streams = {f"{symbol.lower()}@kline_1m" for symbol in symbols}
    await poll("every node's live bars subscribed", lambda: _subscribed(admin, streams))
    await admin.close_bar()
    await poll(
        "a position and two protective orders on every account", lambda: _every_account_protected(admin)
    )
    await show_venue(admin)

    victim = random.choice(sorted(nodes))
    pause = random.uniform(1.0, 5.0)
    say(f"\ndemo: in {pause:.1f}s, kill -9 node {victim} (pid {nodes[victim]['pid']}) at a random moment")
    await asyncio.sleep(pause)
    mark = reports.mark()
    os.kill(nodes[victim]["pid"], signal.SIGKILL)
    report = await reports.next_report(victim, after=mark, within=WAIT)
    show_report(report)
    node = spec.node(victim)
    await check_invariants(spec, admin, victim, node.trader_id, node.venues[0])
    say("\n$ fleet status")
    say(render_status(list((await daemon.nodes()).values()), now=time.time()))


async def _all_ready(daemon: FleetDaemon) -> dict[str, dict[str, Any]] | None:
    nodes = await daemon.nodes()
    return nodes if nodes and all(n["state"] == "ready" for n in nodes.values()) else None


async def _subscribed(admin: AdminClient, streams: set[str]) -> bool:
    return streams <= set((await admin.state())["subscriptions"])


async def _every_account_protected(admin: AdminClient) -> bool:
    accounts = (await admin.state())["accounts"]
    return all(len(a["positions"]) == 1 and len(a["open_algo_orders"]) == 2 for a in accounts.values())


async def show_venue(admin: AdminClient) -> None:
    accounts = (await admin.state())["accounts"]
    for name, account in sorted(accounts.items()):
        for symbol, position in account["positions"].items():
            stops = ", ".join(
                f"{a['orderType']} {a['triggerPrice']} ({a['clientAlgoId']})"
                for a in account["open_algo_orders"]
            )
            say(f"  venue {name}: {symbol} {position['amount']} @ {position['entry_price']}; {stops}")


def show_report(report: dict[str, Any]) -> None:
    say(
        f"\ndemo: recovery report of {report['node']} (published on MQTT .../nodes/{report['node']}/recovery)"
    )
    say(f"  attempt {report['attempt']}, reason {report['reason']}, result {report['result']}")
    if report["error"]:
        say(f"  error: {report['error']}")
    for phase in report["phases"]:
        ms = phase["ms_since_detection"]
        say(f"  {phase['phase']:<16} {ms:>9.1f} ms after the crash was detected")
    say(f"  position recovery {report['position_recovery_ms']:.0f} ms (detected -> reconciled)")
    say(f"  full recovery     {report['full_recovery_ms']:.0f} ms (detected -> ready)")
    for item in report["discrepancies"]:
        say(f"  discrepancy: {item}")
    for action in report["actions"]:
        say(
            f"  action: {action['action']} {action.get('instrument', '')} {action.get('client_order_id', '')}"
        )


async def check_invariants(
    spec: FleetSpec, admin: AdminClient, node: str, trader_id: str, venue: str
) -> None:
    """The node's positions equal the venue's, and every protective order exists exactly once."""
    account = f"demo-{venue[-1]}"
    state = (await admin.state())["accounts"][account]
    client = aioredis.Redis.from_url(
        spec.redis.url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True
    )
    cached: list[dict[str, str]] = []
    try:
        async for key in client.scan_iter(match=f"positions:{trader_id}:{venue}:*"):
            cached.append({str(k): str(v) for k, v in (await client.hgetall(key)).items()})
    finally:
        await client.aclose()
    say(f"\ndemo: invariant check for {node} (venue account {account} vs the node's cache in Redis)")
    ok = True
    for symbol, position in state["positions"].items():
        mine = next((h for h in cached if h["instrument_id"].startswith(symbol)), {})
        venue_qty, venue_px = Decimal(position["amount"]), Decimal(position["entry_price"])
        sign = -1 if mine.get("side") == "SHORT" else 1
        node_qty = Decimal(mine.get("quantity", "0")) * sign
        node_px = Decimal(mine.get("avg_entry_price", "0"))
        same = node_qty == venue_qty and node_px == venue_px
        ok &= same
        mark = "ok " if same else "BAD"
        say(f"  {mark} position {symbol}: venue {venue_qty} @ {venue_px}, node {node_qty} @ {node_px}")
    attempts = await admin.attempts(account=account)
    for algo in state["open_algo_orders"]:
        count = attempts.get(algo["clientAlgoId"], {}).get("accepted", 0)
        ok &= count == 1
        mark = "ok " if count == 1 else "BAD"
        say(f"  {mark} {algo['orderType']} {algo['clientAlgoId']}: accepted {count} time(s) by the venue")
    say(f"  invariants {'hold' if ok else 'VIOLATED'}")


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nf-demo-") as tmp:
        work = Path(tmp)
        env = demo_env(work)
        spec = load_fleet(EXAMPLE, env)
        cleared = await forget_traders(spec.redis, [n.trader_id for n in spec.nodes], env)
        say(f"demo: cleared {cleared} Redis keys of the demo traders from an earlier run")
        async with running_emulator(
            seed=random.randrange(1, 10_000),
            accounts=demo_accounts(env),
            port=EMULATOR_PORT,
            price_mode="walk",
            funding="auto",
            tick_ms=1000,
            workdir=work,
        ) as venue:
            say(f"demo: venue emulator on port {EMULATOR_PORT} (log {venue.log_path})")
            log = work / "fleet.log"
            say(f"demo: fleet run --config {EXAMPLE.relative_to(REPO)} (daemon and node log {log})")
            reports = RecoveryReports(topic_prefix(spec))
            follower = asyncio.create_task(reports.run(spec.mqtt, env), name="demo.mqtt")
            paths = resolve_paths(spec, env)
            daemon = FleetDaemon(
                config=EXAMPLE,
                control_socket=paths.control_socket,
                work=work,
                env=env,
                log=work / "fleet.log",
            )
            try:
                await reports.subscribed()
                await daemon.start()
                await run_demo(spec, venue, daemon, reports)
                prefix = topic_prefix(spec)
                say("\ndemo: the fleet keeps running. In another shell:")
                say(f"  mosquitto_sub -t '{prefix}/#' -v      # states, recovery reports, events")
                say(f"  curl -s {spec.metrics.listen}/metrics | grep ^fleet_")
                # The daemon announces itself; the CLI finds it from the repository without FLEET_SOCKET.
                say("  .venv/bin/fleet status      # also: fleet logs NODE -f, fleet restart NODE")
                say("Ctrl-C stops everything.")
                await daemon.wait()
            except (KeyboardInterrupt, asyncio.CancelledError):
                pass
            finally:
                code = await daemon.stop()
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
                say(f"demo: stopped (daemon exit {code})")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
