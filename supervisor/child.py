"""One node process: spawn it in its own process group, capture its output, notice its exit at once.

The exit is taken from the subprocess protocol's `process_exited` (backed by a pidfd on Linux), not from the
pipes closing: `Process.wait()` in Python 3.12 returns only after the pipes close, and a grandchild that holds
stdout open would delay detection for as long as it lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# Longer lines are passed on in pieces of this size, so a node that never writes a newline cannot make the
# supervisor buffer without bound (and the child never blocks on a full pipe: we always read).
MAX_LINE_BYTES = 64 * 1024
# How long to keep reading a dead node's pipes for its last words before closing them.
PIPE_DRAIN_SECONDS = 0.5

LineHandler = Callable[[str, str], None]  # (stream name, line)


class _ChildProtocol(asyncio.SubprocessProtocol):
    def __init__(self, on_line: LineHandler, exited: asyncio.Future[int]) -> None:
        self._on_line = on_line
        self._exited = exited
        self._buffers: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.pipes_closed = asyncio.Event()
        self._open_pipes = {1, 2}
        self.transport: asyncio.SubprocessTransport | None = None
        self.exit_mono_ns: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self._buffers[fd]
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) >= MAX_LINE_BYTES:
                    self._emit(fd, bytes(buf[:MAX_LINE_BYTES]))
                    del buf[:MAX_LINE_BYTES]
                    continue
                return
            if nl > MAX_LINE_BYTES:
                self._emit(fd, bytes(buf[:MAX_LINE_BYTES]))
                del buf[:MAX_LINE_BYTES]
                continue
            self._emit(fd, bytes(buf[:nl]))
            del buf[: nl + 1]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        buf = self._buffers.get(fd)
        if buf:
            self._emit(fd, bytes(buf))
            buf.clear()
        self._open_pipes.discard(fd)
        if not self._open_pipes:
            self.pipes_closed.set()

    def process_exited(self) -> None:
        if self.exit_mono_ns is None:
            self.exit_mono_ns = time.monotonic_ns()
        assert self.transport is not None
        code = self.transport.get_returncode()
        if not self._exited.done():
            self._exited.set_result(code if code is not None else -1)

    def _emit(self, fd: int, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        try:
            self._on_line("stdout" if fd == 1 else "stderr", line)
        except Exception:
            log.exception("output handler failed")


class NodeProcess:
    """A running (or finished) child. Created by `spawn`; one owner (the node's runner)."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _ChildProtocol,
        exited: asyncio.Future[int],
        spawned_mono_ns: int,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        pid = transport.get_pid()
        self.pid: int = pid
        # start_new_session=True made it the leader of a new session and process group.
        self.pgid: int = pid
        self.start_time = process_start_time(pid)
        # Taken before the fork, so it precedes anything the child can report.
        self.spawned_mono_ns = spawned_mono_ns
        self.exited = exited
        self._pidfd = self._watch_pidfd(pid)

    def _watch_pidfd(self, pid: int) -> int | None:
        """Timestamp the exit in the first loop iteration after it: asyncio's own child watcher hands it on
        through two more callbacks before `process_exited` runs."""
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return None
        asyncio.get_running_loop().add_reader(fd, self._on_pidfd_readable)
        return fd

    def _on_pidfd_readable(self) -> None:
        if self._protocol.exit_mono_ns is None:
            self._protocol.exit_mono_ns = time.monotonic_ns()
        self._close_pidfd()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | Path | None,
        on_line: LineHandler,
        pass_fds: Sequence[int] = (),
    ) -> NodeProcess:
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int] = loop.create_future()
        spawned = time.monotonic_ns()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ChildProtocol(on_line, exited),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        return cls(transport, protocol, exited, spawned)

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    @property
    def exit_mono_ns(self) -> int | None:
        """CLOCK_MONOTONIC when the exit was seen."""
        return self._protocol.exit_mono_ns

    def signal_group(self, sig: int) -> bool:
        """Signal the whole process group (wrappers like `sh -c` pass nothing on). False if it is gone."""
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            log.warning("no permission to signal process group %s", self.pgid)
            return False
        return True

    async def stop(self, sig: int, grace: float, *, name: str) -> int:
        """Stop signal, wait `grace`, then SIGKILL; logs each step. Returns the exit code."""
        if self.exited.done():
            return self.exited.result()
        log.info(
            "stopping node %s (pid %s) with %s",
            name,
            self.pid,
            signal.Signals(sig).name,
            extra={"node": name},
        )
        self.signal_group(sig)
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), grace)
        except TimeoutError:
            log.warning(
                "node %s (pid %s) still running %.1fs after %s: sending SIGKILL",
                name,
                self.pid,
                grace,
                signal.Signals(sig).name,
                extra={"node": name},
            )
        self.signal_group(signal.SIGKILL)
        return await asyncio.shield(self.exited)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def kill_group_remains(self) -> None:
        """After the exit: kill whatever is left of the node's process group."""
        self.signal_group(signal.SIGKILL)

    async def drain_and_close(self) -> None:
        """Read the node's last output, then release the pipes. Runs after the exit was handled, so a
        grandchild holding the pipes delays nothing but this."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._protocol.pipes_closed.wait(), PIPE_DRAIN_SECONDS)
        finally:
            # A grandchild in another process group may still hold the pipes: stop reading them anyway.
            self._transport.close()
            self._close_pidfd()


def process_start_time(pid: int) -> int | None:
    """The process' start time in clock ticks since boot (field 22 of /proc/PID/stat), or None if gone.

    Together with the pid it identifies a process across pid reuse.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None
