"""Values the daemon derives from a FleetSpec: directories, socket paths, the topic prefix, instruments.

Pure functions of the spec and an environment mapping, so the same answer comes out in the daemon, the CLI and
the tests.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from supervisor.config.errors import ConfigError, FieldPath, quote, raise_all
from supervisor.config.schema import FleetSpec, NodeSpec

APP = "nautilus-fleet"
# sun_path is 108 bytes on Linux including the terminating NUL.
MAX_UNIX_PATH = 107


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResolvedPaths:
    runtime_dir: Path  # sockets; cleared at boot (tmpfs), may be removed when the service stops
    state_dir: Path  # survives restarts of the daemon and of the host
    log_dir: Path
    control_socket: Path

    def notify_socket(self, node: str) -> Path:
        """The node's sd_notify socket (short on purpose: AF_UNIX paths are limited)."""
        return self.runtime_dir / "notify" / f"{node}.sock"

    def pidfile(self, node: str) -> Path:
        """Under state_dir, not runtime_dir: systemd removes RuntimeDirectory= when the service stops, and a
        restarted daemon must still find the nodes a previous run left behind."""
        return self.state_dir / "pids" / f"{node}.pid"

    def node_log(self, node: str) -> Path:
        return self.log_dir / f"{node}.log"


def resolve_paths(
    spec: FleetSpec, environ: Mapping[str, str] | None = None, *, uid: int | None = None
) -> ResolvedPaths:
    """Directories from the file, else from systemd (`RuntimeDirectory=` etc.), else per-user defaults:

    - runtime_dir: `runtime_dir`, $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/nautilus-fleet,
      /tmp/nautilus-fleet-<uid>
    - state_dir: `state_dir`, $STATE_DIRECTORY, $XDG_STATE_HOME/nautilus-fleet,
      ~/.local/state/nautilus-fleet
    - log_dir: `log_dir`, $LOGS_DIRECTORY, <state_dir>/logs
    - control_socket: `control.socket`, <runtime_dir>/control.sock

    Raises ConfigError (without a file position; the loader adds it) when a socket path would not fit AF_UNIX
    (ConfigErrors when several do not).
    """
    env = os.environ if environ is None else environ
    user = os.getuid() if uid is None else uid
    runtime = _first(spec.runtime_dir, _systemd_dir(env, "RUNTIME_DIRECTORY"), _under(env, "XDG_RUNTIME_DIR"))
    state = _first(spec.state_dir, _systemd_dir(env, "STATE_DIRECTORY"), _under(env, "XDG_STATE_HOME"))
    runtime_dir = runtime or Path(f"/tmp/{APP}-{user}")  # noqa: S108 - per-user name, created 0700 by the daemon
    state_dir = state or _home(env, user) / ".local" / "state" / APP
    log_dir = _first(spec.log_dir, _systemd_dir(env, "LOGS_DIRECTORY")) or state_dir / "logs"
    socket = Path(spec.control.socket) if spec.control.socket else runtime_dir / "control.sock"
    paths = ResolvedPaths(
        runtime_dir=runtime_dir, state_dir=state_dir, log_dir=log_dir, control_socket=socket
    )
    raise_all(socket_path_problems(spec, paths))
    return paths


def socket_path_problems(spec: FleetSpec, paths: ResolvedPaths) -> list[ConfigError]:
    """Sockets whose path would not fit AF_UNIX, each placed at the setting that decides it."""
    candidates: list[tuple[str, Path]] = [
        ("control.socket" if spec.control.socket else "runtime_dir", paths.control_socket)
    ]
    longest = max((node.name for node in spec.nodes), key=len, default=None)
    if longest is not None:
        candidates.append(("runtime_dir", paths.notify_socket(longest)))
    return [
        ConfigError(
            file="",
            line=0,
            column=0,
            field=field,
            expected=f"a socket path of at most {MAX_UNIX_PATH} bytes",
            found=f"{quote(str(path))} ({len(os.fsencode(path))} bytes)",
            hint="choose a shorter directory (AF_UNIX limits socket paths to 108 bytes)",
        )
        for field, path in candidates
        if len(os.fsencode(path)) > MAX_UNIX_PATH
    ]


def _first(*candidates: str | Path | None) -> Path | None:
    for candidate in candidates:
        if candidate:
            return Path(candidate)
    return None


def _systemd_dir(env: Mapping[str, str], name: str) -> str | None:
    # With several RuntimeDirectory= entries systemd joins them with ":"; the first is ours.
    value = env.get(name, "")
    return value.split(":", 1)[0] or None


def _under(env: Mapping[str, str], name: str) -> Path | None:
    base = env.get(name, "")
    return Path(base) / APP if os.path.isabs(base) else None


def _home(env: Mapping[str, str], uid: int) -> Path:
    home = env.get("HOME", "")
    return Path(home) if os.path.isabs(home) else Path(pwd.getpwuid(uid).pw_dir)


def topic_prefix(spec: FleetSpec) -> str:
    """The MQTT topic prefix: `mqtt.topic_prefix`, default "nautilus-fleet/<fleet>"."""
    return spec.mqtt.topic_prefix or f"{APP}/{spec.fleet}"


def venue_account(spec: FleetSpec, venue: str) -> str:
    """The account label behind a venue entry (its `account`, default the venue's name)."""
    entry = spec.venues.get(venue)
    return (entry.account if entry is not None and entry.account else None) or venue


def instrument_sources(node: NodeSpec) -> Iterator[tuple[str, FieldPath]]:
    """Each instrument a node declares, with where it is written (relative to the node). A strategy's
    `instruments` wins over its config's `instrument_id` / `instrument_ids`; values of the wrong type are
    skipped here (validation reports them)."""
    for i, instrument in enumerate(node.instruments):
        yield instrument, ("instruments", i)
    for s, strategy in enumerate(node.strategies or ()):
        if strategy.instruments is not None:
            for i, instrument in enumerate(strategy.instruments):
                yield instrument, ("strategies", s, "instruments", i)
            continue
        single: Any = strategy.config.get("instrument_id")
        if isinstance(single, str):
            yield single, ("strategies", s, "config", "instrument_id")
        several: Any = strategy.config.get("instrument_ids")
        if isinstance(several, list):
            for i, instrument in enumerate(several):
                if isinstance(instrument, str):
                    yield instrument, ("strategies", s, "config", "instrument_ids", i)


def instruments_of(node: NodeSpec) -> tuple[str, ...]:
    """The instruments a node trades, each once, in the order they are written."""
    return tuple(dict.fromkeys(instrument for instrument, _ in instrument_sources(node)))
