"""Deciding what a new fleet.yaml changes (pure), and noticing that the file changed (watchfiles).

`plan_reload(old, new)` compares two validated fleets: nodes to start, stop, restart (their process would
differ), update in place (only supervision settings changed), and settings that only a daemon restart
applies. Unchanged nodes are not touched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from supervisor.config.schema import FleetSpec, NodeSpec

log = logging.getLogger(__name__)

# Node fields the supervisor applies to a running node without touching its process.
SUPERVISION_FIELDS = frozenset(
    {
        "restart",
        "stop",
        "watchdog",
        "ready_timeout",
        "readiness",
        "share_instruments",
        "cache_compaction",
        "spares",
    }
)
# Fleet-level sections the running daemon does not re-apply.
DAEMON_FIELDS = ("fleet", "mqtt", "metrics", "control", "runtime_dir", "state_dir", "leases")


@dataclasses.dataclass(frozen=True)
class ReloadPlan:
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    needs_daemon_restart: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.restart or self.update or self.needs_daemon_restart)

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("start", self.start),
                ("stop", self.stop),
                ("restart", self.restart),
                ("update", self.update),
            )
            if names
        ]
        if self.needs_daemon_restart:
            parts.append(f"changed {', '.join(self.needs_daemon_restart)} (applied after a daemon restart)")
        return "; ".join(parts) or "no changes"


def plan_reload(old: FleetSpec, new: FleetSpec) -> ReloadPlan:
    old_nodes = {n.name: n for n in old.nodes}
    new_nodes = {n.name: n for n in new.nodes}
    start: list[str] = []
    stop: list[str] = [name for name, node in old_nodes.items() if name not in new_nodes and node.enabled]
    restart: list[str] = []
    update: list[str] = []
    unchanged: list[str] = []
    for name, node in new_nodes.items():
        before = old_nodes.get(name)
        if before is None:
            if node.enabled:
                start.append(name)
            else:
                unchanged.append(name)
        elif before.enabled != node.enabled:
            (start if node.enabled else stop).append(name)
        elif not node.enabled:
            unchanged.append(name)
        elif _process_changed(old, before, new, node):
            restart.append(name)
        elif before != node:
            update.append(name)
        else:
            unchanged.append(name)
    daemon = tuple(f for f in DAEMON_FIELDS if getattr(old, f) != getattr(new, f))
    return ReloadPlan(
        start=tuple(start),
        stop=tuple(stop),
        restart=tuple(restart),
        update=tuple(update),
        unchanged=tuple(unchanged),
        needs_daemon_restart=daemon,
    )


def _process_changed(old: FleetSpec, before: NodeSpec, new: FleetSpec, after: NodeSpec) -> bool:
    """Would the node's process be started differently (argv, env, spec it is handed)?"""
    fields = set(NodeSpec.__struct_fields__) - SUPERVISION_FIELDS
    if any(getattr(before, f) != getattr(after, f) for f in fields):
        return True
    # A node is handed its venues and the Redis settings: a change there is a change for the node.
    if any(old.venues.get(v) != new.venues.get(v) for v in after.venues):
        return True
    return after.strategies is not None and old.redis != new.redis


def content_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


async def watch_file(path: Path, *, debounce_ms: int = 50) -> AsyncIterator[str]:
    """Yield the new content hash each time `path`'s content changes (`path` must be absolute).

    Watches the directory, not the file: editors replace files atomically (write + rename), and a watch on
    the file itself was seen to miss a second `os.replace`. Events are filtered on the file's name and
    reduced to real content changes by hashing.
    """
    from watchfiles import awatch  # imported here: only the daemon needs it

    last = await asyncio.to_thread(content_hash, path)
    async for changes in awatch(
        path.parent,
        watch_filter=lambda _change, changed: Path(changed).name == path.name,
        debounce=debounce_ms,
        step=10,
        recursive=False,
    ):
        del changes
        current = await asyncio.to_thread(content_hash, path)
        if current is not None and current != last:
            last = current
            yield current
