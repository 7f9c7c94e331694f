"""How the `fleet` CLI finds a running daemon when fleet.yaml does not lead it there.

The control socket's path comes from fleet.yaml and from the daemon's environment (`$RUNTIME_DIRECTORY`
under systemd, a temporary directory in `make demo`), which the operator's shell does not have; and a
fleet.yaml that is being edited may not parse, exactly when the operator wants to see the fleet that still
runs. So every daemon announces itself in a small JSON file (its pid, its fleet.yaml, its control socket):

- in its runtime directory (`daemon.json`, next to the socket; `/run/nautilus-fleet` under the unit), and
- in this user's discovery directory, `$XDG_RUNTIME_DIR/nautilus-fleet/daemons/<pid>.json`, else
  `/tmp/nautilus-fleet-<uid>/daemons/<pid>.json` (mode 0700),

and removes both when it stops. The CLI reads them, drops those whose daemon is gone, and prefers the one
running the fleet.yaml it was given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

APP = "nautilus-fleet"
ANNOUNCEMENT = "daemon.json"
# Where the systemd unit's RuntimeDirectory= puts the daemon's sockets (and its announcement).
SYSTEMD_RUNTIME_DIR = Path("/run") / APP


@dataclass(frozen=True)
class Announcement:
    pid: int
    config: str  # absolute path of the fleet.yaml the daemon runs
    socket: str  # its control socket
    fleet: str

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "config": self.config, "socket": self.socket, "fleet": self.fleet}


def discovery_dir(environ: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / APP / "daemons"
    return Path(f"/tmp/{APP}-{os.getuid() if uid is None else uid}") / "daemons"  # noqa: S108 - per-user, 0700


class Announcer:
    """Owns this daemon's announcement files: written at start, removed at stop."""

    def __init__(self, announcement: Announcement, runtime_dir: Path, environ: Mapping[str, str]) -> None:
        self._announcement = announcement
        self._paths = [runtime_dir / ANNOUNCEMENT, discovery_dir(environ) / f"{announcement.pid}.json"]

    def announce(self) -> None:
        for path in self._paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(json.dumps(self._announcement.to_json()))
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except OSError as exc:  # finding the daemon is a convenience; running it is not
                log.warning("could not announce the daemon in %s: %s", path, exc)

    def withdraw(self) -> None:
        for path in self._paths:
            with contextlib.suppress(OSError):
                if _read(path) == self._announcement:
                    path.unlink()


def running_daemons(
    environ: Mapping[str, str] | None = None, *, extra_dirs: tuple[Path, ...] = ()
) -> list[Announcement]:
    """Announcements of daemons that are still alive, each once: this user's, and the systemd unit's."""
    found: dict[int, Announcement] = {}
    for path in _candidates(discovery_dir(environ), (SYSTEMD_RUNTIME_DIR, *extra_dirs)):
        announcement = _read(path)
        if announcement is not None and announcement.pid not in found and _alive(announcement.pid):
            found[announcement.pid] = announcement
    return sorted(found.values(), key=lambda a: a.pid)


def _candidates(user_dir: Path, runtime_dirs: tuple[Path, ...]) -> Iterator[Path]:
    with contextlib.suppress(OSError):
        yield from sorted(user_dir.glob("*.json"))
    for directory in runtime_dirs:
        yield directory / ANNOUNCEMENT


def _read(path: Path) -> Announcement | None:
    try:
        raw = json.loads(path.read_text())
        return Announcement(
            pid=int(raw["pid"]), config=str(raw["config"]), socket=str(raw["socket"]), fleet=str(raw["fleet"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive (the socket decides whether we may talk to it)
    return True
