"""The write-ahead journal on the hub's real DurableStore and a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from recovery.durable import DurableStore, general_key
from recovery.journal import DurableJournal
from recovery.strategy_errors import StateWriteError
from tests.recovery.strategy_support import private_redis

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]


async def test_actions_wait_for_every_earlier_write(redis_client: aioredis.Redis) -> None:
    trader = f"JRN-{uuid.uuid4().hex[:8].upper()}"
    store = DurableStore(redis=redis_client, trader_id=trader, loaded=lambda key: None)
    failures: list[StateWriteError] = []
    journal = DurableJournal(store, name="t", on_failure=failures.append)
    journal.start()
    seen_at_action: list[bytes | None] = []
    acted = asyncio.Event()
    try:
        # With nothing pending an action runs at once (no added latency on the common path).
        ran_now: list[bool] = []
        journal.after_writes(lambda: ran_now.append(True), lambda exc: None)
        assert ran_now == [True]

        writes = [journal.write("state", f"v{i}".encode()) for i in range(5)]
        assert journal.busy

        def action() -> None:
            seen_at_action.append(store.get("state"))
            assert all(w.done() for w in writes)
            acted.set()

        journal.after_writes(action, lambda exc: pytest.fail(f"abandoned: {exc}"))
        async with asyncio.timeout(5):
            await acted.wait()
        # The action ran after the last write was acknowledged: Redis already has it.
        assert seen_at_action == [b"v4"]
        assert await redis_client.get(general_key(trader, "state")) == b"v4"
        await journal.drain()
        assert not journal.busy
        assert failures == []
    finally:
        await journal.aclose()
        await redis_client.delete(general_key(trader, "state"))


async def test_a_write_redis_never_acknowledges_breaks_the_journal_and_abandons_actions() -> None:
    async with private_redis() as server:
        client = aioredis.Redis(
            host="127.0.0.1", port=server.port, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        store = DurableStore(redis=client, trader_id="JRN-DOWN", loaded=lambda key: None, timeout_s=0.5)
        failures: list[StateWriteError] = []
        journal = DurableJournal(store, name="t", on_failure=failures.append, attempts=2, retry_delay=0.01)
        journal.start()
        try:
            await journal.write("state", b"before")
            await server.stop()
            lost = journal.write("state", b"after")
            abandoned: list[BaseException] = []
            journal.after_writes(lambda: pytest.fail("ran without its write"), abandoned.append)
            with pytest.raises(StateWriteError, match="state"):
                await lost
            await journal.drain()
            assert len(failures) == 1
            assert abandoned == [failures[0]]
            # Broken for good: a later write fails at once, a later action is abandoned at once.
            with pytest.raises(StateWriteError):
                await journal.write("state", b"later")
            later: list[BaseException] = []
            journal.after_writes(lambda: pytest.fail("ran"), later.append)
            assert later == [failures[0]]
        finally:
            await journal.aclose()
            await client.aclose()
