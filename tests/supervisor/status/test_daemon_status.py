"""The whole daemon as a user watches it: `mosquitto_sub -t 'nautilus-fleet/#'` and `curl /metrics` while a
node is killed, detected, restarted and ready again."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.supervisor.daemon_harness import DaemonUnderTest, fleet_yaml, node_yaml
from tests.supervisor.status.conftest import free_port, watching

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]


@pytest.fixture
async def daemon(
    short_dir: Path, prefix: str, clean_shared_broker: None
) -> AsyncIterator[tuple[DaemonUnderTest, int]]:
    port = free_port()
    config = short_dir / "fleet.yaml"
    config.write_text(
        fleet_yaml(
            short_dir,
            [node_yaml("a", "--phases", "cache_loaded,reconciled")],
            mqtt=f"{{host: 127.0.0.1, port: 1883, topic_prefix: {prefix}, keepalive: 5s}}",
            metrics=f"{{listen: '127.0.0.1:{port}'}}",
        )
    )
    under_test = DaemonUnderTest(short_dir, config)
    try:
        yield under_test, port
    finally:
        await under_test.close()


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_crash_recovery_is_visible_on_mqtt_and_metrics(
    daemon: tuple[DaemonUnderTest, int], prefix: str
) -> None:
    under_test, port = daemon
    async with watching(f"{prefix}/#") as watcher:
        await under_test.start()
        ready = await watcher.wait_for(
            lambda m: (
                m.topic == f"{prefix}/nodes/a/state" and bool(m.payload) and m.json()["state"] == "ready"
            )
        )
        pid = ready.json()["pid"]
        supervisor_state = await watcher.wait_for(
            lambda m: m.topic.endswith("/state") and "/supervisors/" in m.topic
        )
        assert supervisor_state.json()["state"] == "online"

        mark = len(watcher.messages)
        os.kill(pid, signal.SIGKILL)
        exit_event = await watcher.wait_for(
            lambda m: m.topic == f"{prefix}/events/a" and m.json()["event"] == "exit", after=mark
        )
        assert exit_event.json()["exit"]["reason"] == "signal"
        assert exit_event.json()["exit"]["signal"] == signal.SIGKILL
        report = await watcher.wait_for(
            lambda m: m.topic == f"{prefix}/nodes/a/recovery" and m.json()["reason"] == "signal", after=mark
        )
        body = report.json()
        assert body["result"] == "ready"
        assert [p["phase"] for p in body["phases"]] == [
            "detected",
            "spawned",
            "cache_loaded",
            "reconciled",
            "ready",
        ]
        assert 0 < body["position_recovery_ms"] <= body["full_recovery_ms"]
        await watcher.wait_for(
            lambda m: (
                m.topic == f"{prefix}/nodes/a/state"
                and m.json()["state"] == "ready"
                and m.json()["pid"] != pid
            ),
            after=mark,
        )

    metrics = _scrape(port)
    assert metrics[("fleet_node_restarts_total", (("node", "a"), ("reason", "signal")))] == 1
    assert metrics[("fleet_node_up", (("node", "a"),))] == 1
    assert metrics[("fleet_full_recovery_seconds_count", (("node", "a"),))] == 1
    assert metrics[("fleet_mqtt_connected", ())] == 1

    await under_test.signal(signal.SIGTERM)
    assert await under_test.wait_exit() == 0
