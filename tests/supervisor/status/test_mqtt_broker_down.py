"""Broker trouble never reaches supervision: retained state comes back after a broker restart, events queue
(bounded, oldest dropped and counted) while it is down."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from supervisor.clock import FakeClock
from supervisor.states import NodeState
from tests.supervisor.status.conftest import (
    Broker,
    Received,
    RunningPublisher,
    eventually,
    node_status,
    recovery_report,
    retained_now,
    watching,
)

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

PREFIX = "nautilus-fleet/test"
STATE_TOPIC = f"{PREFIX}/supervisors/host-a/state"


def _online(m: Received) -> bool:
    return m.topic == STATE_TOPIC and bool(m.payload) and m.json()["state"] == "online"


async def test_broker_restart_republishes_the_latest_retained_state(
    broker_factory: Callable[..., Awaitable[Broker]], start_publisher: Callable[..., RunningPublisher]
) -> None:
    broker = await broker_factory()  # no persistence: a restarted broker has forgotten every retained message
    handle = start_publisher(prefix=PREFIX, port=broker.port)
    publisher = handle.publisher
    async with watching(f"{PREFIX}/#", port=broker.port) as watcher:
        await watcher.wait_for(_online)
        publisher.node_status(node_status(NodeState.READY))
        publisher.recovery_report(recovery_report())
        await watcher.wait_for(lambda m: m.topic == f"{PREFIX}/nodes/alpha/recovery")

    await broker.stop()
    await eventually(lambda: not publisher.connected, what="publisher noticed the broker is gone")
    # Supervision goes on while the broker is down; the observer calls return at once.
    publisher.node_status(node_status(NodeState.BACKOFF, restarts=1))
    publisher.node_status(node_status(NodeState.RECOVERING, restarts=1))
    await broker.start()

    async with watching(STATE_TOPIC, port=broker.port) as watcher:
        birth = await watcher.wait_for(_online, within=15)
    # A new session (every connection attempt takes an id, so a refused attempt while the broker was
    # starting may have used one).
    assert birth.json()["session"] >= 2
    assert publisher.connected
    async with watching(f"{PREFIX}/nodes/alpha/state", port=broker.port) as watcher:
        await watcher.wait_for(lambda m: bool(m.payload) and m.json()["state"] == "recovering")
    retained = await retained_now(f"{PREFIX}/#", port=broker.port)
    assert (
        json.loads(retained[f"{PREFIX}/nodes/alpha/state"])["state"] == "recovering"
    )  # the latest, not stale
    assert json.loads(retained[f"{PREFIX}/nodes/alpha/recovery"])["full_recovery_ms"] == 1300.0
    assert json.loads(retained[STATE_TOPIC])["session"] == publisher.session


async def test_events_queue_while_the_broker_is_down_and_the_oldest_are_dropped(
    broker_factory: Callable[..., Awaitable[Broker]], start_publisher: Callable[..., RunningPublisher]
) -> None:
    broker = await broker_factory()
    # A fake clock holds the publisher in its reconnect backoff until the test lets it go, so a subscriber
    # is listening before the queued (non-retained) events are flushed.
    clock = FakeClock()
    handle = start_publisher(prefix=PREFIX, port=broker.port, clock=clock, queue_size=3)
    publisher = handle.publisher
    async with watching(STATE_TOPIC, port=broker.port) as watcher:
        await watcher.wait_for(_online)

    await broker.stop()
    await eventually(lambda: not publisher.connected, what="publisher noticed the broker is gone")
    states = [
        NodeState.STARTING,
        NodeState.RECOVERING,
        NodeState.READY,
        NodeState.BACKOFF,
        NodeState.STARTING,
    ]
    for state in states:
        publisher.node_status(node_status(state))
    assert publisher.queued_events == 3
    assert publisher.dropped_events == 2

    await broker.start()
    async with watching(f"{PREFIX}/events/#", port=broker.port) as watcher:

        def reconnected() -> bool:
            clock.advance(60.0)  # wakes the backoff sleep, whenever the publisher enters it
            return publisher.connected

        await eventually(reconnected, within=15, what="publisher reconnected")
        last = await watcher.wait_for(lambda m: m.json()["seq"] == 5)
        received = [m.json() for m in watcher.messages]
    assert [e["seq"] for e in received] == [3, 4, 5]  # 1 and 2 were dropped: the gap shows it
    assert [e["to"] for e in received] == ["ready", "backoff", "starting"]
    assert last.json()["from"] == "backoff"
    assert publisher.queued_events == 0
    assert publisher.dropped_events == 2
