"""The whole product at once: the real daemon (`fleet run`) supervising real strategy nodes
(`python -m recovery.node`) against the venue emulator, with Redis and Mosquitto, watched over MQTT."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess, running_emulator
from tests.supervisor.daemon_harness import DaemonUnderTest
from tests.supervisor.status.conftest import Watcher, watching

PROBE = "tests.recovery.recoverable_probe:RecoverableProbe"
BTC = "BTCUSDT-PERP.BINANCE"
ENTRY = "60100.0"  # the probe buys 0.010 on a trade at this price; stop 5000 below, take-profit 5000 above
STRATEGY_ID = "RecoverableProbe-001"


@dataclass
class Fleet:
    daemon: DaemonUnderTest
    venue: EmulatorProcess
    redis: aioredis.Redis
    mqtt: Watcher
    prefix: str
    trader_id: str

    async def node(self) -> dict[str, Any]:
        return (await self.daemon.nodes())["probe"]

    async def report(self, *, reason: str, after: int = 0, result: str | None = None) -> dict[str, Any]:
        """The next recovery report of the probe node (as a user sees it on MQTT)."""
        message = await self.mqtt.wait_for(
            lambda m: (
                m.topic == f"{self.prefix}/nodes/probe/recovery"
                and bool(m.payload)
                and m.json()["reason"] == reason
                and (result is None or m.json()["result"] == result)
            ),
            within=60,
            after=after,
        )
        body: dict[str, Any] = message.json()
        return body


def fleet_yaml(
    base: Path, venue: EmulatorProcess, trader_id: str, prefix: str, spares: int | str = 0, **probe: str
) -> str:
    config = ", ".join(
        f"{k}: '{v}'" for k, v in {"instrument_id": BTC, "order_id_tag": "001", **probe}.items()
    )
    return textwrap.dedent(
        f"""\
        fleet: e2e
        runtime_dir: {base}/run
        state_dir: {base}/state
        mqtt: {{host: 127.0.0.1, port: 1883, topic_prefix: {prefix}}}
        metrics: {{enabled: false}}
        spares: {spares} # warm spares only where a test asks (tests/e2e/test_spares.py): these recover cold
        venues:
          emu:
            base_url_http: {venue.http_url}
            base_url_ws: {venue.ws_url}
            api_key: {{env: EMU_API_KEY}}
            api_secret: {{env: EMU_API_SECRET}}
        defaults:
          restart:
            backoff_initial: 500ms
            backoff_max: 2s
            reset_after: 30s
            start_limit: {{burst: 10, window: 1m}}
          stop: {{grace: 5s}}
          watchdog: {{timeout: 10s}}
          ready_timeout: 40s
        nodes:
          - name: probe
            trader_id: {trader_id}
            venues: [emu]
            strategies:
              - path: {PROBE}
                config: {{{config}}}
        """
    )


@pytest.fixture
async def fleet_factory(short_dir: Path) -> AsyncIterator[Any]:
    """`await make(**probe_config)`: a running daemon with one probe node, cold-started and READY."""
    trader_id = f"E2E{uuid.uuid4().hex[:8].upper()}-001"
    prefix = f"nautilus-fleet-test/{uuid.uuid4().hex[:12]}"
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    started: list[DaemonUnderTest] = []
    async with (
        running_emulator(seed=5, symbols=("BTCUSDT", "ETHUSDT")) as venue,
        watching(f"{prefix}/#") as mqtt,
    ):
        await venue.admin.set_price("BTCUSDT", "60000.0")

        async def make(**probe: str) -> Fleet:
            config = short_dir / "fleet.yaml"
            config.write_text(fleet_yaml(short_dir, venue, trader_id, prefix, **probe))
            daemon = DaemonUnderTest(
                short_dir, config, env={"EMU_API_KEY": venue.api_key, "EMU_API_SECRET": venue.api_secret}
            )
            started.append(daemon)
            await daemon.start()
            fleet = Fleet(daemon, venue, redis, mqtt, prefix, trader_id)
            await fleet.report(reason="cold_start", result="ready")
            return fleet

        try:
            yield make
        finally:
            for daemon in started:
                await daemon.close()
            await forget(redis, mqtt, [trader_id])
            await redis.aclose()


async def forget(redis: aioredis.Redis, mqtt: Watcher, trader_ids: list[str]) -> None:
    """Remove what a test's traders left in Redis and the retained topics of its prefix."""
    for trader_id in trader_ids:
        for pattern in (f"trader-{trader_id}:*", f"positions:{trader_id}:*", f"fleet-archive:{trader_id}:*"):
            keys = [k async for k in redis.scan_iter(match=pattern)]
            if keys:
                await redis.delete(*keys)
    for topic in {m.topic for m in mqtt.messages if m.retain and m.payload}:
        await mqtt.client.publish(topic, b"", qos=1, retain=True)
