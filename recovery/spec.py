"""What a node runs with: the spec the supervisor hands it (or fleet.yaml + a node name), its Redis endpoint
and its timeouts. Pure values and parsing; no nautilus imports (the entry point imports nautilus after this).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from recovery.errors import SpecError
from supervisor.config.builtins import from_builtins
from supervisor.config.duration import parse_duration
from supervisor.config.schema import CoordinationSpec, FleetSpec, NodeSpec, RedisSpec, StrategySpec, VenueSpec

# Environment overrides of the recovery timeouts (durations such as "10s"), settable per node with `env:`.
ENV_CONNECT_TIMEOUT = "FLEET_RECOVERY_CONNECT_TIMEOUT"
ENV_RECONCILE_TIMEOUT = "FLEET_RECOVERY_RECONCILE_TIMEOUT"
ENV_PORTFOLIO_TIMEOUT = "FLEET_RECOVERY_PORTFOLIO_TIMEOUT"


_DEFAULT_COORDINATION = CoordinationSpec()


@dataclass(frozen=True, kw_only=True)
class NodeRun:
    """Everything one node process needs, decoded and checked."""

    fleet: str
    node: NodeSpec
    venue_name: str  # the fleet.yaml venue key, e.g. "emulator"
    venue: VenueSpec
    redis: RedisSpec
    state_dir: str | None = None
    coordination: CoordinationSpec = _DEFAULT_COORDINATION

    @property
    def trader_id(self) -> str:
        return self.node.trader_id

    @property
    def strategies(self) -> list[StrategySpec]:
        return list(self.node.strategies or ())


def load_handed_spec(path: str | Path) -> NodeRun:
    """The JSON the supervisor writes for a strategy node (`$FLEET_NODE_SPEC`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the node spec {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"the node spec {path} is not a JSON object")
    try:
        node = from_builtins(data["node"], NodeSpec)
        venues = {name: from_builtins(value, VenueSpec) for name, value in dict(data["venues"]).items()}
        redis = from_builtins(data.get("redis", {}), RedisSpec)
        coordination = from_builtins(data.get("coordination", {}), CoordinationSpec)
    except (KeyError, TypeError, ValueError) as exc:  # msgspec.ValidationError is a ValueError
        raise SpecError(f"the node spec {path} does not decode: {exc}") from exc
    state_dir = data.get("state_dir")
    return _node_run(str(data.get("fleet", "")), node, venues, redis, state_dir, coordination)


def load_from_fleet(config: str | Path, node_name: str, environ: Mapping[str, str] | None = None) -> NodeRun:
    """Standalone use (plain systemd): read fleet.yaml and pick one node."""
    from supervisor.config.errors import ConfigError
    from supervisor.config.loader import load_fleet

    try:
        fleet = load_fleet(config, environ)
    except ConfigError as exc:
        raise SpecError(str(exc)) from exc
    try:
        node = fleet.node(node_name)
    except KeyError:
        names = ", ".join(n.name for n in fleet.nodes) or "none"
        raise SpecError(f"{config}: no node named {node_name!r} (nodes: {names})") from None
    return from_fleet(fleet, node)


def from_fleet(fleet: FleetSpec, node: NodeSpec) -> NodeRun:
    """A node of a validated fleet as the node process would run it (SpecError if it cannot)."""
    venues = {name: fleet.venues[name] for name in node.venues if name in fleet.venues}
    return _node_run(fleet.fleet, node, venues, fleet.redis, fleet.state_dir, fleet.coordination)


def _node_run(  # noqa: PLR0917 - the parts of a spec, each decoded by its caller
    fleet: str,
    node: NodeSpec,
    venues: Mapping[str, VenueSpec],
    redis: RedisSpec,
    state_dir: Any,
    coordination: CoordinationSpec,
) -> NodeRun:
    if not node.strategies:
        raise SpecError(f"node {node.name} has no strategies: recovery.node runs strategy nodes only")
    if len(node.venues) != 1:
        # nautilus names the Binance exec client "BINANCE" and keys cached positions by that account id:
        # two Binance accounts in one node would share both. One venue account per node.
        raise SpecError(
            f"node {node.name} lists {len(node.venues)} venues; a strategy node trades exactly one"
        )
    venue_name = node.venues[0]
    venue = venues.get(venue_name)
    if venue is None:
        raise SpecError(f"node {node.name}: venue {venue_name!r} is not defined")
    return NodeRun(
        fleet=fleet,
        node=node,
        venue_name=venue_name,
        venue=venue,
        redis=redis,
        state_dir=str(state_dir) if state_dir else None,
        coordination=coordination,
    )


def strategy_instruments(strategy: StrategySpec) -> list[str]:
    """The instruments a strategy trades: its `instruments`, else its config's instrument_id(s)."""
    if strategy.instruments is not None:
        return list(strategy.instruments)
    found: list[str] = []
    single = strategy.config.get("instrument_id")
    if isinstance(single, str):
        found.append(single)
    several = strategy.config.get("instrument_ids")
    if isinstance(several, list):
        found.extend(i for i in several if isinstance(i, str))
    return list(dict.fromkeys(found))


def node_instruments(run: NodeRun) -> list[str]:
    return list(dict.fromkeys(i for s in run.strategies for i in strategy_instruments(s)))


# ---- Redis -------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RedisEndpoint:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    ssl: bool

    def __repr__(self) -> str:  # never print the password
        return f"RedisEndpoint({self.host}:{self.port}/{self.db}, ssl={self.ssl})"


def parse_redis_url(url: str, password: str | None = None) -> RedisEndpoint:
    """redis://[user[:password]@]host[:port][/db] or rediss:// (TLS). A `password` given separately (the
    spec's secret reference) wins over one in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SpecError(f"redis url must start with redis:// or rediss://, got {parts.scheme or url!r}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise SpecError(f"redis url database must be a number, got {path!r}")
    db = int(path) if path else 0
    if db != 0:
        # nautilus' Redis cache has no database index: it always uses database 0.
        raise SpecError(f"nautilus' cache uses Redis database 0 only; the url names database {db}")
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise SpecError(f"redis url port: {exc}") from exc
    return RedisEndpoint(
        host=parts.hostname or "127.0.0.1",
        port=port,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=password if password is not None else (unquote(parts.password) if parts.password else None),
        ssl=parts.scheme == "rediss",
    )


# ---- Timeouts ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Our own bounds on each startup step (nautilus enforces none of connect-by-error or reconcile)."""

    connect: float  # clients connected (instruments, account, user stream)
    reconcile: float  # the venue's reports fetched and applied
    portfolio: float  # portfolio initialized and the trader started
    ready: float  # the whole start, process start to READY (the supervisor's ready_timeout)
    redis: float  # every redis-py call of ours

    @property
    def margin(self) -> float:
        """Time kept back so that our own timeout fires and reports before the supervisor's."""
        return min(2.0, self.ready * 0.05)


def timeouts_for(
    node: NodeSpec,
    redis: RedisSpec,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, float | None] | None = None,
) -> Timeouts:
    """Defaults are shares of the node's `ready_timeout` (capped), so they fit inside the supervisor's
    deadline; the environment (FLEET_RECOVERY_*_TIMEOUT) and then `overrides` (CLI flags) replace them."""
    env = os.environ if environ is None else environ
    ready = float(node.ready_timeout)
    values = {
        "connect": min(20.0, ready * 0.25),
        "reconcile": min(30.0, ready * 0.35),
        "portfolio": min(10.0, ready * 0.1),
    }
    for name, var in (
        ("connect", ENV_CONNECT_TIMEOUT),
        ("reconcile", ENV_RECONCILE_TIMEOUT),
        ("portfolio", ENV_PORTFOLIO_TIMEOUT),
    ):
        text = env.get(var)
        if text:
            try:
                values[name] = float(parse_duration(text))
            except ValueError as exc:
                raise SpecError(f"{var}={text!r}: {exc}") from exc
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = float(value)
    for name, value in values.items():
        if value <= 0:
            raise SpecError(f"the {name} timeout must be positive, got {value:g}s")
    return Timeouts(
        connect=values["connect"],
        reconcile=values["reconcile"],
        portfolio=values["portfolio"],
        ready=ready,
        redis=float(redis.timeout),
    )
