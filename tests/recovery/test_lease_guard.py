"""The node's own lease check: the pure judgement of one read, and the guard on a private Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from recovery.lease_guard import (
    Fence,
    FencedRequestError,
    LeaseGuard,
    LeaseSettings,
    Observation,
    Verdict,
    judge,
)
from supervisor.lease import ACQUIRE, epoch_key, lease_key

MARGIN = 0.6


@pytest.mark.parametrize(
    ("observation", "deadline", "now", "verdict", "new_deadline"),
    [
        pytest.param(Observation(b"4 a/x", 2000, sent=100.0), 99.0, 100.1, Verdict.HELD, 101.4, id="held"),
        pytest.param(
            Observation(b"4 a/x", 700, sent=100.0), 101.0, 100.2, Verdict.EXPIRED, 100.1, id="within-margin"
        ),
        pytest.param(Observation(None, -2, sent=100.0), 101.0, 100.1, Verdict.LOST, 101.0, id="gone"),
        pytest.param(
            Observation(b"5 b/y", 3000, sent=100.0), 101.0, 100.1, Verdict.EPOCH_CHANGED, 101.0, id="taken"
        ),
        pytest.param(
            Observation(b"5 a/x", 3000, sent=100.0),
            101.0,
            100.1,
            Verdict.EPOCH_CHANGED,
            101.0,
            id="re-acquired",
        ),
        pytest.param(Observation(b"4 a/x", -1, sent=100.0), 101.0, 100.1, Verdict.LOST, 101.0, id="no-ttl"),
        pytest.param(Observation(b"garbage", 3000, sent=100.0), 101.0, 100.1, Verdict.LOST, 101.0, id="bad"),
        pytest.param(None, 101.0, 100.5, Verdict.UNREACHABLE, 101.0, id="silent-before-deadline"),
        pytest.param(None, 101.0, 101.0, Verdict.EXPIRED, 101.0, id="silent-at-deadline"),
    ],
)
def test_judge(
    observation: Observation | None, deadline: float, now: float, verdict: Verdict, new_deadline: float
) -> None:
    judgement = judge(observation, epoch=4, margin=MARGIN, deadline=deadline, now=now)
    assert judgement.verdict is verdict
    assert judgement.deadline == pytest.approx(new_deadline)
    assert verdict.halts == (verdict not in (Verdict.HELD, Verdict.UNREACHABLE))
    assert bool(judgement.reason) == verdict.halts


def test_the_fence_refuses_what_changes_something_until_confirmed() -> None:
    fence = Fence()
    fence.check("GET", "/fapi/v2/account")
    with pytest.raises(FencedRequestError, match="DELETE /fapi/v1/order refused: the lease is not confirmed"):
        fence.check("DELETE", "/fapi/v1/order")
    fence.confirmed = True
    fence.check("POST", "/fapi/v1/order")


def test_settings_from_the_supervisors_env() -> None:
    env = {
        "FLEET_EPOCH": "7",
        "FLEET_LEASE_KEY": "fleet:lease:T-1",
        "FLEET_LEASE_TTL_MS": "3000",
        "FLEET_LEASE_MARGIN_MS": "600",
    }
    assert LeaseSettings.from_env(env) == LeaseSettings(key="fleet:lease:T-1", epoch=7, ttl=3.0, margin=0.6)
    assert LeaseSettings.from_env({}) is None


@pytest.fixture
def redis(private_redis_client: aioredis.Redis) -> aioredis.Redis:
    return private_redis_client  # the module's own server (tests/conftest.py)


async def acquire(redis: aioredis.Redis, trader_id: str, holder: str, ttl_ms: int = 3000) -> int:
    held, epoch = await redis.eval(
        ACQUIRE, 2, lease_key(trader_id), epoch_key(trader_id), holder, str(ttl_ms)
    )
    assert held == 1
    return int(epoch)


def guard(port: int, epoch: int, lost: list[tuple[str, float]]) -> LeaseGuard:
    return LeaseGuard(
        redis=aioredis.Redis(port=port, socket_timeout=5),
        settings=LeaseSettings(key=lease_key("T-G"), epoch=epoch, ttl=3.0, margin=MARGIN),
        fence=Fence(),
        on_lost=lambda reason: lost.append((reason, time.monotonic())),
        call_timeout=2.0,
    )


async def test_the_guard_confirms_its_epoch_only(redis: aioredis.Redis, redis_port: int) -> None:
    epoch = await acquire(redis, "T-G", "host-a/1")
    lost: list[tuple[str, float]] = []
    other = guard(redis_port, epoch + 1, lost)
    assert (await other.confirm()).verdict is Verdict.EPOCH_CHANGED and not other.fence.confirmed
    await other.aclose()
    mine = guard(redis_port, epoch, lost)
    assert (await mine.confirm()).verdict is Verdict.HELD and mine.fence.confirmed
    await mine.aclose()


async def test_a_lease_nobody_renews_halts_the_node_before_it_expires(
    redis: aioredis.Redis, redis_port: int
) -> None:
    """The supervisor froze (nobody renews): the guard halts margin before the key expires, not after."""
    epoch = await acquire(redis, "T-G", "host-a/1")
    lost: list[tuple[str, float]] = []
    g = guard(redis_port, epoch, lost)
    await g.confirm()
    g.start()
    try:
        async with asyncio.timeout(5):
            while not lost:  # noqa: ASYNC110 - the callback is the event
                await asyncio.sleep(0.02)
        reason, _ = lost[0]
        assert "expires within the margin" in reason and not g.fence.confirmed
        # The key still exists when the node halts: no other host could hold the lease yet.
        assert await redis.pttl(lease_key("T-G")) > 0
    finally:
        await g.aclose()


async def test_renewals_keep_the_guard_quiet_and_a_new_epoch_halts_it(
    redis: aioredis.Redis, redis_port: int
) -> None:
    epoch = await acquire(redis, "T-G", "host-a/1")
    lost: list[tuple[str, float]] = []
    g = guard(redis_port, epoch, lost)
    await g.confirm()
    g.start()
    try:
        for _ in range(5):  # 5 s of renewals every second: past the TTL, and quiet
            await asyncio.sleep(1.0)
            await acquire(redis, "T-G", "host-a/1")
        assert lost == [] and g.fence.confirmed
        await redis.delete(lease_key("T-G"))
        await acquire(redis, "T-G", "host-b/2")
        async with asyncio.timeout(3):
            while not lost:  # noqa: ASYNC110 - the callback is the event
                await asyncio.sleep(0.02)
        assert f"epoch {epoch + 1} of host-b/2" in lost[0][0]
    finally:
        await g.aclose()
