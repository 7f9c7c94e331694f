"""DurableStore against a real Redis: awaited writes on nautilus' general keys, reads overlaid."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from recovery.durable import DurableStore, DurableWriteError, general_key

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]


async def test_set_lands_on_the_general_key_before_returning(redis_client: aioredis.Redis) -> None:
    trader = f"DUR-{uuid.uuid4().hex[:8].upper()}"
    loaded = {"gen": b"old"}
    store = DurableStore(redis=redis_client, trader_id=trader, loaded=loaded.get)
    try:
        assert store.get("gen") == b"old"
        await store.set("gen", b"new")
        assert await redis_client.get(f"trader-{trader}:general:gen") == b"new"
        assert store.get("gen") == b"new"
        await store.delete("gen")
        assert await redis_client.exists(general_key(trader, "gen")) == 0
        assert store.get("gen") is None  # not what nautilus loaded before the delete
        with pytest.raises(TypeError):
            await store.set("gen", "text")  # type: ignore[arg-type]
    finally:
        await redis_client.delete(general_key(trader, "gen"))


async def test_unreachable_redis_is_an_error_naming_the_key() -> None:
    # A port nothing listens on: the write must fail loudly, within the timeout.
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    store = DurableStore(redis=dead, trader_id="DUR-DEAD", loaded=lambda key: None, timeout_s=1.0)
    try:
        with pytest.raises(DurableWriteError) as caught:
            await store.set("stop-gen", b"3")
        assert caught.value.key == "stop-gen"
        assert store.get("stop-gen") is None
    finally:
        await dead.aclose()
