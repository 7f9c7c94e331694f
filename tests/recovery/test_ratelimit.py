"""The per-account request limiter on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from recovery.ratelimit import LocalRequestLimiter
from supervisor.clock import FakeClock

pytestmark = pytest.mark.asyncio


async def test_concurrency_is_bounded() -> None:
    limiter = LocalRequestLimiter(max_concurrency=3)
    release = asyncio.Event()

    async def request() -> None:
        async with limiter.slot(1):
            await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(7)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert limiter.in_flight == 3
    release.set()
    await asyncio.gather(*tasks)
    assert limiter.peak_in_flight == 3 and limiter.in_flight == 0


async def test_weight_budget_waits_for_the_window_to_free_up() -> None:
    clock = FakeClock()
    limiter = LocalRequestLimiter(weight_per_minute=100, share=0.5, clock=clock)  # budget 50
    assert limiter.budget == 50
    for _ in range(5):
        async with limiter.slot(10):
            pass
    assert limiter.used == 50
    waiting = asyncio.create_task(_one(limiter, 10))
    await asyncio.sleep(0)
    assert not waiting.done()  # over budget until the first spending leaves the window
    clock.advance(59.9)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance(0.2)
    await asyncio.wait_for(waiting, 1)
    assert limiter.used == 10 and limiter.waited_s == pytest.approx(60.0)


async def test_a_wait_in_progress_counts_as_far_as_it_has_gone() -> None:
    """A recovery step that begins while a request already waits (bench/reboot_storm.py: the reconcile step
    began just after its first request started a 59 s wait) must see the time waited within it, or its bound
    runs out uncounted and the recovery fails."""
    clock = FakeClock()
    limiter = LocalRequestLimiter(weight_per_minute=10, share=1.0, clock=clock)
    async with limiter.slot(10):
        pass
    waiting = asyncio.create_task(_one(limiter, 10))
    await asyncio.sleep(0)
    step_began = limiter.waited_s  # the step reads the total after the wait began
    clock.advance(30)
    assert limiter.waited_s - step_began == pytest.approx(30.0)
    clock.advance(31)
    await asyncio.wait_for(waiting, 1)
    assert limiter.waited_s == pytest.approx(60.0)  # the wait as planned, not beyond


async def test_a_request_heavier_than_the_budget_is_capped_not_stuck() -> None:
    limiter = LocalRequestLimiter(weight_per_minute=10, share=1.0, clock=FakeClock())
    await asyncio.wait_for(_one(limiter, 40), 1)
    assert limiter.used == 10


async def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="share"):
        LocalRequestLimiter(share=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        LocalRequestLimiter(max_concurrency=0)


async def _one(limiter: LocalRequestLimiter, weight: int) -> None:
    async with limiter.slot(weight):
        pass


async def test_pause_holds_new_requests_until_the_venue_allows_them() -> None:
    clock = FakeClock()
    limiter = LocalRequestLimiter(clock=clock)
    limiter.pause(20.5)
    waiting = asyncio.create_task(_one(limiter, 5))
    await asyncio.sleep(0)
    clock.advance(20.0)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance(0.6)
    await asyncio.wait_for(waiting, 1)
    assert limiter.waited_s == pytest.approx(20.5)
