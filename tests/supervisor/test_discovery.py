"""Daemon announcements: written and withdrawn by their daemon, read back only while the daemon lives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from supervisor.discovery import Announcement, Announcer, discovery_dir, running_daemons


def test_a_daemon_is_found_while_it_lives_and_forgotten_after(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    ours = Announcement(pid=os.getpid(), config="/etc/fleet.yaml", socket="/run/x/control.sock", fleet="prod")
    announcer = Announcer(ours, tmp_path / "run", environ)
    announcer.announce()
    assert (tmp_path / "run" / "daemon.json").exists()
    assert discovery_dir(environ) == tmp_path / "nautilus-fleet" / "daemons"
    # A daemon that died without withdrawing (kill -9): its pid is gone.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = Announcement(pid=int(gone.stdout), config="/old.yaml", socket="/run/y.sock", fleet="old")
    Announcer(dead, tmp_path / "old-run", environ).announce()
    assert running_daemons(environ, extra_dirs=(tmp_path / "run",)) == [ours]
    announcer.withdraw()
    assert running_daemons(environ, extra_dirs=(tmp_path / "run",)) == []
    assert not (tmp_path / "run" / "daemon.json").exists()


def test_without_xdg_runtime_dir_the_directory_is_per_user_under_tmp() -> None:
    assert discovery_dir({}, uid=1234) == Path("/tmp/nautilus-fleet-1234/daemons")
