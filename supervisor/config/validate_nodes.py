"""Checks on the nodes of a decoded FleetSpec: identities, programs, venues, instruments, env, durations, and
two nodes trading one instrument on one account. Pure, like `validate.py`, which runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from supervisor.config.describe import show
from supervisor.config.duration import format_duration
from supervisor.config.errors import ConfigError, FieldPath, format_path, quote
from supervisor.config.identifiers import (
    TRADER_ID_RULE,
    instrument_id_problem,
    is_env_name,
    is_import_path,
    trader_id_problem,
)
from supervisor.config.marks import Document
from supervisor.config.resolve import instrument_sources, venue_account
from supervisor.config.schema import FleetSpec, NodeDefaults, NodeSpec

# Set by the supervisor for each node; a node's `env` must not override them.
RESERVED_ENV = frozenset(
    {
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "FLEET_EPOCH",
        "FLEET_LEASE_KEY",
        "FLEET_LEASE_TTL_MS",
        "FLEET_LEASE_MARGIN_MS",
        "FLEET_HOST_ID",
    }
)
# The bounds of `leases.ttl`: below 3s a renewal every second leaves no room for a slow Redis; above 10m a
# dead host's nodes stay down too long.
LEASE_TTL_MIN = 3.0
LEASE_TTL_MAX = 600.0


def node_identities(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    names: dict[str, int] = {}
    trader_ids: dict[str, int] = {}
    for i, node in enumerate(spec.nodes):
        if node.name in names:
            yield _duplicate(doc, ("nodes", i, "name"), "a node name used once", node.name, names[node.name])
        names.setdefault(node.name, i)
        problem = trader_id_problem(node.trader_id)
        if problem is not None:
            yield doc.error(("nodes", i, "trader_id"), TRADER_ID_RULE, quote(node.trader_id), problem)
        elif node.trader_id in trader_ids:
            yield _duplicate(
                doc,
                ("nodes", i, "trader_id"),
                "a trader id used by one node only",
                node.trader_id,
                trader_ids[node.trader_id],
            )
        trader_ids.setdefault(node.trader_id, i)


def _duplicate(doc: Document, at: FieldPath, expected: str, value: str, first: int) -> ConfigError:
    line = doc.marks.value(("nodes", first)).line
    return doc.error(at, expected, quote(value), f"{format_path(('nodes', first))} at line {line} has it too")


def node_programs(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        at: FieldPath = ("nodes", i)
        if (node.strategies is None) == (node.command is None):
            found = "both" if node.command is not None else "neither"
            yield doc.error(at, 'either "strategies" (nautilus strategies) or "command" (any program)', found)
        if node.command is not None and (not node.command or not node.command[0]):
            yield doc.error(
                (*at, "command"), "a program and its arguments, like [python, -m, mynode]", show(node.command)
            )
        if node.strategies is not None and not node.strategies:
            yield doc.error((*at, "strategies"), "at least one strategy", "an empty list")
        if node.strategies is not None and node.readiness.mode != "notify":
            yield doc.error(
                (*at, "readiness", "mode"),
                '"notify" for a strategy node (it reports READY=1 once recovered)',
                quote(node.readiness.mode),
            )
        if node.command is not None and node.spares and (*at, "spares") not in doc.origins:
            # From `defaults:` it is meant for the strategy nodes; written on a command node it is a mistake.
            yield doc.error(
                (*at, "spares"),
                "0 for a command node (warm spares are for strategy nodes, which run recovery.node)",
                show(node.spares),
            )
        for s, strategy in enumerate(node.strategies or ()):
            for key in ("path", "config_path"):
                value = getattr(strategy, key)
                if value is not None and not is_import_path(value):
                    yield doc.error(
                        (*at, "strategies", s, key), 'an import path "package.module:ClassName"', quote(value)
                    )


def node_venues(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        seen: set[str] = set()
        for v, venue in enumerate(node.venues):
            at: FieldPath = ("nodes", i, "venues", v)
            if venue not in spec.venues:
                defined = ", ".join(quote(name) for name in spec.venues) or "none are defined"
                yield doc.error(at, f"a venue defined under venues ({defined})", quote(venue))
            elif venue in seen:
                yield doc.error(at, "each venue once", quote(venue))
            seen.add(venue)
        if node.strategies and not node.venues:
            yield doc.error(("nodes", i), "at least one venue for a node running strategies", "no venues")


def node_instruments(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        at: FieldPath = ("nodes", i)
        if node.command is not None and node.spares and (*at, "spares") not in doc.origins:
            # From `defaults:` it is meant for the strategy nodes; written on a command node it is a mistake.
            yield doc.error(
                (*at, "spares"),
                "0 for a command node (warm spares are for strategy nodes, which run recovery.node)",
                show(node.spares),
            )
        for s, strategy in enumerate(node.strategies or ()):
            config: dict[str, Any] = strategy.config
            if "instrument_id" in config and not isinstance(config["instrument_id"], str):
                yield doc.error(
                    (*at, "strategies", s, "config", "instrument_id"),
                    "a string",
                    show(config["instrument_id"]),
                )
            ids = config.get("instrument_ids")
            if ids is not None and not (isinstance(ids, list) and all(isinstance(x, str) for x in ids)):
                yield doc.error(
                    (*at, "strategies", s, "config", "instrument_ids"), "a list of strings", show(ids)
                )
        sources = list(instrument_sources(node))
        for instrument, where in sources:
            problem = instrument_id_problem(instrument)
            if problem is not None:
                yield doc.error(
                    (*at, *where),
                    'an instrument id "SYMBOL.VENUE" like "BTCUSDT-PERP.BINANCE"',
                    quote(instrument),
                    problem,
                )
        if node.instruments and not node.venues:
            yield doc.error((*at, "instruments"), "venues for the node that lists instruments", "no venues")


def node_env(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        for key in node.env:
            at: FieldPath = ("nodes", i, "env", key)
            if not is_env_name(key):
                yield doc.error(at, "an environment variable name like LOG_LEVEL", quote(key), at_key=True)
            elif key in RESERVED_ENV:
                yield doc.error(at, "a variable the supervisor does not set itself", quote(key), at_key=True)


def durations(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    yield from _node_durations(doc, ("defaults",), spec.defaults)
    for i, node in enumerate(spec.nodes):
        yield from _node_durations(doc, ("nodes", i), node)
    if spec.redis.timeout <= 0:
        yield _not_positive(doc, ("redis", "timeout"), spec.redis.timeout)
    yield from _lease_durations(spec, doc)
    keepalive = spec.mqtt.keepalive
    if not float(keepalive).is_integer() or not 1 <= keepalive <= 65535:
        yield doc.error(
            ("mqtt", "keepalive"), "whole seconds from 1s to 65535s", quote(format_duration(keepalive))
        )


def _lease_durations(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    ttl = float(spec.leases.ttl)
    if not LEASE_TTL_MIN <= ttl <= LEASE_TTL_MAX:
        yield doc.error(
            ("leases", "ttl"),
            f"a duration from {format_duration(LEASE_TTL_MIN)} to {format_duration(LEASE_TTL_MAX)}",
            quote(format_duration(ttl)),
        )
        return
    margin = spec.leases.margin
    if margin is not None and not 0 < margin <= ttl / 3:
        yield doc.error(
            ("leases", "margin"),
            f"a duration longer than 0s and at most ttl/3 ({format_duration(ttl / 3)})",
            quote(format_duration(margin)),
            "the node must stop before its lease expires, and renewals come every ttl/3",
        )


def _node_durations(doc: Document, at: FieldPath, node: NodeSpec | NodeDefaults) -> Iterator[ConfigError]:
    restart = node.restart
    for path, value in (
        ((*at, "restart", "backoff_initial"), restart.backoff_initial),
        ((*at, "restart", "reset_after"), restart.reset_after),
        ((*at, "restart", "start_limit", "window"), restart.start_limit.window),
        ((*at, "stop", "grace"), node.stop.grace),
        ((*at, "ready_timeout"), node.ready_timeout),
    ):
        if value <= 0:
            yield _not_positive(doc, path, value)
    if node.watchdog is not None and node.watchdog.timeout <= 0:
        yield _not_positive(doc, (*at, "watchdog", "timeout"), node.watchdog.timeout)
    readiness = node.readiness
    if readiness.mode == "running" and readiness.after >= node.ready_timeout:
        yield doc.error(
            (*at, "readiness", "after"),
            f"less than ready_timeout ({format_duration(node.ready_timeout)})",
            quote(format_duration(readiness.after)),
            "the node would be killed for not being ready before it counts as ready",
        )
    if restart.backoff_max < restart.backoff_initial:
        initial, maximum = (*at, "restart", "backoff_initial"), (*at, "restart", "backoff_max")
        if _blame(doc, maximum, initial) == initial:
            yield doc.error(
                initial,
                f"at most backoff_max ({format_duration(restart.backoff_max)})",
                quote(format_duration(restart.backoff_initial)),
            )
        else:
            yield doc.error(
                maximum,
                f"at least backoff_initial ({format_duration(restart.backoff_initial)})",
                quote(format_duration(restart.backoff_max)),
            )


def _blame(doc: Document, *paths: FieldPath) -> FieldPath:
    """Of values that conflict, the one to point at: the first the node wrote itself, else the first written
    anywhere in the file (e.g. in `defaults`), else the first."""
    own = [p for p in paths if doc.written(p)]
    anywhere = [p for p in paths if doc.origin(p) in doc.marks.values]
    return (own or anywhere or list(paths))[0]


def _not_positive(doc: Document, at: FieldPath, value: float) -> ConfigError:
    return doc.error(at, "a duration longer than 0s", quote(format_duration(value)))


def instrument_overlap(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    """Two running nodes must not trade one instrument on one venue account unless both allow it."""
    owners: dict[tuple[str, str], tuple[int, NodeSpec]] = {}
    for i, node in enumerate(spec.nodes):
        if not node.enabled:
            continue
        accounts = dict.fromkeys(venue_account(spec, v) for v in node.venues if v in spec.venues)
        for instrument, where in instrument_sources(node):
            for account in accounts:
                first = owners.setdefault((account, instrument), (i, node))
                if first[0] == i or (node.share_instruments and first[1].share_instruments):
                    continue
                line = doc.marks.value(("nodes", first[0])).line
                yield doc.error(
                    ("nodes", i, *where),
                    f"an instrument no other node trades on venue account {quote(account)}",
                    quote(instrument),
                    f"node {quote(first[1].name)} at line {line} trades it too; "
                    "set share_instruments: true on both nodes to allow it",
                )
