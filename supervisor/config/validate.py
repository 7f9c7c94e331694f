"""Checks on a decoded FleetSpec that the types alone cannot express; each error points into the file.

This module checks the fleet-wide sections and runs the node checks of `validate_nodes.py`. Pure: nothing
here looks at the environment or the file system (see `environment.py` for that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import SplitResult, urlsplit

from supervisor.config import validate_nodes
from supervisor.config.describe import NAME_RULE
from supervisor.config.duration import format_duration
from supervisor.config.errors import ConfigError, FieldPath, quote
from supervisor.config.identifiers import HOST_RULE, host_problem, is_env_name
from supervisor.config.marks import Document
from supervisor.config.render import mask_url
from supervisor.config.schema import VENUE_NAME_PATTERN, FleetSpec, SecretRef

_VENUE_NAME = re.compile(VENUE_NAME_PATTERN)

type Check = Callable[[FleetSpec, Document], Iterator[ConfigError]]


def validate_fleet(spec: FleetSpec, doc: Document) -> list[ConfigError]:
    """All semantic problems of `spec` (decoded from `doc`), in no particular order."""
    checks: tuple[Check, ...] = (
        _endpoints,
        _venues,
        _secret_refs,
        validate_nodes.node_identities,
        validate_nodes.node_programs,
        validate_nodes.node_venues,
        validate_nodes.node_instruments,
        validate_nodes.node_env,
        validate_nodes.durations,
        validate_nodes.instrument_overlap,
        _audit,
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
    elif url.scheme != "unix" and (problem := url_host_problem(url)):
        yield doc.error(
            ("redis", "url"), "a URL with a valid host and port", quote(mask_url(spec.redis.url)), problem
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
    if spec.mqtt.enabled and (problem := host_problem(spec.mqtt.host)):
        yield doc.error(("mqtt", "host"), HOST_RULE, quote(spec.mqtt.host), problem)
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
    if not sep or not host or not port.isdigit() or len(port) > 5 or not 1 <= int(port) <= 65535:
        return False
    if host.startswith("["):
        return host.endswith("]") and len(host) > 2 and host_problem(host) is None
    return ":" not in host and host_problem(host) is None


def url_host_problem(url: SplitResult) -> str | None:
    """Why a URL's host or port cannot be connected to (None if they can)."""
    try:
        port = url.port  # raises for a port out of range or not a number
    except ValueError as exc:
        return f"its port is not valid ({exc})"
    if port == 0:
        return "its port is 0"
    return host_problem(url.hostname) if url.hostname else "it has no host"


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
                elif problem := url_host_problem(url):
                    yield doc.error((*at, key), "a URL with a valid host and port", quote(value), problem)
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


# The venue audit's interval: often enough to matter, rarely enough for the venue's request budget.
AUDIT_INTERVAL_MIN_S = 5.0
AUDIT_INTERVAL_MAX_S = 86_400.0


def _audit(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    interval = spec.audit.interval
    if not AUDIT_INTERVAL_MIN_S <= interval <= AUDIT_INTERVAL_MAX_S:
        yield doc.error(
            ("audit", "interval"),
            f"a duration from {format_duration(AUDIT_INTERVAL_MIN_S)} "
            f"to {format_duration(AUDIT_INTERVAL_MAX_S)}",
            quote(format_duration(interval)),
        )
