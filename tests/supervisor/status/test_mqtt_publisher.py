"""The publisher against the real Mosquitto on 127.0.0.1:1883, observed by a subscriber as a user would."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.events import ReloadOutcome
from supervisor.states import ExitReason, NodeState
from tests.supervisor.status.conftest import (
    Received,
    RunningPublisher,
    exit_info,
    node_status,
    phase,
    recovery_report,
    retained_now,
    watching,
)

pytestmark = [pytest.mark.mqtt, pytest.mark.usefixtures("clean_shared_broker")]

StartPublisher = Callable[..., RunningPublisher]


def _online(m: Received) -> bool:
    return m.payload != b"" and m.json().get("state") == "online"


async def test_birth_is_retained_with_session_and_summary(
    prefix: str, start_publisher: StartPublisher
) -> None:
    state_topic = f"{prefix}/supervisors/host-a/state"
    async with watching(f"{prefix}/#") as watcher:
        handle = start_publisher(prefix=prefix)
        birth = (await watcher.wait_for(lambda m: m.topic == state_topic and _online(m))).json()
        assert birth["session"] == 1
        assert birth["host"] == "host-a"
        assert birth["fleet"] == "test"
        assert handle.publisher.connected
        handle.publisher.fleet_summary("2 nodes: 1 ready, 1 recovering", {"ready": 1, "recovering": 1})
        update = await watcher.wait_for(lambda m: m.topic == state_topic and "summary" in m.json())
        assert update.json()["summary"] == "2 nodes: 1 ready, 1 recovering"
        assert update.json()["nodes"] == {"ready": 1, "recovering": 1}
        assert update.json()["session"] == 1
    retained = await retained_now(f"{prefix}/#")
    assert b'"summary":"2 nodes: 1 ready, 1 recovering"' in retained[state_topic]


async def test_node_state_recovery_and_reconciliation_are_retained(
    prefix: str, start_publisher: StartPublisher
) -> None:
    handle = start_publisher(prefix=prefix)
    publisher = handle.publisher
    detail: dict[str, Any] = {
        "venue": "binance",
        "positions": [{"instrument": "BTCUSDT-PERP.BINANCE", "side": "LONG", "quantity": "0.010"}],
        "discrepancies": [
            {
                "venue": "binance",
                "instrument": "BTCUSDT-PERP.BINANCE",
                "kind": "missing_at_venue",
                "cached_qty": "0.010",
                "venue_qty": "0",
                "resolved": True,
                "resolution": "synthetic_fill",
            }
        ],
    }
    async with watching(f"{prefix}/#") as watcher:
        await watcher.wait_for(lambda m: m.topic.endswith("/state") and _online(m))
        publisher.node_status(node_status(NodeState.RECOVERING, restarts=1))
        publisher.recovery_phase(node_status(NodeState.RECOVERING), phase("reconciled", 412.5, detail))
        publisher.node_status(node_status(NodeState.READY, restarts=1))
        publisher.recovery_report(recovery_report(discrepancies=tuple(detail["discrepancies"])))
        await watcher.wait_for(lambda m: m.topic == f"{prefix}/nodes/alpha/recovery")

    state_topic = f"{prefix}/nodes/alpha/state"
    retained = await retained_now(f"{prefix}/#")
    state = json.loads(retained[state_topic])
    assert state["state"] == "ready"
    assert state["restarts"] == 1
    assert state["trader_id"] == "TRADER-001"
    assert state["venues"] == ["binance"]
    assert state["pid"] == 4242
    assert state["host"] == "host-a"

    report = json.loads(retained[f"{prefix}/nodes/alpha/recovery"])
    assert report["result"] == "ready"
    assert report["position_recovery_ms"] == 420.0
    assert report["full_recovery_ms"] == 1300.0
    assert [p["phase"] for p in report["phases"]] == ["detected", "reconciled", "ready"]
    assert report["discrepancies"][0]["kind"] == "missing_at_venue"

    reconciliation = json.loads(retained[f"{prefix}/recovery/TRADER-001/binance"])
    assert reconciliation["result"] == "resolved"
    assert reconciliation["node"] == "alpha"
    assert reconciliation["ms_since_detection"] == 412.5
    assert reconciliation["positions"][0]["quantity"] == "0.010"


async def test_events_stream_in_order_with_sequence_numbers(
    prefix: str, start_publisher: StartPublisher
) -> None:
    handle = start_publisher(prefix=prefix)
    publisher = handle.publisher
    events_topic = f"{prefix}/events/alpha"
    async with watching(f"{prefix}/events/#") as watcher:
        # Events are not retained: wait until the publisher is connected, as a live subscriber would be.
        async with watching(f"{prefix}/supervisors/+/state") as birth:
            await birth.wait_for(_online)
        publisher.node_status(node_status(NodeState.READY))
        publisher.node_exited(node_status(NodeState.BACKOFF), exit_info(ExitReason.SIGNAL), True)
        publisher.node_status(node_status(NodeState.BACKOFF))
        publisher.node_status(node_status(NodeState.BACKOFF))  # no transition: no event
        publisher.node_status(node_status(NodeState.RECOVERING))
        publisher.recovery_phase(node_status(NodeState.RECOVERING), phase("cache_loaded", 120.0))
        publisher.recovery_report(recovery_report())
        await watcher.wait_for(lambda m: m.json()["event"] == "recovery")
        events = [m.json() for m in watcher.on(events_topic)]

    assert all(not m.retain for m in watcher.messages)
    assert [e["event"] for e in events] == ["state", "exit", "state", "state", "phase", "recovery"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[0]["from"] is None and events[0]["to"] == "ready"
    assert events[1]["exit"]["reason"] == "signal" and events[1]["exit"]["signal"] == 9
    assert events[1]["will_restart"] is True
    assert (events[2]["from"], events[2]["to"]) == ("ready", "backoff")
    assert events[4]["phase"] == "cache_loaded" and events[4]["ms_since_detection"] == 120.0
    assert events[5]["result"] == "ready" and events[5]["full_recovery_ms"] == 1300.0


async def test_node_removed_clears_its_retained_topics(prefix: str, start_publisher: StartPublisher) -> None:
    handle = start_publisher(prefix=prefix)
    publisher = handle.publisher
    keep = node_status(NodeState.READY, name="beta", trader_id="TRADER-002")
    async with watching(f"{prefix}/#") as watcher:
        publisher.node_status(node_status(NodeState.READY))
        publisher.node_status(keep)
        publisher.recovery_phase(
            node_status(NodeState.RECOVERING), phase("reconciled", 300.0, {"venue": "binance"})
        )
        publisher.recovery_report(recovery_report())
        await watcher.wait_for(lambda m: m.topic == f"{prefix}/nodes/alpha/recovery")
        before = await retained_now(f"{prefix}/#")
        assert {f"{prefix}/nodes/alpha/state", f"{prefix}/nodes/alpha/recovery"} <= set(before)
        assert f"{prefix}/recovery/TRADER-001/binance" in before

        publisher.node_removed("alpha", "TRADER-001", ("binance",))
        removed = await watcher.wait_for(
            lambda m: m.topic == f"{prefix}/events/alpha" and b"removed" in m.payload
        )
        assert removed.json()["venues"] == ["binance"]
        cleared = {m.topic for m in watcher.messages if m.payload == b""}
        assert cleared == {
            f"{prefix}/nodes/alpha/state",
            f"{prefix}/nodes/alpha/recovery",
            f"{prefix}/recovery/TRADER-001/binance",
        }

    after = await retained_now(f"{prefix}/#")
    assert not [t for t in after if "/alpha/" in t or "TRADER-001" in t]
    assert f"{prefix}/nodes/beta/state" in after


async def test_cancel_publishes_stopped_after_pending_states(
    prefix: str, start_publisher: StartPublisher
) -> None:
    handle = start_publisher(prefix=prefix)
    state_topic = f"{prefix}/supervisors/host-a/state"
    async with watching(f"{prefix}/#") as watcher:
        await watcher.wait_for(lambda m: m.topic == state_topic and _online(m))
        # The daemon stops its nodes, then cancels the publisher: the last node states go out first.
        handle.publisher.node_status(node_status(NodeState.STOPPED, pid=None))
        await handle.stop()
        stopped = await watcher.wait_for(lambda m: m.topic == state_topic and m.json()["state"] == "stopped")
        node_index = max(
            i for i, m in enumerate(watcher.messages) if m.topic == f"{prefix}/nodes/alpha/state"
        )
        assert node_index < watcher.messages.index(stopped)
    assert stopped.json()["session"] == 1
    assert not handle.publisher.connected
    retained = await retained_now(f"{prefix}/#")
    assert b'"state":"stopped"' in retained[state_topic]  # a clean stop: the will `lost` was not fired


async def test_each_connection_gets_a_larger_session_id(
    prefix: str, start_publisher: StartPublisher, tmp_path: Path
) -> None:
    session_file = tmp_path / "mqtt-session"
    state_topic = f"{prefix}/supervisors/host-a/state"
    sessions = []
    for _ in range(2):
        async with watching(state_topic) as watcher:
            handle = start_publisher(prefix=prefix, session_file=session_file)
            sessions.append((await watcher.wait_for(_online)).json()["session"])
            await handle.stop()
    assert sessions == [1, 2]
    assert session_file.read_text().strip() == "2"


async def test_a_reload_is_an_event_of_the_supervisor(prefix: str, start_publisher: StartPublisher) -> None:
    handle = start_publisher(prefix=prefix)
    async with watching(f"{prefix}/supervisors/+/events") as watcher:
        async with watching(f"{prefix}/supervisors/+/state") as birth:
            await birth.wait_for(_online)
        handle.publisher.reload_outcome(
            ReloadOutcome(applied=False, at=1.0, trigger="file", detail="fleet.yaml:46:1 expected valid YAML")
        )
        event = (await watcher.wait_for(lambda m: m.json()["event"] == "reload")).json()
    assert event["result"] == "refused" and event["trigger"] == "file"
    assert event["detail"] == "fleet.yaml:46:1 expected valid YAML" and event["host"] == "host-a"
    assert watcher.messages[0].topic == f"{prefix}/supervisors/host-a/events"


async def test_a_node_in_standby_or_without_its_lease_leaves_the_retained_state_to_its_owner(
    prefix: str, start_publisher: StartPublisher
) -> None:
    """Host a has the node in standby (host b runs it), or its lease is gone: it publishes the state change as
    an event, but the retained nodes/<node>/state stays what the host running the node said."""
    import dataclasses

    handle = start_publisher(prefix=prefix)
    publisher = handle.publisher
    topic = f"{prefix}/nodes/alpha/state"
    async with watching(f"{prefix}/#") as watcher:
        await watcher.wait_for(lambda m: m.topic.endswith("/state") and _online(m))
        publisher.node_status(dataclasses.replace(node_status(NodeState.READY), lease_held=True))
        await watcher.wait_for(lambda m: m.topic == topic and m.json()["state"] == "ready")
        publisher.node_status(
            dataclasses.replace(node_status(NodeState.READY), status_text="x", lease_held=False)
        )
        publisher.node_status(dataclasses.replace(node_status(NodeState.STANDBY, pid=None), lease_held=False))
        await watcher.wait_for(
            lambda m: m.topic == f"{prefix}/events/alpha" and m.json().get("to") == "standby"
        )
    retained = await retained_now(f"{prefix}/#")
    state = json.loads(retained[topic])
    assert (state["state"], state["status"], state["host"]) == ("ready", "", "host-a")
