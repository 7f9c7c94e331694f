"""The resolved fleet as `fleet check` prints it: every node with its effective settings.

Secrets never appear: a secret reference is shown as `*** (env NAME)` or `*** (file PATH)`; neither the value
nor the variable's content is ever read here. Node `env` values whose names look like credentials are masked
too, and so is a password inside a URL.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

from supervisor.config.duration import format_duration
from supervisor.config.json_schema import fleet_json_schema
from supervisor.config.resolve import ResolvedPaths, instruments_of, topic_prefix, venue_account
from supervisor.config.schema import FleetSpec, NodeSpec, SecretRef, VenueSpec

MASK = "***"
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASS|PWD|CREDENTIAL|AUTH|PRIVATE", re.IGNORECASE)

__all__ = ["MASK", "fleet_json_schema", "mask_url", "render_fleet"]


def render_fleet(spec: FleetSpec, paths: ResolvedPaths | None = None) -> str:
    lines = [f"fleet {spec.fleet}"]
    lines += _services(spec, paths)
    lines.append("venues" if spec.venues else "venues: none")
    for name, venue in spec.venues.items():
        lines += _venue(spec, name, venue)
    lines.append("nodes" if spec.nodes else "nodes: none")
    for node in spec.nodes:
        lines += _node(spec, node)
    return "\n".join(lines) + "\n"


def _secret(ref: SecretRef | None) -> str:
    if ref is None:
        return "none"
    return f"{MASK} (env {ref.env})" if ref.env is not None else f"{MASK} (file {ref.file})"


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}").geturl()


def _services(spec: FleetSpec, paths: ResolvedPaths | None) -> list[str]:
    redis, mqtt = spec.redis, spec.mqtt
    lines = [
        f"  redis    {mask_url(redis.url)}  password {_secret(redis.password)}  "
        f"timeout {format_duration(redis.timeout)}",
    ]
    if mqtt.enabled:
        tls = "tls" if mqtt.tls is not None else "no tls"
        user = f"  user {mqtt.username}  password {_secret(mqtt.password)}" if mqtt.username else ""
        lines.append(
            f"  mqtt     {mqtt.host}:{mqtt.port} ({tls})  topics {topic_prefix(spec)}/...  "
            f"keepalive {format_duration(mqtt.keepalive)}{user}"
        )
    else:
        lines.append("  mqtt     off")
    lines.append(
        f"  metrics  http://{spec.metrics.listen}/metrics" if spec.metrics.enabled else "  metrics  off"
    )
    lines.append(
        f"  audit    every {format_duration(spec.audit.interval)} (jittered)"
        if spec.audit.enabled
        else "  audit    off"
    )
    if paths is not None:
        lines += [
            f"  control  {paths.control_socket} (mode 0o{spec.control.mode:o})",
            f"  runtime  {paths.runtime_dir}",
            f"  state    {paths.state_dir}",
            f"  logs     {paths.log_dir}",
        ]
    else:
        socket = spec.control.socket or "<runtime dir>/control.sock"
        lines.append(f"  control  {socket} (mode 0o{spec.control.mode:o})")
    return lines


def _venue(spec: FleetSpec, name: str, venue: VenueSpec) -> list[str]:
    lines = [
        f"  {name}  {venue.type}{'  testnet' if venue.testnet else ''}  account {venue_account(spec, name)}"
    ]
    for label, url in (
        ("http", venue.base_url_http),
        ("ws", venue.base_url_ws),
        ("ws stream", venue.base_url_ws_stream),
    ):
        if url is not None:
            lines.append(f"    {label:<12}{mask_url(url)}")
    lines.append(f"    api_key     {_secret(venue.api_key)}")
    lines.append(f"    api_secret  {_secret(venue.api_secret)}")
    return lines


def _node(spec: FleetSpec, node: NodeSpec) -> list[str]:
    state = "" if node.enabled else "  (disabled)"
    lines = [f"  {node.name}  trader {node.trader_id}{state}"]
    if node.command is not None:
        lines.append(f"    command     {shlex.join(node.command)}")
    for strategy in node.strategies or ():
        lines.append(
            f"    strategy    {strategy.path}"
            + (f" ({strategy.config_path})" if strategy.config_path else "")
        )
    if node.cwd is not None:
        lines.append(f"    cwd         {node.cwd}")
    venues = ", ".join(f"{v} (account {venue_account(spec, v)})" for v in node.venues) or "none"
    lines.append(f"    venues      {venues}")
    instruments = ", ".join(instruments_of(node)) or "none"
    shared = "  (shared with other nodes allowed)" if node.share_instruments else ""
    lines.append(f"    instruments {instruments}{shared}")
    restart, limit = node.restart, node.restart.start_limit
    lines.append(
        f"    restart     backoff {format_duration(restart.backoff_initial)}"
        f" to {format_duration(restart.backoff_max)}, "
        f"reset after {format_duration(restart.reset_after)}, "
        f"quarantine after more than {limit.burst} starts in {format_duration(limit.window)}"
    )
    lines.append(f"    stop        {node.stop.signal}, then SIGKILL after {format_duration(node.stop.grace)}")
    watchdog = format_duration(node.watchdog.timeout) if node.watchdog is not None else "off"
    lines.append(f"    watchdog    {watchdog}  ready timeout {format_duration(node.ready_timeout)}")
    if node.readiness.mode == "running":
        lines.append(
            f"    readiness   ready after {format_duration(node.readiness.after)} of running (no sd_notify)"
        )
    if node.strategies is not None:
        lines.append(f"    compaction  {_compaction(node)}")
    for key, value in sorted(node.env.items()):
        lines.append(f"    env         {key}={MASK if _SECRET_NAME.search(key) else value}")
    return lines


def _compaction(node: NodeSpec) -> str:
    policy = node.cache_compaction
    if not policy.enabled:
        return "off (nautilus loads all closed history at every start)"
    window, budget = format_duration(policy.venue_window), format_duration(policy.time_budget)
    return (
        f"before each start, keep the {policy.keep_closed} latest closed positions/orders and "
        f"{window} of closed orders, up to {budget}"
    )
