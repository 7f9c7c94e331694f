"""A kill drill of reversing strategies under the real daemon (issue 12 was found by one).

Two nodes, one emulator account each, run the reversing probe on ETHUSDT: every price step flips or flattens
both positions with one market order, which the venue fills in one trade or sweeps through several levels.
A seeded sequence kills a node with SIGKILL right after an order reached the venue, again while it recovers
(before READY), or while idle; the daemon restarts it. After every recovery, what an operator would check:
the recovery report on MQTT says READY, and the venue equals the node's cache (net position, every order's
fills, one stop-loss and one take-profit per position and none when flat, nothing invented, no client order
id accepted twice). `FLEET_DRILL_STEPS` makes it longer (the CI run is short), `FLEET_DRILL_SEED` another.
"""

from __future__ import annotations

import json
import os
import random
import signal
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from tests.e2e.conftest import forget
from tests.recovery.reversal_checks import (
    PRICE_FOR,
    SIZE,
    SYMBOL,
    TRADES_STREAM,
    cache_differences,
    open_protective,
    reverser,
    settled,
    venue_position,
)
from tests.recovery.scenarios import until
from tests.supervisor.daemon_harness import DaemonUnderTest
from tests.supervisor.status.conftest import Watcher, watching

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]

STEPS = int(os.environ.get("FLEET_DRILL_STEPS", "10"))
SEED = int(os.environ.get("FLEET_DRILL_SEED", "1207"))
NAMES = ("rev-a", "rev-b")
KILLED_BY_US = "signal: killed by SIGKILL"  # the report of an attempt killed while recovering
DEPTHS = (None, SIZE, Decimal("0.005"))  # one trade; close and open apart; four trades for a reversal


@dataclass
class Node:
    name: str
    account: str
    trader_id: str


@dataclass
class Drill:
    daemon: DaemonUnderTest
    venue: EmulatorProcess
    mqtt: Watcher
    prefix: str
    nodes: dict[str, Node]

    async def pid(self, name: str) -> int:
        return int((await self.daemon.nodes())[name]["pid"])

    async def recovered(self, name: str, after: int) -> dict[str, Any]:
        """The next recovery report of `name` that is not an attempt the drill itself killed."""
        message = await self.mqtt.wait_for(
            lambda m: (
                m.topic == f"{self.prefix}/nodes/{name}/recovery"
                and bool(m.payload)
                and m.json()["error"] != KILLED_BY_US
            ),
            within=60,
            after=after,
        )
        report: dict[str, Any] = message.json()
        return report


def drill_yaml(base: Path, venue: EmulatorProcess, nodes: list[Node], prefix: str) -> str:
    venues = "".join(
        f"""
          emu-{n.account}:
            base_url_http: {venue.http_url}
            base_url_ws: {venue.ws_url}
            api_key: {{env: KEY_{n.account.upper()}}}
            api_secret: {{env: SECRET_{n.account.upper()}}}
            account: {n.account}"""
        for n in nodes
    )
    entries = "".join(
        f"""
          - name: {n.name}
            trader_id: {n.trader_id}
            venues: [emu-{n.account}]
            strategies: [{json.dumps(reverser())}]"""
        for n in nodes
    )
    return textwrap.dedent(
        f"""\
        fleet: drill
        runtime_dir: {base}/run
        state_dir: {base}/state
        mqtt: {{host: 127.0.0.1, port: 1883, topic_prefix: {prefix}}}
        metrics: {{enabled: false}}
        venues:{venues}
        defaults:
          restart:
            backoff_initial: 200ms
            backoff_max: 1s
            reset_after: 5s
            start_limit: {{burst: 50, window: 1m}}
          stop: {{grace: 5s}}
          watchdog: {{timeout: 10s}}
          ready_timeout: 40s
        nodes:{entries}
        """
    )


@pytest.fixture
async def drill(short_dir: Path) -> AsyncIterator[Drill]:
    nodes = [
        Node(name, account, f"DRILL{uuid.uuid4().hex[:6].upper()}-{i}")
        for i, (name, account) in enumerate(zip(NAMES, ("a", "b"), strict=True))
    ]
    accounts = [
        AccountSpec(name=n.account, api_key=f"key-{n.account}", api_secret=f"secret-{n.account}")
        for n in nodes
    ]
    prefix = f"nautilus-fleet-test/{uuid.uuid4().hex[:12]}"
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    async with (
        running_emulator(seed=12, symbols=("ETHUSDT",), accounts=accounts) as venue,
        watching(f"{prefix}/#") as mqtt,
    ):
        await venue.admin.set_ratelimit(
            weight_per_minute=50_000
        )  # the drill restarts far more than a venue allows
        await venue.admin.set_price(SYMBOL, "3000.00")
        config = short_dir / "fleet.yaml"
        config.write_text(drill_yaml(short_dir, venue, nodes, prefix))
        env = {}
        for spec in accounts:
            env[f"KEY_{spec.name.upper()}"] = spec.api_key
            env[f"SECRET_{spec.name.upper()}"] = spec.api_secret
        daemon = DaemonUnderTest(short_dir, config, env=env)
        try:
            await daemon.start()
            await daemon.wait_nodes(lambda s: all(s[n.name]["state"] == "ready" for n in nodes), timeout=60)
            yield Drill(daemon, venue, mqtt, prefix, {n.name: n for n in nodes})
        finally:
            await daemon.close()
            await forget(redis, mqtt, [n.trader_id for n in nodes])
            await redis.aclose()


async def all_subscribed(drill: Drill) -> bool:
    """Every node receives trade prints (a print before a node's subscription reaches the venue is not
    delivered to it, as on the real venue)."""
    subscribers = (await drill.venue.admin.state())["subscribers"]
    return int(subscribers.get(TRADES_STREAM, 0)) == len(drill.nodes)


async def settle(drill: Drill, target: Decimal) -> None:
    for node in drill.nodes.values():

        async def done(account: str = node.account) -> bool:
            return await settled(drill.venue, target, account)

        try:
            await until(f"{node.name} holds {target} with its protective orders", done, timeout_s=30)
        except AssertionError as exc:
            position = await venue_position(drill.venue, node.account)
            protective = [
                (a["clientAlgoId"], a["side"], a["quantity"])
                for a in await open_protective(drill.venue, node.account)
            ]
            raise AssertionError(f"{exc}: the venue holds {position}, open protective {protective}") from None


async def orders_at_venue(drill: Drill, account: str) -> int:
    return sum(r["accepted"] for r in (await drill.venue.admin.attempts(account=account)).values())


async def kill_and_recover(drill: Drill, node: Node, *, again_while_recovering: bool) -> dict[str, Any]:
    """SIGKILL the node; optionally once more as soon as the daemon has it recovering; the next report."""
    mark = len(drill.mqtt.messages)
    os.kill(await drill.pid(node.name), signal.SIGKILL)
    if again_while_recovering:
        states = await drill.daemon.wait_nodes(
            lambda s: s[node.name]["state"] == "recovering" and s[node.name]["pid"] is not None, timeout=30
        )
        mark = len(drill.mqtt.messages)
        os.kill(int(states[node.name]["pid"]), signal.SIGKILL)
    report = await drill.recovered(node.name, mark)
    assert report["result"] == "ready", json.dumps(report, indent=1)
    return report


async def test_kill_drill_of_reversing_nodes(drill: Drill) -> None:
    rng = random.Random(SEED)
    target = Decimal(0)
    kills = 0
    for _step in range(STEPS):
        choices = [t for t in (SIZE, -SIZE, Decimal(0)) if t != target]
        target = rng.choice(choices)
        await drill.venue.admin.set_depth(SYMBOL, rng.choice(DEPTHS))
        await until("both nodes receive trade prints", lambda: all_subscribed(drill), timeout_s=30)
        victim = drill.nodes[rng.choice(NAMES)]
        moment = rng.choice(("after_order", "recovering", "idle", "none"))
        before = await orders_at_venue(drill, victim.account)
        await drill.venue.admin.set_price(SYMBOL, PRICE_FOR[target])
        if moment == "after_order":

            async def ordered(account: str = victim.account, seen: int = before) -> bool:
                return await orders_at_venue(drill, account) > seen

            await until(f"{victim.name}'s order reached the venue", ordered)
            await kill_and_recover(drill, victim, again_while_recovering=False)
            kills += 1
        await settle(drill, target)
        if moment in ("recovering", "idle"):
            await kill_and_recover(drill, victim, again_while_recovering=moment == "recovering")
            kills += 1 + (moment == "recovering")
            await settle(drill, target)
        for node in drill.nodes.values():
            problems = await cache_differences(drill.venue, node.trader_id, node.account)
            assert problems == [], f"{node.name} after step {_step} ({moment}): {problems}"
    states = await drill.daemon.nodes()
    assert {name: states[name]["state"] for name in NAMES} == dict.fromkeys(NAMES, "ready")
    assert kills > 0
