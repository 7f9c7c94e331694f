"""Checks on a decoded FleetSpec that the types alone cannot express; each error points into the file.

Pure: nothing here looks at the environment or the file system (see `environment.py` for that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from supervisor.config.describe import NAME_RULE, show
from supervisor.config.document import Document
from supervisor.config.duration import format_duration
from supervisor.config.errors import ConfigError, FieldPath, format_path, quote
from supervisor.config.identifiers import (
    TRADER_ID_RULE,
    instrument_id_problem,
    is_env_name,
    is_import_path,
    trader_id_problem,
)
from supervisor.config.render import mask_url
from supervisor.config.resolve import instrument_sources, venue_account
from supervisor.config.schema import (
    VENUE_NAME_PATTERN,
    FleetSpec,
    NodeDefaults,
    NodeSpec,
    SecretRef,
)

# Set by the supervisor for each node; a node's `env` must not override them.
RESERVED_ENV = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
_VENUE_NAME = re.compile(VENUE_NAME_PATTERN)

type Check = Callable[[FleetSpec, Document], Iterator[ConfigError]]


def validate_fleet(spec: FleetSpec, doc: Document) -> list[ConfigError]:
    """All semantic problems of `spec` (decoded from `doc`), in no particular order."""
    checks: tuple[Check, ...] = (
        _endpoints,
        _venues,
        _secret_refs,
        _node_identities,
        _node_programs,
        _node_venues,
        _node_instruments,
        _node_env,
        _durations,
        _instrument_overlap,
    )
    return [error for check in checks for error in check(spec, doc)]


def secret_refs(spec: FleetSpec) -> Iterator[tuple[FieldPath, SecretRef]]:
    """Every secret reference in the fleet, with its field path."""
    if spec.redis.password is not None:
        yield ("redis", "password"), spec.redis.password
    if spec.mqtt.password is not None:
        yield ("mqtt", "password"), spec.mqtt.password
    for name, venue in spec.venues.items():
        for key, ref in (("api_key", venue.api_key), ("api_secret", venue.api_secret)):
            if ref is not None:
                yield ("venues", name, key), ref


def _endpoints(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    url = urlsplit(spec.redis.url)
    if url.scheme not in ("redis", "rediss", "unix"):
        yield doc.error(
            ("redis", "url"), "a redis://, rediss:// or unix:// URL", quote(mask_url(spec.redis.url))
        )
    elif url.password:
        yield doc.error(
            ("redis", "url"),
            "a URL without a password",
            quote(mask_url(spec.redis.url)),
            "give it by reference in redis.password (env: or file:)",
        )
    prefix = spec.mqtt.topic_prefix
    if prefix is not None and (
        not prefix
        or any(c in prefix for c in "+#\0")
        or prefix.startswith(("/", "$"))
        or prefix.endswith("/")
        or "//" in prefix
    ):
        yield doc.error(
            ("mqtt", "topic_prefix"),
            'topic levels separated by "/", without "+", "#", empty levels or a leading "$"',
            quote(prefix),
        )
    if spec.mqtt.tls is not None and (spec.mqtt.tls.cert_file is None) != (spec.mqtt.tls.key_file is None):
        yield doc.error(("mqtt", "tls"), "both cert_file and key_file, or neither", "only one of them")
    if not _is_host_port(spec.metrics.listen):
        yield doc.error(
            ("metrics", "listen"), 'an address "host:port" like "127.0.0.1:9464"', quote(spec.metrics.listen)
        )
    mode = spec.control.mode
    if not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        yield doc.error(
            ("control", "mode"),
            "a file mode between 0o600 and 0o777 that lets the owner read and write",
            f"0o{mode:o}" if mode >= 0 else str(mode),
        )


def _is_host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return False
    if host.startswith("["):
        return host.endswith("]") and len(host) > 2
    return ":" not in host and not any(c.isspace() for c in host)


def _venues(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for name, venue in spec.venues.items():
        at: FieldPath = ("venues", name)
        if not _VENUE_NAME.fullmatch(name):
            yield doc.error(at, NAME_RULE, quote(name), at_key=True)
        for key, schemes in (
            ("base_url_http", ("http", "https")),
            ("base_url_ws", ("ws", "wss")),
            ("base_url_ws_stream", ("ws", "wss")),
        ):
            value = getattr(venue, key)
            if value is not None:
                url = urlsplit(value)
                if url.scheme not in schemes or not url.netloc:
                    yield doc.error((*at, key), f"a {schemes[0]}:// or {schemes[1]}:// URL", quote(value))
        if (venue.api_key is None) != (venue.api_secret is None):
            yield doc.error(at, "both api_key and api_secret, or neither", "only one of them")
        if venue.account is not None and not venue.account.strip():
            yield doc.error((*at, "account"), "a non-empty account label", quote(venue.account))


def _secret_refs(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for at, ref in secret_refs(spec):
        if (ref.env is None) == (ref.file is None):
            found = "both" if ref.env is not None else "neither"
            yield doc.error(at, 'exactly one of "env" (a variable name) or "file" (a path)', found)
        elif ref.env is not None and not is_env_name(ref.env):
            yield doc.error((*at, "env"), "an environment variable name like API_KEY", quote(ref.env))


def _node_identities(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
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


def _node_programs(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
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
        for s, strategy in enumerate(node.strategies or ()):
            for key in ("path", "config_path"):
                value = getattr(strategy, key)
                if value is not None and not is_import_path(value):
                    yield doc.error(
                        (*at, "strategies", s, key), 'an import path "package.module:ClassName"', quote(value)
                    )


def _node_venues(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
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


def _node_instruments(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        at: FieldPath = ("nodes", i)
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


def _node_env(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        for key in node.env:
            at: FieldPath = ("nodes", i, "env", key)
            if not is_env_name(key):
                yield doc.error(at, "an environment variable name like LOG_LEVEL", quote(key), at_key=True)
            elif key in RESERVED_ENV:
                yield doc.error(at, "a variable the supervisor does not set itself", quote(key), at_key=True)


def _durations(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    yield from _node_durations(doc, ("defaults",), spec.defaults)
    for i, node in enumerate(spec.nodes):
        yield from _node_durations(doc, ("nodes", i), node)
    if spec.redis.timeout <= 0:
        yield _not_positive(doc, ("redis", "timeout"), spec.redis.timeout)
    keepalive = spec.mqtt.keepalive
    if not float(keepalive).is_integer() or not 1 <= keepalive <= 65535:
        yield doc.error(
            ("mqtt", "keepalive"), "whole seconds from 1s to 65535s", quote(format_duration(keepalive))
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


def _instrument_overlap(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
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
