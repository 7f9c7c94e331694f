"""One owner per trader_id across hosts, end to end: two supervisors (two host ids, two state directories) run
one fleet.yaml with one strategy node against the emulator. The node runs once, counted by processes and by
the venue's orders. The owning supervisor is frozen (`kill -STOP`) past the lease's TTL: its node halts by
itself, the other host takes the lease over and recovers the node, and the frozen side's node had halted
before the new owner's node traded (both sides' timestamps)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess, running_emulator
from tests.e2e.conftest import BTC, ENTRY, PROBE, forget
from tests.recovery.scenarios import until
from tests.supervisor.daemon_harness import DaemonUnderTest
from tests.supervisor.status.conftest import Watcher, watching

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]

TTL_S = 3.0
STOP_MOVE_PRICE = "60200.0"


def fleet_yaml(venue: EmulatorProcess, trader_id: str, prefix: str) -> str:
    """No runtime_dir/state_dir: each supervisor takes its own from $RUNTIME_DIRECTORY/$STATE_DIRECTORY."""
    return textwrap.dedent(
        f"""\
        fleet: e2e-leases
        mqtt: {{host: 127.0.0.1, port: 1883, topic_prefix: {prefix}}}
        metrics: {{enabled: false}}
        leases: {{ttl: {TTL_S:g}s}}
        spares: 0  # the processes are counted by their argv, which a spare-born node does not carry
        venues:
          emu:
            base_url_http: {venue.http_url}
            base_url_ws: {venue.ws_url}
            api_key: {{env: EMU_API_KEY}}
            api_secret: {{env: EMU_API_SECRET}}
        defaults:
          restart: {{backoff_initial: 500ms, backoff_max: 2s}}
          stop: {{grace: 5s}}
          watchdog: {{timeout: 10s}}
          ready_timeout: 40s
          placement: {{hosts: [host-a, host-b]}}
        nodes:
          - name: probe
            trader_id: {trader_id}
            venues: [emu]
            strategies:
              - path: {PROBE}
                config:
                  instrument_id: {BTC}
                  order_id_tag: '001'
                  entry_price: '{ENTRY}'
                  stop_move_price: '{STOP_MOVE_PRICE}'
                  stop_move_to: '59000'
        """
    )


class TwoHosts:
    def __init__(
        self, base: Path, venue: EmulatorProcess, mqtt: Watcher, prefix: str, trader_id: str
    ) -> None:
        self.base, self.venue, self.mqtt, self.prefix, self.trader_id = base, venue, mqtt, prefix, trader_id
        self.config = base / "fleet.yaml"
        self.daemons: dict[str, DaemonUnderTest] = {}

    def daemon(self, host: str) -> DaemonUnderTest:
        home = self.base / host
        home.mkdir(exist_ok=True)
        env = {
            "FLEET_HOST_ID": host,
            "RUNTIME_DIRECTORY": str(home / "run"),
            "STATE_DIRECTORY": str(home / "state"),
            "EMU_API_KEY": self.venue.api_key,
            "EMU_API_SECRET": self.venue.api_secret,
        }
        daemon = DaemonUnderTest(home, self.config, env=env)
        self.daemons[host] = daemon
        return daemon

    async def probe(self, host: str) -> dict[str, Any]:
        reply = await self.daemons[host].request({"cmd": "status"})
        node: dict[str, Any] = next(n for n in reply["local_nodes"] if n["name"] == "probe")
        return node

    async def wait_probe(self, host: str, state: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (node := await self.probe(host))["state"] != state:
            assert time.monotonic() < deadline, f"probe on {host}: {node['state']}, not {state}"
            await asyncio.sleep(0.05)
        return node

    def node_processes(self) -> list[int]:
        """Every `recovery.node` process of this test, on either host (by the spec file it was handed)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if b"recovery.node" in argv and any(str(self.base).encode() in a for a in argv) and state != "Z":
                found.append(int(entry.name))
        return found


def process_ended(pid: int) -> bool:
    """Exited (a zombie while its frozen parent cannot reap it) or gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
async def two_hosts(short_dir: Path) -> AsyncIterator[TwoHosts]:
    trader_id = f"E2ELEASE{uuid.uuid4().hex[:6].upper()}-001"
    prefix = f"nautilus-fleet-test/{uuid.uuid4().hex[:12]}"
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    async with (
        running_emulator(seed=5, symbols=("BTCUSDT", "ETHUSDT")) as venue,
        watching(f"{prefix}/#") as mqtt,
    ):
        await venue.admin.set_price("BTCUSDT", "60000.0")
        hosts = TwoHosts(short_dir, venue, mqtt, prefix, trader_id)
        hosts.config.write_text(fleet_yaml(venue, trader_id, prefix))
        try:
            yield hosts
        finally:
            for daemon in hosts.daemons.values():
                if daemon.process is not None and daemon.process.returncode is None:
                    os.kill(daemon.process.pid, signal.SIGCONT)
                await daemon.close()
            await forget(redis, mqtt, [trader_id])
            await redis.delete(f"fleet:lease:{trader_id}", f"fleet:lease-epoch:{trader_id}")
            await redis.aclose()


async def test_each_trader_id_runs_once_and_a_frozen_owner_is_fenced_before_the_new_owner_trades(
    two_hosts: TwoHosts,
) -> None:
    hosts, venue = two_hosts, two_hosts.venue
    a, b = hosts.daemon("host-a"), hosts.daemon("host-b")
    await a.start()
    first = await hosts.wait_probe("host-a", "ready")
    await b.start()
    standby = await hosts.wait_probe("host-b", "standby")
    assert standby["pid"] is None and "host-a holds the lease" in standby["standby_reason"]
    # Once by processes: only host a's node runs.
    assert hosts.node_processes() == [first["pid"]]
    # `fleet status` on host b shows the node as host a runs it.
    status = await b.request({"cmd": "status"})
    shown = next(n for n in status["nodes"] if n["name"] == "probe")
    assert (shown["host"], shown["state"], shown["pid"]) == ("host-a", "ready", first["pid"])
    assert set(status["hosts"]) == {"host-a", "host-b"}

    # Once by venue orders: the tick both nodes would act on makes one entry.
    await venue.admin.set_price("BTCUSDT", ENTRY)

    async def protected() -> bool:
        algos = (await venue.admin.orders("BTCUSDT"))["algo_orders"]
        return len([x for x in algos if x["algoStatus"] == "NEW"]) == 2

    await until("the entry is protected at the venue", protected)
    orders = (await venue.admin.orders("BTCUSDT"))["orders"]
    assert [o["side"] for o in orders if o["type"] == "MARKET"] == ["BUY"]

    # Freeze host a's supervisor: nobody renews its lease.
    mark = len(hosts.mqtt.messages)
    assert a.process is not None
    os.kill(a.process.pid, signal.SIGSTOP)
    frozen = time.time()
    while not process_ended(first["pid"]):
        assert time.time() - frozen < TTL_S * 3, "host a's node did not halt by itself"
        await asyncio.sleep(0.02)
    halted = time.time()
    taken = await hosts.wait_probe("host-b", "ready")
    assert taken["started_at"] is not None
    # The new owner trades: a tick at STOP_MOVE_PRICE moves its stop (cancel, new stop at the venue).
    await venue.admin.set_price("BTCUSDT", STOP_MOVE_PRICE)

    async def moved() -> bool:
        algos = (await venue.admin.orders("BTCUSDT"))["algo_orders"]
        return any(x["algoStatus"] == "NEW" and float(x["triggerPrice"]) == 59000.0 for x in algos)

    await until("the new owner moved its stop", moved)
    algos = (await venue.admin.orders("BTCUSDT"))["algo_orders"]
    traded = min(x["createTime"] for x in algos if float(x["triggerPrice"]) == 59000.0) / 1000
    print(
        f"host a frozen at 0; its node halted +{halted - frozen:.1f} s; host b started it "
        f"+{taken['started_at'] - frozen:.1f} s, READY +{taken['since'] - frozen:.1f} s, "
        f"first order +{traded - frozen:.1f} s"
    )
    assert halted < taken["started_at"] < taken["since"] < traded
    assert hosts.node_processes() == [taken["pid"]]
    # MQTT: the retained state is host b's.
    retained = await hosts.mqtt.wait_for(
        lambda m: m.topic == f"{hosts.prefix}/nodes/probe/state" and m.json()["state"] == "ready", after=mark
    )
    assert retained.json()["host"] == "host-b"

    # Host a wakes up: its lease is gone, its node stays down (fenced), in standby behind host b.
    os.kill(a.process.pid, signal.SIGCONT)
    after = await hosts.wait_probe("host-a", "standby", timeout=TTL_S * 3)
    assert after["last_exit"]["reason"] == "fenced" and after["pid"] is None
    assert hosts.node_processes() == [taken["pid"]]
    # Host a's node said when it halted, in its own log (drained by its supervisor once it woke up).
    log_file = hosts.base / "host-a" / "state" / "logs" / "probe.log"
    await until("host a's node log has its halt", lambda: _halt_logged(log_file))
    logged = float(re.findall(r"trading HALTED at ([0-9.]+)", log_file.read_text())[-1])
    assert frozen < logged <= halted < taken["started_at"]
    # The venue: one entry in all, and no order was placed twice.
    orders = (await venue.admin.orders("BTCUSDT"))["orders"]
    assert [o["side"] for o in orders if o["type"] == "MARKET"] == ["BUY"]
    attempts = await venue.admin.attempts()
    assert all(entry["attempts"] == 1 for entry in attempts.values()), attempts
    # Host a's standby did not overwrite host b's retained state.
    await asyncio.sleep(0.5)
    states = [m for m in hosts.mqtt.messages[mark:] if m.topic == f"{hosts.prefix}/nodes/probe/state"]
    assert states[-1].json()["host"] == "host-b", [(m.json()["host"], m.json()["state"]) for m in states][-6:]


async def _halt_logged(path: Path) -> bool:
    text = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
    return "trading HALTED at" in text
