"""Durable key/values for strategies: awaited Redis writes on the keys nautilus' `cache.add` uses.

`cache.add(key, value)` returns before the value reaches Redis (a tokio task writes it), so a kill -9 right
after it loses the write. A value that must be durable before an action (the stop generation before the
submit) is written here instead: `await store.set(...)` returns only once Redis acknowledged it. Nautilus
reads the same key back with `cache.get(key)` after a restart (`trader-{trader_id}:general:{key}`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0


class DurableWriteError(RuntimeError):
    """Redis did not acknowledge a write in time (or refused it): the value is NOT known to be durable."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"durable write of {key!r} failed: {reason}")
        self.key = key
        self.reason = reason


class RedisLike(Protocol):
    """The part of `redis.asyncio.Redis` the store uses."""

    def set(self, name: str, value: bytes) -> Awaitable[Any]: ...

    def delete(self, *names: str) -> Awaitable[Any]: ...


def general_key(trader_id: str, key: str) -> str:
    """Where nautilus keeps `cache.add(key, ...)` with `use_trader_prefix=True, use_instance_id=False`."""
    return f"trader-{trader_id}:general:{key}"


class DurableStore:
    """Awaited writes; reads come from what nautilus loaded at start, overlaid with this run's writes."""

    def __init__(
        self,
        *,
        redis: RedisLike,
        trader_id: str,
        loaded: Callable[[str], bytes | None],
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._redis = redis
        self._trader_id = trader_id
        self._loaded = loaded
        self._timeout_s = timeout_s
        # This run's writes (None = deleted): `get` must not return what nautilus loaded before them.
        self._written: dict[str, bytes | None] = {}

    def redis_key(self, key: str) -> str:
        return general_key(self._trader_id, key)

    async def set(self, key: str, value: bytes) -> None:
        """Return only once Redis acknowledged the write; raise DurableWriteError otherwise."""
        if not isinstance(value, bytes):
            raise TypeError(f"durable values are bytes, got {type(value).__name__}")
        await self._write(key, self._redis.set(self.redis_key(key), value))
        self._written[key] = value

    async def delete(self, key: str) -> None:
        await self._write(key, self._redis.delete(self.redis_key(key)))
        self._written[key] = None

    def get(self, key: str) -> bytes | None:
        if key in self._written:
            return self._written[key]
        return self._loaded(key)

    async def _write(self, key: str, operation: Awaitable[Any]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await operation
        except TimeoutError:
            raise DurableWriteError(key, f"no acknowledgement within {self._timeout_s:g}s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # redis-py raises its own ConnectionError/ResponseError family
            raise DurableWriteError(key, f"{type(exc).__name__}: {exc}") from exc
