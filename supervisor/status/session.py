"""Session ids for the supervisor's MQTT connections: a counter that survives restarts.

Every connection gets a new, larger id. The birth and the Last Will carry it, so a will that the broker fires
late (for a connection that died half-open, maybe before this process even started) is recognisably older
than the current birth.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol


class SessionCounter(Protocol):
    async def next_session(self) -> int:
        """A session id larger than every id handed out before, by this process or an earlier one."""
        ...


class SessionCounterError(RuntimeError):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"MQTT session counter {path}: {problem}")
        self.path = path
        self.problem = problem


class FileSessionCounter:
    """The counter in a small file in the state directory, replaced atomically (write, fsync, rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    async def next_session(self) -> int:
        # File I/O (with fsync) off the event loop.
        return await asyncio.to_thread(self._bump)

    def _bump(self) -> int:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            current = 0
        else:
            try:
                current = int(text.strip() or "0")
            except ValueError:
                raise SessionCounterError(self._path, f"not an integer: {text[:40]!r}") from None
        value = current + 1
        tmp = self._path.with_name(self._path.name + ".tmp")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{value}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self._path)
        # The rename is durable only once the directory entry is.
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return value
