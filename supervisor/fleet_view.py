"""The fleet-wide view: which host runs which node, for `fleet status` on any host.

Each supervisor publishes its own view (host id, when, every node's status) to `fleet:view:{fleet}:{host}`
with a TTL, when a node changes state (at most every MIN_INTERVAL_S) and every renewal interval. A host
that died drops out of the view when its key expires. `merge_nodes` (pure) puts the local statuses and the
other hosts' views together: a node this host has in standby is shown as the host that runs it has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# A burst of transitions (a reload, a fleet starting) is published once.
MIN_INTERVAL_S = 0.5
# States in which a host does not run the node.
NOT_RUNNING = frozenset({"standby", "stopped"})


def view_key(fleet: str, host: str) -> str:
    return f"fleet:view:{fleet}:{host}"


class FleetViewPublisher:
    def __init__(
        self,
        *,
        redis: Callable[[], Any],
        fleet: str,
        host: str,
        snapshot: Callable[[], list[dict[str, Any]] | None],
        every: float,
        ttl: float,
        call_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self._redis = redis
        self._key = view_key(fleet, host)
        self._host = host
        self._snapshot = snapshot
        self._every = every
        self._ttl_ms = round(ttl * 1000)
        self._call_timeout = call_timeout
        self._clock = clock
        self._changed = asyncio.Event()
        self._published = False

    def changed(self) -> None:
        self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            await self._publish()
            await asyncio.sleep(MIN_INTERVAL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, self._every - MIN_INTERVAL_S))

    async def _publish(self) -> None:
        nodes = self._snapshot()
        if nodes is None:  # nothing here needs the fleet view (no node runs under a lease)
            return
        body = json.dumps({"host": self._host, "at": self._clock(), "nodes": nodes}, default=str)
        try:
            async with asyncio.timeout(self._call_timeout):
                await self._redis().set(self._key, body, px=self._ttl_ms)
            self._published = True
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("fleet view not published: %s", exc)

    async def withdraw(self) -> None:
        """On a clean shutdown: this host runs nothing any more."""
        if not self._published:
            return
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(self._call_timeout):
                await self._redis().delete(self._key)


async def read_views(redis: Any, fleet: str, *, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Every host's published view of `fleet`, by host id ({} when Redis does not answer in time)."""
    views: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(timeout_s):
            keys = [k async for k in redis.scan_iter(match=view_key(fleet, "*"), count=100)]
            values = await redis.mget(keys) if keys else []
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("fleet view unavailable: %s", exc)
        return {}
    for raw in values:
        if raw is None:
            continue
        with contextlib.suppress(ValueError, TypeError, KeyError):
            view = json.loads(raw)
            views[str(view["host"])] = view
    return views


def merge_nodes(
    local: list[dict[str, Any]], views: dict[str, dict[str, Any]], host: str
) -> list[dict[str, Any]]:
    """Every node of the fleet once, with the host running it: the local status, unless this host does not
    run the node and another host does (then that host's status of it)."""
    running_elsewhere: dict[str, dict[str, Any]] = {}
    for other, view in sorted(views.items()):
        if other == host:
            continue
        for node in view.get("nodes", []):
            if isinstance(node, dict) and node.get("state") not in NOT_RUNNING:
                running_elsewhere.setdefault(str(node.get("name")), {**node, "host": other})
    merged = []
    for node in local:
        elsewhere = running_elsewhere.get(node["name"])
        if node.get("state") in NOT_RUNNING and elsewhere is not None:
            merged.append(elsewhere)
        else:
            merged.append({**node, "host": node.get("host") or host})
    return merged
