"""Leases against a real Redis of their own (paused, re-pointed and given a replica here): the scripts, the
keeper's renewals and deadline, and two runners of one trader_id on two "hosts"."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from supervisor.clock import SystemClock
from supervisor.config.schema import LeasesSpec, PlacementSpec
from supervisor.lease import (
    ACQUIRE,
    RELEASE,
    Holder,
    LeaseKeeper,
    LeaseTiming,
    epoch_key,
    lease_key,
    parse_lease_value,
)
from supervisor.node_logs import NodeLogWriter, NodeOutput
from supervisor.node_runner import NodePaths, NodeRunner
from supervisor.states import ExitReason, NodeState
from tests.supervisor.conftest import REPO, TEST_NODE, RecordingObserver, node_spec
from tests.supervisor.private_redis import private_redis

pytestmark = pytest.mark.redis

TIMING = LeaseTiming(ttl=3.0, margin=0.6)


@pytest.fixture
def redis(private_redis_client: aioredis.Redis) -> aioredis.Redis:
    return private_redis_client  # the module's own server (tests/conftest.py)


class Losses:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float]] = []
        self.event = asyncio.Event()

    def __call__(self, trader_id: str, reason: str) -> None:
        self.seen.append((trader_id, reason, time.monotonic()))
        self.event.set()


class KeeperFactory:
    """`keeper(host)`: a LeaseKeeper on the private Redis, with a client of its own (closed at the end)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.clients: list[aioredis.Redis] = []

    def __call__(self, host: str, losses: Losses | None = None) -> LeaseKeeper:
        client = aioredis.Redis(port=self.port, socket_timeout=5)
        self.clients.append(client)
        return LeaseKeeper(
            redis=lambda: client,
            holder=Holder.new(host),
            timing=TIMING,
            on_lost=losses or Losses(),
            call_timeout=2.0,
        )


@pytest.fixture
async def keeper(redis: aioredis.Redis, redis_port: int) -> AsyncIterator[KeeperFactory]:
    factory = KeeperFactory(redis_port)
    try:
        yield factory
    finally:
        for client in factory.clients:
            await client.aclose()


async def test_acquire_is_exclusive_renews_for_its_holder_and_counts_epochs(redis: aioredis.Redis) -> None:
    keys = [lease_key("T-1"), epoch_key("T-1")]
    assert await redis.eval(ACQUIRE, 2, *keys, "a/1", "3000") == [1, 1]
    # The holder again: renewed, same epoch.
    assert await redis.eval(ACQUIRE, 2, *keys, "a/1", "3000") == [1, 1]
    held, epoch, holder, pttl = await redis.eval(ACQUIRE, 2, *keys, "b/2", "3000")
    assert (held, epoch, holder) == (0, 1, b"a/1") and 0 < pttl <= 3000
    # Only the holder releases it.
    assert await redis.eval(RELEASE, 1, keys[0], "b/2") == 0
    assert await redis.eval(RELEASE, 1, keys[0], "a/1") == 1
    # The next acquisition, by anyone, is a new epoch.
    assert await redis.eval(ACQUIRE, 2, *keys, "b/2", "3000") == [1, 2]
    assert parse_lease_value(await redis.get(keys[0])) == (2, "b/2")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [(b"7 host-a/abc", (7, "host-a/abc")), (None, None), (b"x host", None), (b"7", None), (b"7 ", None)],
)
def test_parse_lease_value(raw: bytes | None, parsed: tuple[int, str] | None) -> None:
    assert parse_lease_value(raw) == parsed


async def test_another_host_acquires_only_after_the_holder_released(keeper: KeeperFactory) -> None:
    a, b = keeper("host-a"), keeper("host-b")
    lease = await a.acquire("T-2")
    assert lease is not None and lease.epoch == 1
    assert await b.acquire("T-2") is None
    assert b.other_holder("T-2") == "host-a"
    # It asks again right after host a's lease would expire, if that is before its next ttl/3 tick.
    assert 0 < b.retry_in("T-2") <= TIMING.renew_every
    await a.release_all()
    taken = await b.acquire("T-2")
    assert taken is not None and taken.epoch == 2
    assert a.node_env(lease)["FLEET_EPOCH"] == "1"
    assert b.node_env(taken)["FLEET_HOST_ID"] == "host-b"


async def test_renewals_keep_the_lease_past_its_ttl(redis: aioredis.Redis, keeper: KeeperFactory) -> None:
    losses = Losses()
    a = keeper("host-a", losses)
    await a.acquire("T-3")
    task = asyncio.create_task(a.run())
    try:
        await asyncio.sleep(TIMING.ttl * 1.5)
        assert losses.seen == []
        assert parse_lease_value(await redis.get(lease_key("T-3"))) == (1, str(a.holder))
        assert await redis.pttl(lease_key("T-3")) > TIMING.ttl * 1000 / 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unrenewable_lease_kills_the_node_before_it_can_expire(
    redis: aioredis.Redis, redis_port: int
) -> None:
    """Redis stops answering (CLIENT PAUSE): the keeper gives the lease up at ttl - margin and the node's
    process group is SIGKILLed then, while the key still exists: no other host could have acquired it yet."""
    node = subprocess.Popen(["sleep", "60"], start_new_session=True)  # noqa: ASYNC220 - returns at once
    kills: list[float] = []

    def on_lost(trader_id: str, reason: str) -> None:
        os.killpg(node.pid, signal.SIGKILL)
        kills.append(time.monotonic())
        losses(trader_id, reason)

    losses = Losses()
    client = aioredis.Redis(port=redis_port, socket_timeout=5)
    a = LeaseKeeper(
        redis=lambda: client, holder=Holder.new("host-a"), timing=TIMING, on_lost=on_lost, call_timeout=2.0
    )
    sent = time.monotonic()
    lease = await a.acquire("T-4")
    assert lease is not None
    task = asyncio.create_task(a.run())
    try:
        pauser = aioredis.Redis(port=redis_port, socket_timeout=5)
        await pauser.client_pause(int(TIMING.ttl * 2000), all=True)
        await pauser.aclose()
        async with asyncio.timeout(TIMING.ttl * 2):
            await losses.event.wait()
        assert node.wait(timeout=5) == -signal.SIGKILL
        (trader_id, reason, _), killed_at = losses.seen[0], kills[0]
        assert trader_id == "T-4" and "not renewed" in reason
        assert a.held("T-4") is None
        # The last successful renewal was sent at `sent` or later; the key lives ttl from then.
        last_renewal = max(sent, lease.deadline - TIMING.valid_for)
        assert killed_at < last_renewal + TIMING.ttl
    finally:
        node.kill()
        node.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await redis.client_unpause()


async def test_a_lease_taken_over_in_redis_is_lost_at_the_next_renewal(
    redis: aioredis.Redis, keeper: KeeperFactory
) -> None:
    losses = Losses()
    a, b = keeper("host-a", losses), keeper("host-b")
    await a.acquire("T-5")
    task = asyncio.create_task(a.run())
    try:
        await redis.delete(lease_key("T-5"))  # expired (as after a Redis failover that lost it)
        taken = await b.acquire("T-5")
        assert taken is not None and taken.epoch == 2
        async with asyncio.timeout(TIMING.renew_every * 2):
            await losses.event.wait()
        assert "epoch 2" in losses.seen[0][1] and a.held("T-5") is None
        # Its best-effort release must not remove the new holder's lease.
        await asyncio.sleep(0.2)
        assert parse_lease_value(await redis.get(lease_key("T-5"))) == (2, str(b.holder))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_with_a_replica_a_write_counts_only_once_the_replica_has_it(
    redis_port: int, keeper: KeeperFactory
) -> None:
    with private_redis(extra_args=["--replicaof", "127.0.0.1", str(redis_port)]) as replica_port:
        replica = aioredis.Redis(port=replica_port, socket_timeout=5)
        primary = aioredis.Redis(port=redis_port, socket_timeout=5)
        try:
            async with asyncio.timeout(10):
                while (await primary.info("replication")).get("connected_slaves", 0) < 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                while (await replica.info("replication")).get("master_link_status") != "up":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            a = keeper("host-a")
            lease = await a.acquire("T-6")
            assert lease is not None
            # WAIT returned after the replica had it: the lease is readable on the replica at once.
            assert parse_lease_value(await replica.get(lease_key("T-6"))) == (lease.epoch, str(a.holder))
            # The replica freezes (the primary still counts it, as after a network cut): no acknowledgement
            # within the wait, so the acquisition does not count.
            replica_pid = int((await replica.info("server"))["process_id"])
            os.kill(replica_pid, signal.SIGSTOP)
            try:
                b = keeper("host-b")
                assert await b.acquire("T-7") is None
                assert b.held("T-7") is None
            finally:
                os.kill(replica_pid, signal.SIGCONT)
        finally:
            await primary.aclose()
            await replica.aclose()


# ---- two runners (two hosts) of one trader_id -----------------------------------------------------


def lease_runner(
    base: Path, name: str, host: str, keeper_: LeaseKeeper, observer: RecordingObserver, out: NodeLogWriter,
    *flags: str, hosts: list[str] | None = None,
) -> NodeRunner:  # fmt: skip
    spec = node_spec(
        "probe",
        argv=[sys.executable, str(TEST_NODE), *flags],
        trader_id="TESTER-LEASE",
        placement=PlacementSpec(hosts=hosts),
    )
    paths = NodePaths(
        notify_socket=base / name / "n",
        pidfile=base / name / "probe.pid",
        spec_file=base / name / "probe.json",
        log_file=base / name / "probe.log",
    )
    (base / name).mkdir(exist_ok=True)
    return NodeRunner(
        spec=spec,
        argv=list(spec.command or ()),
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
        paths=paths,
        spec_payload=lambda s: {"name": s.name},
        output=NodeOutput(node=f"{name}.probe", path=paths.log_file, writer=out),
        observer=observer,
        clock=SystemClock(),
        leases=keeper_,
        host=host,
    )


class Hosts:
    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.writer = NodeLogWriter()
        self.tasks: list[asyncio.Task[Any]] = []
        self.runners: list[NodeRunner] = []
        self.clients: list[aioredis.Redis] = []

    def start(self, host: str, *flags: str, hosts: list[str] | None = None) -> tuple[NodeRunner, LeaseKeeper]:
        observer = RecordingObserver()
        runner_box: list[NodeRunner] = []
        client = aioredis.Redis(port=self.port, socket_timeout=5)
        self.clients.append(client)
        k = LeaseKeeper(
            redis=lambda: client,
            holder=Holder.new(host),
            timing=TIMING,
            on_lost=lambda trader_id, reason: runner_box[0].fence(reason),
            call_timeout=2.0,
        )
        runner = lease_runner(self.base, host, host, k, observer, self.writer, *flags, hosts=hosts)
        runner_box.append(runner)
        self.runners.append(runner)
        self.tasks += [asyncio.create_task(runner.run()), asyncio.create_task(k.run())]
        return runner, k

    async def close(self) -> None:
        for runner in self.runners:
            await asyncio.wait_for(runner.stop(), 15)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.aclose()


@pytest.fixture
async def hosts(short_dir: Path, redis: aioredis.Redis, redis_port: int) -> AsyncIterator[Hosts]:
    h = Hosts(short_dir, redis_port)
    h.writer.start()
    try:
        yield h
    finally:
        await h.close()
        h.writer.stop()


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Bounded wait for a runner condition (runners have no event for "any state change")."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_one_trader_id_runs_on_one_host_and_fails_over_when_fenced(
    hosts: Hosts, redis: aioredis.Redis
) -> None:
    a, _ = hosts.start("host-a")
    await until(lambda: a.state is NodeState.READY)
    b, _ = hosts.start("host-b")
    await until(lambda: b.state is NodeState.STANDBY)
    assert b.status().pid is None and "host-a holds the lease" in b.status().standby_reason
    assert a.status().lease_held and not b.status().lease_held
    pid = a.status().pid
    assert pid is not None
    # Redis stops answering for longer than the TTL: host a cannot renew, kills its node at ttl - margin and
    # does not restart it (the restart policy would have); the lease expires.
    pauser = aioredis.Redis(port=hosts.port, socket_timeout=5)
    await pauser.client_pause(int((TIMING.ttl + 0.5) * 1000), all=True)
    await pauser.aclose()
    await until(lambda: a.state is not NodeState.READY, timeout=TIMING.ttl + 2)
    exit_info = a.status().last_exit
    assert exit_info is not None and exit_info.reason is ExitReason.FENCED
    assert exit_info.signal == signal.SIGKILL and a.status().restarts == 0
    # Once Redis answers, the first host to ask after the lease expired acquires it (a new epoch) and runs the
    # node; the other stays in standby. Both are alive here, so either may win.
    await until(lambda: NodeState.READY in (a.state, b.state), timeout=TIMING.ttl + 5)
    await asyncio.sleep(TIMING.renew_every * 1.5)
    assert sorted(str(r.state) for r in (a, b)) == ["ready", "standby"]
    owner = a if a.state is NodeState.READY else b
    assert owner.status().pid not in (None, pid)
    held = parse_lease_value(await redis.get(lease_key("TESTER-LEASE")))
    assert held is not None and held[0] == 2 and held[1].startswith(owner.host + "/")


async def test_a_node_that_exits_75_is_fenced_and_not_restarted_by_the_policy(hosts: Hosts) -> None:
    a, _ = hosts.start("host-a", "--crash-after", "0.3", "--exit-code", "75", hosts=["host-a"])
    await until(lambda: a.status().last_exit is not None and a.state is NodeState.STANDBY)
    assert "lease lost here" in a.status().standby_reason
    exit_info = a.status().last_exit
    assert exit_info is not None and exit_info.reason is ExitReason.FENCED and exit_info.code == 75
    assert a.status().restarts == 0


async def test_placement_keeps_a_node_in_standby_on_an_excluded_host(hosts: Hosts) -> None:
    a, keeper_a = hosts.start("host-a", hosts=["host-b"])
    await until(lambda: a.state is NodeState.STANDBY)
    assert "exclude this host (host-a)" in a.status().standby_reason
    assert keeper_a.holders() == {}


def test_lease_timing_from_spec() -> None:
    timing = LeaseTiming.from_spec(LeasesSpec())
    assert (timing.ttl, timing.margin, timing.renew_every, timing.valid_for) == (10.0, 2.0, 10 / 3, 8.0)


def test_a_supervisor_started_after_its_predecessor_died_continues_its_session(tmp_path: Path) -> None:
    from supervisor.child import process_start_time

    first = Holder.for_state_dir(tmp_path, "host-a")
    assert Holder.for_state_dir(tmp_path, "host-a") == first  # the same process: the same session
    previous = subprocess.Popen(["sleep", "30"])
    try:
        record = {"host": "host-a", "session": "s-prev", "pid": previous.pid}
        record["start_time"] = process_start_time(previous.pid)
        (tmp_path / "lease-holder.json").write_text(json.dumps(record))
        # The supervisor that wrote it still runs: a new session (never two supervisors on one holder).
        assert Holder.for_state_dir(tmp_path, "host-a").session != "s-prev"
        (tmp_path / "lease-holder.json").write_text(json.dumps(record))
    finally:
        previous.kill()
        previous.wait()
    # It died: its leases are this supervisor's to renew.
    assert Holder.for_state_dir(tmp_path, "host-a") == Holder("host-a", "s-prev")
    assert Holder.for_state_dir(tmp_path, "host-b").session != "s-prev"
