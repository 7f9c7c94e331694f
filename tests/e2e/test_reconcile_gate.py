"""The reconciliation gate under the real daemon (issue 8): three strategy nodes of one rate group (three
accounts behind one address) killed at once, with a venue budget that fits little more than one recovery per
window.

The node holding a position is admitted first, the others wait `queued` (their place on MQTT, no ready_timeout
kill although the queue outlasts their ready_timeout), every node comes back READY, and the venue refused
nothing.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from supervisor import rate_budget
from tests.e2e.conftest import forget
from tests.recovery.reversal_checks import LONG_PX, SIZE, SYMBOL, reverser, settled
from tests.recovery.scenarios import until
from tests.supervisor.daemon_harness import DaemonUnderTest
from tests.supervisor.status.conftest import Received, Watcher, watching

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]

NAMES = ("held", "flat-a", "flat-b")
# One recovery of a node of one symbol is ~153 weight: 250 per 4 s window, 0.9 of it for recoveries (225),
# fits one recovery and a part of the next per window; three need two windows beyond those spent.
LIMIT, WINDOW_S = 250, 4
READY_TIMEOUT = "8s"


@dataclass
class Gated:
    daemon: DaemonUnderTest
    venue: EmulatorProcess
    mqtt: Watcher
    redis: aioredis.Redis
    prefix: str
    traders: dict[str, str]
    group: str


def fleet_yaml(base: Path, venue: EmulatorProcess, traders: dict[str, str], prefix: str) -> str:
    venues = "".join(
        f"""
          emu-{name}:
            base_url_http: {venue.http_url}
            base_url_ws: {venue.ws_url}
            api_key: {{env: KEY_{i}}}
            api_secret: {{env: SECRET_{i}}}
            account: {name}"""
        for i, name in enumerate(NAMES)
    )
    nodes = "".join(
        f"""
          - name: {name}
            trader_id: {traders[name]}
            venues: [emu-{name}]
            strategies: [{json.dumps(reverser() if name == "held" else reverser(targets={}))}]"""
        for name in NAMES
    )
    return textwrap.dedent(
        f"""\
        fleet: gate
        runtime_dir: {base}/run
        state_dir: {base}/state
        mqtt: {{host: 127.0.0.1, port: 1883, topic_prefix: {prefix}}}
        metrics: {{enabled: false}}
        spares: 0 # every node recovers cold: this is about the gate
        venues:{venues}
        defaults:
          restart: {{backoff_initial: 200ms, backoff_max: 1s, start_limit: {{burst: 20, window: 1m}}}}
          ready_timeout: {READY_TIMEOUT}
          watchdog: {{timeout: 10s}}
        nodes:{nodes}
        """
    )


@pytest.fixture
async def gated(short_dir: Path) -> AsyncIterator[Gated]:
    traders = {name: f"GATE{uuid.uuid4().hex[:6].upper()}-{i}" for i, name in enumerate(NAMES)}
    accounts = [
        AccountSpec(name=n, api_key=f"key-{i}", api_secret=f"secret-{i}") for i, n in enumerate(NAMES)
    ]
    prefix = f"nautilus-fleet-test/{uuid.uuid4().hex[:12]}"
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    async with (
        running_emulator(seed=8, symbols=(SYMBOL,), accounts=accounts) as venue,
        watching(f"{prefix}/#") as mqtt,
    ):
        await venue.admin.set_price(SYMBOL, "3000.00")
        await venue.admin.set_ratelimit(
            weight_per_minute=LIMIT, weight_window_s=WINDOW_S, ban_after=0, reset=True
        )
        config = short_dir / "fleet.yaml"
        config.write_text(fleet_yaml(short_dir, venue, traders, prefix))
        env = {f"KEY_{i}": a.api_key for i, a in enumerate(accounts)}
        env |= {f"SECRET_{i}": a.api_secret for i, a in enumerate(accounts)}
        daemon = DaemonUnderTest(short_dir, config, env=env)
        group = rate_budget.default_rate_group(venue.http_url, rate_budget.host_egress())
        try:
            await daemon.start()
            await daemon.wait_nodes(lambda s: all(s[n]["state"] == "ready" for n in NAMES), timeout=90)
            yield Gated(daemon, venue, mqtt, redis, prefix, traders, group)
        finally:
            await daemon.close()
            await forget(redis, mqtt, list(traders.values()))
            keys = [k async for k in redis.scan_iter(match=f"{rate_budget.KEY_PREFIX}:*{group}*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def spend_windows(redis: aioredis.Redis, group: str, count: int) -> None:
    """The group's current window and the next ones are spent (as if another host used them): whoever comes
    now waits for the window after."""
    seconds, micros = await redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    window_ms = WINDOW_S * 1000
    start = now_ms - now_ms % window_ms
    for i in range(count):
        key = f"{rate_budget.weight_key_base(group)}:{start + i * window_ms}"
        await redis.set(key, LIMIT, px=(i + 2) * window_ms)


def recovery_report(gated: Gated, name: str, after: int) -> Any:
    def matches(m: Received) -> bool:
        return (
            m.topic == f"{gated.prefix}/nodes/{name}/recovery"
            and bool(m.payload)
            and m.json()["reason"] == "signal"
        )

    return gated.mqtt.wait_for(matches, within=90, after=after)


async def test_nodes_killed_together_reconcile_in_turn_positions_first(gated: Gated) -> None:
    # The held node opens a position with its stops; the others stay flat.
    await until("the nodes receive trade prints", lambda: _subscribed(gated), timeout_s=30)
    await gated.venue.admin.set_price(SYMBOL, LONG_PX)
    await until("held is long and protected", lambda: settled(gated.venue, SIZE, "held"), timeout_s=30)

    pids = {n: int(v["pid"]) for n, v in (await gated.daemon.nodes()).items()}
    mark = len(gated.mqtt.messages)
    await spend_windows(gated.redis, gated.group, 3)
    await gated.venue.admin.clear_requests()
    for name in ("flat-b", "flat-a", "held"):  # the held one dies last: the order is the gate's, not ours
        os.kill(pids[name], signal.SIGKILL)
    reports = {n: (await recovery_report(gated, n, mark)).json() for n in NAMES}

    for name, report in reports.items():
        assert report["result"] == "ready", (name, report["error"])
    admitted = {n: _phase(r, "admitted") for n, r in reports.items()}
    queued = {n: _phase(r, "queued") for n, r in reports.items()}
    assert all(queued.values()) and all(admitted.values()), "every node waited: the window was spent"
    assert queued["held"]["detail"]["has_positions"] is True and queued["held"]["detail"]["place"] == 1
    assert {queued[n]["detail"]["of"] for n in NAMES} <= {1, 2, 3}
    order = sorted(NAMES, key=lambda n: admitted[n]["ts"])
    assert order[0] == "held", order
    # Three windows spent, then one recovery and a half per window: the last waited longer than its
    # ready_timeout (8 s), and was not killed for it.
    waits = sorted(a["detail"]["waited_ms"] for a in admitted.values())
    assert waits[-1] > 8000, waits
    assert all(r["attempt"] == 2 for r in reports.values()), "one start each: no ready_timeout kill"
    # The per-account topic went queued -> started -> finished.
    topic = f"{gated.prefix}/recovery/{gated.traders['held']}/emu-held"
    states = [m.json().get("state") for m in gated.mqtt.messages[mark:] if m.topic == topic and m.payload]
    assert states == ["queued", "started", "finished"], states
    refused = [
        (e["path"], e["status"]) for e in await gated.venue.admin.requests() if e["status"] in (418, 429)
    ]
    assert refused == []


async def _subscribed(gated: Gated) -> bool:
    subscribers = (await gated.venue.admin.state())["subscribers"]
    return int(subscribers.get("ethusdt@aggTrade", 0)) == len(NAMES)


def _phase(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next((p for p in report["phases"] if p["phase"] == name), {})
    return found
