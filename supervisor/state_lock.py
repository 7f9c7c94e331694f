"""One supervisor per state directory: an exclusive `flock` on `<state>/supervisor.lock`, held for the
daemon's life and released by the kernel when it exits or is killed. A second daemon started on the same
state directory would otherwise adopt (and fight over) the nodes the first one still supervises."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class StateDirBusy(Exception):
    """Another supervisor holds the state directory."""


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "supervisor.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        # Not inherited by the nodes (os.open's descriptors are non-inheritable): the lock dies with us.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateDirBusy(
                f"another supervisor{f' (pid {holder})' if holder else ''} runs on {self.path.parent}"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    return ""
