"""The fleet.yaml schema: frozen msgspec structs, decoded once at the edge (see `loader.py`).

Everything downstream (the daemon, the node entry point, the CLI) works with these values and never re-reads
the file. Durations are seconds (`Duration`, a float subclass), written in the file as "500ms", "30s",
"5m", "1h".
Secrets are never given inline: a `SecretRef` names an environment variable or a file to read them from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# Node names become MQTT topic levels, Prometheus label values and socket file names.
NODE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"
# Venue names appear in topics too (recovery/<trader_id>/<venue>).
VENUE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"
# Rate groups are Redis key parts (supervisor/rate_budget.py): no spaces, no glob characters.
RATE_GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/\[\]-]{0,199}$"
# Host ids (`fleet run --host-id`, `placement.hosts`) become Redis key parts, MQTT topic levels and labels.
HOST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"

# Warm spares (supervisor/spares.py) cost about 150 MiB of private memory each (322 MiB RSS, most of the rest
# shared with the nodes): more than a few per pool is memory for nothing.
MAX_SPARES = 4


class Duration(float):
    """A span of time in seconds; in fleet.yaml a string with a unit: "250ms", "30s", "5m", "1h"."""

    def __repr__(self) -> str:
        return f"Duration({float(self)!r})"


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every fleet.yaml section: immutable, keyword-only, unknown keys are errors."""


class SecretRef(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a secret comes from: exactly one of `env` (variable name) or `file` (path). Never the value."""

    env: str | None = None
    file: str | None = None


class RedisSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = "redis://127.0.0.1:6379/0"
    password: SecretRef | None = None
    # Every network call the supervisor makes to Redis is bounded by this.
    timeout: Duration = Duration(2.0)


class TlsSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # Only for tests against self-signed brokers; never in production.
    insecure: bool = False


class MqttSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 1883
    tls: TlsSpec | None = None
    username: str | None = None
    password: SecretRef | None = None
    # Default: "nautilus-fleet/<fleet>".
    topic_prefix: str | None = None
    client_id: str | None = None
    keepalive: Duration = Duration(15.0)
    # Events kept while the broker is unreachable; the oldest are dropped (and counted) beyond this.
    queue_size: Annotated[int, msgspec.Meta(ge=1)] = 1000


class MetricsSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    listen: str = "127.0.0.1:9464"


class ControlSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Default: "<runtime_dir>/control.sock".
    socket: str | None = None
    mode: int = 0o600


class VenueSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A venue account. Two venue entries with the same `account` are the same account."""

    type: Literal["binance_usdm"] = "binance_usdm"
    base_url_http: str | None = None
    base_url_ws: str | None = None
    base_url_ws_stream: str | None = None
    api_key: SecretRef | None = None
    api_secret: SecretRef | None = None
    testnet: bool = False
    # Label identifying the account behind the credentials; defaults to the venue's name.
    account: str | None = None
    # The fleet-wide request-weight budget (in Redis) this entry's requests share. The venue counts weight per
    # client address, so the default is the venue's base URL plus this host's name
    # ("https://fapi.binance.com@host-a"); give hosts behind one public address (NAT) the same value.
    rate_group: Annotated[str, msgspec.Meta(pattern=RATE_GROUP_PATTERN)] | None = None


class CoordinationSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How strategy nodes share a venue's request budget (per rate group, in Redis) and take turns to
    reconcile (the supervisor's reconciliation gate). Off: each node keeps within a local share of the venue's
    limit on its own, and every node reconciles at once (how it was before; for comparison in benchmarks)."""

    enabled: bool = True
    # Of the venue's request weight per window, what recovering nodes together may spend; live trading keeps
    # the rest (a trading node places orders with weight 0-1 each: 20 % of 2,400 a minute is ample).
    recovery_share: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.9


class AuditSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The supervisor's own check, through ccxt, that the venue holds the positions and open protective orders
    each strategy node holds (`supervisor/audit/`): after READY (the `audited` phase), then every `interval`
    (jittered), with weight taken from the node's rate group budget."""

    enabled: bool = True
    # From 5s to 1d (checked in validate.py): an audit costs ~10 + 1 per symbol of request weight.
    interval: Duration = Duration(300.0)


class LeasesSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One owner per trader_id across hosts: a strategy node runs only while its host's supervisor holds the
    trader_id's lease in Redis (renewed every ttl/3). A supervisor that could not renew it within
    `ttl - margin` kills the node itself; the node checks the lease too and halts `margin` before it expires.
    Another eligible host takes the lease over after `ttl` (failover)."""

    enabled: bool = True
    # 3s..10m. Longer: fewer false failovers on a slow Redis; shorter: a dead host's nodes come back sooner.
    ttl: Duration = Duration(10.0)
    # Default ttl/5; at most ttl/3. The time a node stops before its lease can expire.
    margin: Duration | None = None

    def effective_margin(self) -> float:
        return float(self.margin) if self.margin is not None else float(self.ttl) / 5


class PlacementSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which hosts (supervisor host ids: `fleet run --host-id`, $FLEET_HOST_ID, else the host name) may run a
    node. Default: any host whose supervisor runs this fleet.yaml (a single host runs everything)."""

    hosts: list[Annotated[str, msgspec.Meta(pattern=HOST_ID_PATTERN)]] | None = None

    def allows(self, host: str) -> bool:
        return self.hosts is None or host in self.hosts


class StartLimitSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """More than `burst` starts within `window` puts the node in quarantine."""

    burst: Annotated[int, msgspec.Meta(ge=1)] = 5
    window: Duration = Duration(60.0)


class RestartSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    backoff_initial: Duration = Duration(0.5)
    backoff_max: Duration = Duration(30.0)
    # Healthy running for this long forgets earlier crashes.
    reset_after: Duration = Duration(60.0)
    start_limit: StartLimitSpec = StartLimitSpec()


class StopSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    signal: Literal["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"] = "SIGTERM"
    grace: Duration = Duration(10.0)


class WatchdogSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timeout: Duration = Duration(10.0)


class ReadinessSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a node counts as ready. `notify` (default): it says READY=1 (sd_notify) within ready_timeout, as
    strategy nodes do. `running`: a program that does not speak sd_notify is ready once it has run for `after`
    without exiting (systemd's Type=exec with `after: 0s`, supervisord's startsecs); it is watched only by
    its exit (and by the watchdog if it ever sends WATCHDOG=1)."""

    mode: Literal["notify", "running"] = "notify"
    after: Duration = Duration(1.0)


class CacheCompactionSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Before each start of a strategy node, its closed nautilus history beyond what is kept here is moved to
    an archive in Redis (restorable), because nautilus loads all of it at start (~0.2-0.5 ms per item)."""

    enabled: bool = True
    # Most recent closed positions, and most recent closed orders, left for nautilus to load.
    keep_closed: Annotated[int, msgspec.Meta(ge=0)] = 20
    # Closed orders younger than this stay whatever `keep_closed` says: Binance reports the last 7 days of
    # orders and trades at reconciliation, and nautilus turns a reported order missing from its cache into an
    # EXTERNAL order (a phantom position). One day of margin.
    venue_window: Duration = Duration(8 * 86_400.0)
    # Account events left after the first one (more stay when needed for exact balances).
    keep_account_events: Annotated[int, msgspec.Meta(ge=1)] = 20
    # How long one compaction may delay a start; the rest is done at the next start.
    time_budget: Duration = Duration(10.0)


class StrategySpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A nautilus strategy by import path, with its config (validated by the node, not here)."""

    # "package.module:ClassName"
    path: str
    # "package.module:ConfigClassName"; default: the strategy class' config type.
    config_path: str | None = None
    config: dict[str, Any] = {}
    # Instruments the strategy trades (nautilus ids, e.g. "BTCUSDT-PERP.BINANCE"); default: config's
    # `instrument_id` / `instrument_ids`.
    instruments: list[str] | None = None


class NodeDefaults(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    restart: RestartSpec = RestartSpec()
    stop: StopSpec = StopSpec()
    watchdog: WatchdogSpec | None = WatchdogSpec()
    ready_timeout: Duration = Duration(60.0)
    readiness: ReadinessSpec = ReadinessSpec()
    cache_compaction: CacheCompactionSpec = CacheCompactionSpec()
    placement: PlacementSpec = PlacementSpec()
    # Warm spares of each strategy node's own (see NodeSpec.spares).
    spares: Annotated[int, msgspec.Meta(ge=0, le=MAX_SPARES)] = 0


class NodeSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One supervised node, after defaults are applied (see `loader.py`)."""

    name: Annotated[str, msgspec.Meta(pattern=NODE_NAME_PATTERN)]
    trader_id: str
    venues: list[str] = []
    # Exactly one of `strategies` (run by `python -m recovery.node`) or `command` (any program).
    strategies: list[StrategySpec] | None = None
    command: list[str] | None = None
    # Instruments a `command` node trades (for the overlap check); strategy nodes derive them.
    instruments: list[str] = []
    # Allow another node to trade the same instrument on the same venue account.
    share_instruments: bool = False
    enabled: bool = True
    env: dict[str, str] = {}
    cwd: str | None = None
    restart: RestartSpec = RestartSpec()
    stop: StopSpec = StopSpec()
    watchdog: WatchdogSpec | None = WatchdogSpec()
    ready_timeout: Duration = Duration(60.0)
    readiness: ReadinessSpec = ReadinessSpec()
    cache_compaction: CacheCompactionSpec = CacheCompactionSpec()
    placement: PlacementSpec = PlacementSpec()
    # Warm spares of this node's own: processes that have done its imports and become it at a crash, so it
    # recovers in a few hundred ms instead of ~1.7 s. Strategy nodes only. The fleet's shared ones
    # (FleetSpec.spares) serve any node; these serve two crashes at once and cost ~150 MB each.
    spares: Annotated[int, msgspec.Meta(ge=0, le=MAX_SPARES)] = 0


class FleetSpec(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole validated fleet.yaml."""

    fleet: Annotated[str, msgspec.Meta(pattern=NODE_NAME_PATTERN)]
    redis: RedisSpec = RedisSpec()
    mqtt: MqttSpec = MqttSpec()
    metrics: MetricsSpec = MetricsSpec()
    control: ControlSpec = ControlSpec()
    # Default: $RUNTIME_DIRECTORY (systemd), else $XDG_RUNTIME_DIR/nautilus-fleet,
    # else /tmp/nautilus-fleet-<uid>.
    runtime_dir: str | None = None
    # Default: $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/nautilus-fleet,
    # else ~/.local/state/nautilus-fleet.
    state_dir: str | None = None
    # Per-node log files. Default: $LOGS_DIRECTORY (systemd), else <state_dir>/logs.
    log_dir: str | None = None
    venues: dict[str, VenueSpec] = {}
    coordination: CoordinationSpec = CoordinationSpec()
    audit: AuditSpec = AuditSpec()
    leases: LeasesSpec = LeasesSpec()
    # Warm spares shared by the fleet's strategy nodes (each has imported every node's strategy modules):
    # the first node to crash takes one. About 150 MB of private memory each.
    spares: Annotated[int, msgspec.Meta(ge=0, le=MAX_SPARES)] = 1
    defaults: NodeDefaults = NodeDefaults()
    nodes: list[NodeSpec] = []

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
