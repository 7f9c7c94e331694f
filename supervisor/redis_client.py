"""The daemon's one Redis connection pool (cache compaction now, fleet coordination later).

Created on first use, so a fleet of `command:` nodes never needs Redis. Every call is bounded by
`redis.timeout` from fleet.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from supervisor.config.schema import RedisSpec
from supervisor.secrets import resolve_secret


class RedisOwner:
    def __init__(self, spec: RedisSpec, environ: Mapping[str, str]) -> None:
        self._spec = spec
        self._environ = dict(environ)
        self._client: aioredis.Redis | None = None

    @property
    def call_timeout(self) -> float:
        return float(self._spec.timeout)

    def client(self) -> aioredis.Redis:
        if self._client is None:
            password = (
                resolve_secret(self._spec.password, self._environ).reveal() if self._spec.password else None
            )
            self._client = aioredis.Redis.from_url(
                self._spec.url,
                password=password,
                # Compaction moves nautilus' msgpack values byte for byte.
                decode_responses=False,
                socket_timeout=self._spec.timeout,
                socket_connect_timeout=self._spec.timeout,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
