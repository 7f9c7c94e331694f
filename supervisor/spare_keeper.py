"""The fleet's warm spare pools: one shared by every strategy node (`spares:` at the top of fleet.yaml) and
one per strategy node (`spares:` on the node or in `defaults:`). The daemon owns a `SpareKeeper`; each
runner gets a `NodeSpares` to take a spare from (its own pool first, then the fleet's).

When pools change:
- a node's pool lives as long as its runner: a reload that changes the node's process (code, `env:`, venues,
  Redis) replaces the runner, and with it retires the pool; a change of `spares` alone resizes it.
- the fleet's pool is replaced when the set of strategy modules it preloads changes.
- spares start only while none of the nodes they serve is starting or recovering (they compete for CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from supervisor.config.schema import FleetSpec, NodeSpec, SecretRef
from supervisor.node_runner import NodeRunner
from supervisor.output_pipe import LineHandler
from supervisor.reconcile_gate import ENV_GATE_KEY
from supervisor.spares import Handoff, SpareInfo, SparePool
from supervisor.states import NodeState

log = logging.getLogger(__name__)

FLEET_POOL = "fleet"
# While a node is in one of these states, no spare of its pools starts.
BUSY_STATES = frozenset({NodeState.STARTING, NodeState.RECOVERING, NodeState.STOPPING})
# Set per start by the runner (and by systemd for the daemon itself): never part of a spare's environment.
PER_START_ENV = frozenset(
    {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "FLEET_NODE", "FLEET_NODE_SPEC", ENV_GATE_KEY}
)


def preloads(nodes: Iterable[NodeSpec]) -> tuple[str, ...]:
    """The strategy (and config) import paths a spare for these nodes imports, in a stable order."""
    paths: set[str] = set()
    for node in nodes:
        for strategy in node.strategies or ():
            paths.add(strategy.path)
            if strategy.config_path:
                paths.add(strategy.config_path)
    return tuple(sorted(paths))


def secret_env_names(fleet: FleetSpec) -> frozenset[str]:
    """Environment variables fleet.yaml names as secrets: a spare is started without them."""
    refs: list[SecretRef | None] = [fleet.redis.password, fleet.mqtt.password]
    for venue in fleet.venues.values():
        refs += [venue.api_key, venue.api_secret]
    return frozenset(ref.env for ref in refs if ref is not None and ref.env)


@dataclass
class _NodePool:
    pool: SparePool
    task: asyncio.Task[None]


class SpareKeeper:
    def __init__(
        self,
        *,
        fleet: Callable[[], FleetSpec],
        runners: Callable[[], Mapping[str, NodeRunner]],
        base_env: Callable[[], dict[str, str]],
        node_env: Callable[[NodeSpec], dict[str, str]],
        entry_module: str,
    ) -> None:
        self._fleet = fleet
        self._runners = runners
        self._base_env = base_env
        self._node_env = node_env
        self._entry_module = entry_module
        self._group: asyncio.TaskGroup | None = None
        self._nodes: dict[str, _NodePool] = {}
        self._shared: _NodePool | None = None

    # ---- lifecycle (the daemon calls these) ----------------------------------------------------------

    def start(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        self._start_shared()

    def add_node(self, runner: NodeRunner) -> None:
        node = runner.spec
        if node.strategies is None or self._group is None:
            return
        pool = SparePool(
            name=node.name,
            strategies=preloads([node]),
            env=self._spare_env(self._node_env(node)),
            cwd=node.cwd,
            wanted=lambda: runner.spec.spares if runner.wants_to_run else 0,
            may_start=lambda: runner.state is NodeState.READY,
            output=runner.output.line,
        )
        task = self._group.create_task(pool.run(), name=f"spares[{node.name}]")
        self._nodes[node.name] = _NodePool(pool, task)

    async def remove_node(self, name: str) -> None:
        """Retire the node's spares (the runner is being replaced or removed)."""
        entry = self._nodes.pop(name, None)
        if entry is not None:
            await _cancel(entry.task)

    async def reconfigure(self) -> None:
        """After a reload: replace the fleet's spares if what they preload changed."""
        if self._shared is None or self._shared.pool.strategies != self._shared_preloads():
            if self._shared is not None:
                log.info("spares: the fleet's strategy modules changed: replacing its spares")
                shared, self._shared = self._shared, None
                await _cancel(shared.task)
            self._start_shared()
        self.poke()

    def poke(self) -> None:
        """A node changed state: spares may start, or must go."""
        for entry in (*self._nodes.values(), *([self._shared] if self._shared else [])):
            entry.pool.poke()

    # ---- what runners and status use --------------------------------------------------------------

    def for_node(self, name: str) -> NodeSpares:
        return NodeSpares(self, name)

    def pools(self) -> list[SparePool]:
        pools = [e.pool for e in self._nodes.values()]
        return pools + ([self._shared.pool] if self._shared else [])

    def info(self) -> list[SpareInfo]:
        return [info for pool in self.pools() for info in pool.info()]

    async def take(
        self, name: str, argv: list[str], env: Mapping[str, str], cwd: str | None, output: LineHandler
    ) -> Handoff | None:
        if argv[1:3] != ["-m", self._entry_module]:
            return None  # not `python -m recovery.node` (a command node)
        args = argv[3:]
        pools = []
        own = self._nodes.get(name)
        if own is not None:
            pools.append(own.pool)  # its own first: the fleet's stays for a node that has none
        if self._shared is not None and name in self._shared_nodes():
            pools.append(self._shared.pool)
        for pool in pools:
            handoff = await pool.take(args, env, cwd, output)
            if handoff is not None:
                return handoff
        return None

    # ---- internals -----------------------------------------------------------------------------------

    def _shared_nodes(self) -> set[str]:
        return {n.name for n in self._fleet().nodes if n.strategies is not None and n.enabled}

    def _shared_preloads(self) -> tuple[str, ...]:
        return preloads(n for n in self._fleet().nodes if n.strategies is not None and n.enabled)

    def _start_shared(self) -> None:
        assert self._group is not None
        served = self._shared_nodes

        def wanted() -> int:
            runners = self._runners()
            if not any(r.wants_to_run for name, r in runners.items() if name in served()):
                return 0
            return self._fleet().spares

        def may_start() -> bool:
            runners = self._runners()
            return not any(_busy(r) for name, r in runners.items() if name in served())

        pool = SparePool(
            name=FLEET_POOL,
            strategies=self._shared_preloads(),
            env=self._spare_env(self._base_env()),
            cwd=None,
            wanted=wanted,
            may_start=may_start,
        )
        self._shared = _NodePool(pool, self._group.create_task(pool.run(), name="spares[fleet]"))

    def _spare_env(self, env: dict[str, str]) -> dict[str, str]:
        """The node's environment without its secrets and per-start settings (the handoff brings those)."""
        drop = secret_env_names(self._fleet()) | PER_START_ENV
        return {k: v for k, v in env.items() if k not in drop}


class NodeSpares:
    """One runner's view: take a spare for this node, list this node's own spares."""

    def __init__(self, keeper: SpareKeeper, name: str) -> None:
        self._keeper = keeper
        self._name = name

    async def take(
        self, argv: list[str], env: Mapping[str, str], cwd: str | None, output: LineHandler
    ) -> Handoff | None:
        return await self._keeper.take(self._name, argv, env, cwd, output)


def _busy(runner: NodeRunner) -> bool:
    """Starting, recovering, stopping, or about to start (wanted but not started yet)."""
    return runner.state in BUSY_STATES or (runner.state is NodeState.STOPPED and runner.wants_to_run)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
