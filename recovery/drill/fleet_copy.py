"""What the drill runs: the user's fleet as given, pointed at an emulator the drill started, with everything
that could touch the user's live fleet made its own (pure).

Refused (with the reason): a venue of a strategy node whose URLs are missing (nautilus would then connect to
Binance itself) or not loopback addresses, `testnet: true` (Binance's testnet is a real exchange), an
instrument that is not a Binance USD-M perpetual, two strategy nodes on one venue account, no strategy node.

Changed, none of it visible to a strategy:
- venues: URLs to the drill's own emulator, credentials generated for it (the user's are never read), the
  default rate group (it names the emulator's URL, so the run has a request budget of its own in Redis);
- trader ids: `NAME-TAG` becomes `NAME.DRILL<run>-TAG`, so every Redis key of the run is new and unique, while
  nautilus' client order ids (which carry only the tag) keep their form and length;
- MQTT: a topic prefix and client id of the run's own, on the fleet's broker (on even if the file has it off);
- runtime, state and log directories in the drill's work directory; no metrics listener (no port clash);
- restart policy: backoff at most 0.2 s / 1 s, `reset_after` at most 2 s and a start limit above the drill's
  own kill rate, so that recovery times measure recovery and the drill's kills never quarantine a node.
Left as written: the nodes' names, strategies and their configs, env, cwd, watchdog, ready_timeout, stop,
cache compaction, Redis, MQTT's host, port, credentials and TLS. Disabled nodes and `command:` nodes are not
run (the drill checks strategy nodes' caches).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from supervisor.config.duration import format_duration
from supervisor.config.resolve import instruments_of, venue_account
from supervisor.config.schema import (
    ControlSpec,
    Duration,
    FleetSpec,
    MetricsSpec,
    NodeSpec,
    SecretRef,
    VenueSpec,
)

INSTRUMENT_SUFFIX = "-PERP.BINANCE"
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 1.0
RESET_AFTER_S = 2.0


class DrillRefused(ValueError):
    """The fleet cannot be drilled as given; `reasons` says why, one line each."""

    def __init__(self, source: str, reasons: list[str]) -> None:
        super().__init__(f"{source}: the drill refuses this fleet:\n" + "\n".join(f"  {r}" for r in reasons))
        self.reasons = reasons


@dataclass(frozen=True, kw_only=True)
class DrillNode:
    name: str
    trader_id: str  # the run's own
    original_trader_id: str
    venue: str
    account: str
    instruments: tuple[str, ...]

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(symbol_of(i) for i in self.instruments)


@dataclass(frozen=True, kw_only=True)
class DrillFleet:
    spec: FleetSpec
    nodes: tuple[DrillNode, ...]
    credentials: dict[str, tuple[str, str]]  # account -> (env var of the key, env var of the secret)
    prefix: str
    left_out: tuple[str, ...]  # nodes of the file the drill does not run, with why

    def node(self, name: str) -> DrillNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for n in self.nodes for s in n.symbols))


def symbol_of(instrument_id: str) -> str:
    """ "BTCUSDT-PERP.BINANCE" -> "BTCUSDT" (the venue's symbol)."""
    return instrument_id.removesuffix(INSTRUMENT_SUFFIX)


def is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def strategy_nodes(spec: FleetSpec) -> list[NodeSpec]:
    return [n for n in spec.nodes if n.enabled and n.strategies is not None]


def refusals(spec: FleetSpec) -> list[str]:
    """Why the drill will not run this fleet (empty: it will)."""
    nodes = strategy_nodes(spec)
    if not nodes:
        return ["no enabled strategy node (`strategies:`): the drill kills and checks strategy nodes"]
    reasons: list[str] = []
    owners: dict[str, str] = {}
    for node in nodes:
        if len(node.venues) != 1:
            reasons.append(f"node {node.name}: trades {len(node.venues)} venues; a strategy node trades one")
            continue
        name = node.venues[0]
        reasons += _venue_refusals(name, spec.venues.get(name))
        account = venue_account(spec, name)
        if account in owners:
            reasons.append(
                f"nodes {owners[account]} and {node.name} share venue account {account}: each node's cache "
                "would hold the other's orders as EXTERNAL; give each strategy node an account of its own"
            )
        owners.setdefault(account, node.name)
        for instrument in instruments_of(node):
            if not instrument.endswith(INSTRUMENT_SUFFIX):
                reasons.append(
                    f"node {node.name}: instrument {instrument} is not a Binance USD-M perpetual "
                    f"(SYMBOL{INSTRUMENT_SUFFIX}), which is what the emulator lists"
                )
    return reasons


def _venue_refusals(name: str, venue: VenueSpec | None) -> list[str]:
    if venue is None:
        return [f"venue {name}: not declared under venues:"]
    reasons = []
    if venue.testnet:
        reasons.append(
            f"venue {name}: testnet: true is Binance's testnet, a real exchange; "
            "the drill runs only against the local emulator"
        )
    for field in ("base_url_http", "base_url_ws", "base_url_ws_stream"):
        url = getattr(venue, field)
        if url is None:
            if field != "base_url_ws_stream":
                reasons.append(
                    f"venue {name}: no {field}, so its nodes would connect to Binance itself; the drill runs "
                    "only against the local emulator (give loopback URLs, as the example fleet.yaml does)"
                )
        elif not is_loopback_url(url):
            reasons.append(
                f"venue {name}: {field} {url} is not a loopback address; the drill refuses any venue that "
                "is not the local emulator"
            )
    return reasons


def drill_trader_id(trader_id: str, run_id: str) -> str:
    """`EMA-001` -> `EMA.DRILL<run>-001`: new Redis keys, the same tag in client order ids."""
    name, tag = trader_id.rsplit("-", 1)
    return f"{name}.DRILL{run_id.upper()}-{tag}"


def derive(spec: FleetSpec, *, run_id: str, work: Path, http_url: str, ws_url: str, kills: int) -> DrillFleet:
    """The fleet the drill runs (see the module docstring). Call `refusals` first."""
    nodes = strategy_nodes(spec)
    prefix = f"nautilus-fleet-drill/{spec.fleet}/{run_id}"
    venues: dict[str, VenueSpec] = {}
    credentials: dict[str, tuple[str, str]] = {}
    drilled: list[NodeSpec] = []
    described: list[DrillNode] = []
    for index, node in enumerate(nodes):
        venue = node.venues[0]
        account = venue_account(spec, venue)
        key_env, secret_env = f"FLEET_DRILL_{index}_API_KEY", f"FLEET_DRILL_{index}_API_SECRET"
        credentials[account] = (key_env, secret_env)
        venues[venue] = VenueSpec(
            base_url_http=http_url,
            base_url_ws=ws_url,
            api_key=SecretRef(env=key_env),
            api_secret=SecretRef(env=secret_env),
            account=account,
        )
        trader_id = drill_trader_id(node.trader_id, run_id)
        restart = node.restart
        restart = msgspec.structs.replace(
            restart,
            backoff_initial=Duration(min(restart.backoff_initial, BACKOFF_INITIAL_S)),
            backoff_max=Duration(min(restart.backoff_max, BACKOFF_MAX_S)),
            reset_after=Duration(min(restart.reset_after, RESET_AFTER_S)),
            start_limit=msgspec.structs.replace(
                restart.start_limit, burst=max(restart.start_limit.burst, 4 * kills + 10)
            ),
        )
        drilled.append(msgspec.structs.replace(node, trader_id=trader_id, restart=restart))
        described.append(
            DrillNode(
                name=node.name,
                trader_id=trader_id,
                original_trader_id=node.trader_id,
                venue=venue,
                account=account,
                instruments=instruments_of(node),
            )
        )
    left_out = tuple(
        f"{n.name}: {'disabled' if not n.enabled else 'a command: node (the drill runs strategy nodes)'}"
        for n in spec.nodes
        if n not in nodes
    )
    derived = msgspec.structs.replace(
        spec,
        mqtt=msgspec.structs.replace(
            spec.mqtt, enabled=True, topic_prefix=prefix, client_id=f"fleet-drill-{run_id}"
        ),
        metrics=MetricsSpec(enabled=False),
        control=ControlSpec(mode=spec.control.mode),
        runtime_dir=str(work / "run"),
        state_dir=str(work / "state"),
        log_dir=str(work / "logs"),
        venues=venues,
        nodes=drilled,
    )
    return DrillFleet(
        spec=derived, nodes=tuple(described), credentials=credentials, prefix=prefix, left_out=left_out
    )


def fleet_document(value: Any) -> Any:
    """A FleetSpec (or any part of it) as fleet.yaml content that loads back to the same values."""
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, msgspec.Struct):
        return {name: fleet_document(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, dict):
        return {key: fleet_document(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [fleet_document(item) for item in value]
    return value
