"""The fleet-wide request budget on a real Redis: admission per window across limiters (nodes), the venue's
answers correcting the shared count, orders per account, the bounded fallback to a local share and the way
back, and the supervisor's reader of the same keys.

Windows are one second here (the venue's are a minute; the limiter takes the length from exchangeInfo), so
that the tests cross windows in real time, on Redis' clock as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from recovery.fleet_limiter import FleetRequestLimiter
from recovery.ratelimit import VenueLimits, VenueUsage
from supervisor import rate_budget
from tests.recovery.strategy_support import free_port, private_redis

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]

ONE_SECOND = VenueLimits(weight=100, window_s=1.0, orders_10s=4, orders_1m=100)


@pytest.fixture
async def group(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    name = f"test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{rate_budget.KEY_PREFIX}:*{name}*")]
        if keys:
            await redis_client.delete(*keys)


def limiter(redis: aioredis.Redis, group: str, **kwargs: object) -> FleetRequestLimiter:
    options: dict[str, object] = {"limits": ONE_SECOND, "recovery_share": 0.5, "call_timeout_s": 0.5}
    options.update(kwargs)
    return FleetRequestLimiter(redis=redis, group=group, account=f"{group}/acct", **options)  # type: ignore[arg-type]


async def test_two_nodes_on_one_group_never_exceed_the_budget_together(group: str) -> None:
    clients = [aioredis.Redis(socket_timeout=2) for _ in range(2)]
    nodes = [limiter(c, group) for c in clients]  # budget 50 per 1 s window, together
    admitted: dict[int, int] = defaultdict(int)

    async def request(node: FleetRequestLimiter, weight: int) -> None:
        async with node.slot(weight) as ticket:
            start = getattr(ticket, "window_start_ms", None)
            assert start is not None, "admitted by Redis, not locally"
            admitted[start] += weight
            await asyncio.sleep(0.005)

    try:
        async with asyncio.timeout(20):
            async with asyncio.TaskGroup() as tasks:
                for i in range(40):  # 40 x 5 = 200 weight: at least four windows
                    tasks.create_task(request(nodes[i % 2], 5), name=f"request-{i}")
    finally:
        for client in clients:
            await client.aclose()
    assert sum(admitted.values()) == 200
    assert max(admitted.values()) <= 50, dict(admitted)
    assert len(admitted) >= 4
    assert all(n.budget_detail()["scope"] == "fleet" for n in nodes)
    assert sum(n.waited_s for n in nodes) > 0


async def test_the_venue_count_raises_the_shared_count(redis_client: aioredis.Redis, group: str) -> None:
    first, second = limiter(redis_client, group), limiter(redis_client, group)
    await _wait_for_window_with_room(redis_client)
    async with first.slot(5) as ticket:
        # Others behind the address (live trading, another program) spent more than the fleet admitted.
        await ticket.observe(VenueUsage(weight=40, window_s=1.0))
    usage = await rate_budget.read_group_usage(redis_client, group, timeout_s=1.0)
    assert usage.used == 40 and usage.limit == 100 and usage.recovery_budget == 50
    assert usage.window_ms == 1000 and 0 < usage.resets_in_ms <= 1000
    async with second.slot(10):  # 40 + 10 = 50: fits
        pass
    before = second.waited_s
    await asyncio.wait_for(_enter(second, 1), 3)  # 51 > 50: waits for the next window
    assert second.waited_s > before


async def test_a_ban_holds_every_node_of_the_group_for_its_retry_after(
    redis_client: aioredis.Redis, group: str
) -> None:
    first, second = limiter(redis_client, group), limiter(redis_client, group)
    async with first.slot(1) as ticket:
        await ticket.observe(VenueUsage(limited=418, retry_after_s=2.5))  # longer than a window
    paused = (await rate_budget.read_group_usage(redis_client, group, timeout_s=1.0)).paused_ms
    assert 2000 < paused <= 2500
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(_enter(second, 1), 5)  # the other node never heard the 418 itself
    assert asyncio.get_running_loop().time() - started >= 2.0


async def test_a_refusal_without_retry_after_spends_the_window(
    redis_client: aioredis.Redis, group: str
) -> None:
    node = limiter(redis_client, group)
    await _wait_for_window_with_room(redis_client)
    async with node.slot(1) as ticket:
        await ticket.observe(VenueUsage(limited=429))
    assert (await rate_budget.read_group_usage(redis_client, group, timeout_s=1.0)).used >= 100


async def test_a_stale_venue_count_from_the_previous_window_is_ignored(
    redis_client: aioredis.Redis, group: str
) -> None:
    node = limiter(redis_client, group)
    async with node.slot(5) as ticket:
        await asyncio.sleep(1.1)  # the answer arrives in the next window
        await ticket.observe(VenueUsage(weight=45, window_s=1.0))
    assert (await rate_budget.read_group_usage(redis_client, group, timeout_s=1.0)).used < 45


async def test_orders_are_budgeted_per_account(redis_client: aioredis.Redis, group: str) -> None:
    node = limiter(redis_client, group)  # orders: 4 per 10 s x 0.5 = 2
    for _ in range(2):
        async with node.slot(0, orders=1):
            pass
    third = asyncio.create_task(_enter(node, 0, orders=1))
    await asyncio.sleep(0.3)
    assert not third.done(), "a third order within 10 s must wait"
    third.cancel()
    with pytest.raises(asyncio.CancelledError):
        await third
    other = FleetRequestLimiter(
        redis=redis_client, group=group, account=f"{group}/other", limits=ONE_SECOND, call_timeout_s=0.5
    )
    async with asyncio.timeout(1):
        async with other.slot(0, orders=1):  # another account: its own order budget
            pass
    keys = [
        k.decode()
        async for k in redis_client.scan_iter(match=f"{rate_budget.KEY_PREFIX}:orders:{group}/acct:*")
    ]
    assert sorted(k.split(":")[-2] for k in keys) == ["10000", "60000"]
    ttls = [await redis_client.pttl(k) for k in keys]
    assert all(0 < ttl <= 120_000 for ttl in ttls), ttls


async def test_unreachable_redis_falls_back_to_a_local_share_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = aioredis.Redis(port=_closed_port(), socket_connect_timeout=0.2)
    node = FleetRequestLimiter(
        redis=dead, group="g-dead", account="a", limits=VenueLimits(weight=1000), fallback_share=0.02
    )  # local: 20 weight per minute
    try:
        with caplog.at_level(logging.WARNING, logger="recovery.fleet_limiter"):
            async with asyncio.timeout(2):
                for _ in range(4):
                    async with node.slot(5):
                        pass
            blocked = asyncio.create_task(_enter(node, 5))
            await asyncio.sleep(0.2)
            assert not blocked.done(), "the local share is 20 weight a minute"
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
    finally:
        await dead.aclose()
    detail = node.budget_detail()
    assert detail["scope"] == "local" and detail["group"] == "g-dead"
    assert detail["reason"].startswith("fleet budget in Redis unavailable: ") and detail["fallbacks"] == 1
    warnings = [r.getMessage() for r in caplog.records if "falls back to a local share" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per request


async def test_a_hung_redis_is_bounded_by_the_call_timeout() -> None:
    async with _silent_server() as port:
        hung = aioredis.Redis(port=port, socket_timeout=30)
        node = FleetRequestLimiter(redis=hung, group="g-hung", account=None, call_timeout_s=0.2)
        try:
            async with asyncio.timeout(2):
                async with node.slot(5):
                    pass
        finally:
            await hung.aclose()
    assert node.budget_detail()["scope"] == "local"
    assert "did not answer within 0.2s" in node.budget_detail()["reason"]


async def test_back_on_the_shared_budget_after_redis_restarts() -> None:
    async with private_redis() as server:
        client = aioredis.Redis(port=server.port, socket_connect_timeout=0.2, socket_timeout=1)
        node = FleetRequestLimiter(
            redis=client, group="g-restart", account="a", limits=ONE_SECOND, retry_redis_after_s=0.3
        )
        try:
            async with node.slot(5):
                pass
            assert node.scope == "fleet"
            await server.stop()
            async with node.slot(5):
                pass
            assert node.scope == "local"
            async with private_redis(server.port):
                await asyncio.sleep(0.35)
                async with node.slot(5):
                    pass
                assert node.scope == "fleet"
                limits = await client.hgetall(rate_budget.limits_key("g-restart"))
                assert limits[b"weight"] == b"100"  # published again to the restarted Redis
        finally:
            await client.aclose()
    assert node.budget_detail()["scope"] == "local"  # this run did fall back, and says so
    assert node.fallbacks == 1


# ---- helpers --------------------------------------------------------------------------------------------


async def _enter(node: FleetRequestLimiter, weight: int, orders: int = 0) -> None:
    async with node.slot(weight, orders=orders):
        pass


async def _wait_for_window_with_room(redis: aioredis.Redis, need_ms: int = 500) -> None:
    seconds, micros = await redis.time()
    into = (seconds * 1000 + micros // 1000) % 1000
    if 1000 - into < need_ms:
        await asyncio.sleep((1000 - into) / 1000 + 0.01)


def _closed_port() -> int:
    return free_port()  # nothing listens on it


class _Silent:
    """A TCP server that accepts and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await reader.read(-1)


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    silent = _Silent()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in silent.writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_new_node_takes_the_limits_an_earlier_node_learned_from_the_venue(
    redis_client: aioredis.Redis, group: str
) -> None:
    """Its first request (exchangeInfo, which announces the limits) must not wait on the default budget that a
    storm of earlier restarts spent: the group's published limits are used from the start."""
    first = limiter(redis_client, group, limits=VenueLimits(weight=10_000, window_s=60.0))
    async with first.slot(1):
        pass  # publishes the limits it was given (as after exchangeInfo)
    second = limiter(redis_client, group, limits=None)  # knows nothing yet: 2,400 a minute by default
    assert second.budget == 1200
    async with second.slot(1):
        pass
    assert (second.limits.weight, second.limits.window_s, second.budget) == (10_000, 60.0, 5000)
