"""A node's stdout/stderr pipe that outlives the daemon reading it.

An ordinary pipe has one reader, the daemon: when the daemon dies, the node's next write fails with EPIPE
(SIGPIPE). Here the node's end is opened read-write (a pipe reopened through /proc/self/fd/N follows FIFO open
rules, so O_RDWR is allowed): the node itself counts as a reader, so its writes never fail while no daemon
runs; they queue in the pipe (enlarged to `PIPE_BYTES`) and block only once that is full. A new daemon opens
the same pipe through /proc/<node pid>/fd/1 (and 2), after checking that its inode is the one recorded at
spawn, and reads on from where the old daemon stopped. The node never reads its stdout, so nothing is taken
from the daemon. EOF still comes when the node (and any grandchild holding the pipe) has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Longer lines are passed on in pieces of this size, so a node that never writes a newline cannot make the
# supervisor buffer without bound (and the child never blocks on a full pipe while a daemon reads).
MAX_LINE_BYTES = 64 * 1024
# What a node may write while no daemon runs before its writes block: Linux' default per-user limit for an
# unprivileged pipe (/proc/sys/fs/pipe-max-size). Less if the kernel refuses.
PIPE_BYTES = 1024 * 1024

LineHandler = Callable[[str, str], None]  # (stream name, line)
STREAMS = {1: "stdout", 2: "stderr"}


@dataclass(frozen=True)
class ChildPipe:
    """One stream: the end the daemon reads, the end handed to the child, the pipe's inode (its identity)."""

    read_fd: int
    child_fd: int
    inode: int


def open_child_pipe() -> ChildPipe:
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        child_fd = os.open(f"/proc/self/fd/{write_fd}", os.O_RDWR | os.O_CLOEXEC)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return ChildPipe(read_fd=read_fd, child_fd=child_fd, inode=os.fstat(child_fd).st_ino)


class PipeGone(Exception):
    """The node's stream is not the pipe recorded at its spawn (or cannot be opened)."""


def reopen_node_pipe(pid: int, fd: int, inode: int) -> int:
    """A read end of the pipe that `pid` has as file descriptor `fd`, if it is the recorded one."""
    path = f"/proc/{pid}/fd/{fd}"
    try:
        info = os.stat(path)
    except OSError as exc:
        raise PipeGone(f"{path}: {exc.strerror or exc}") from exc
    if not stat.S_ISFIFO(info.st_mode) or info.st_ino != inode:
        raise PipeGone(f"{path} is not the pipe the node was started with (inode {info.st_ino} != {inode})")
    try:
        read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise PipeGone(f"{path}: {exc.strerror or exc}") from exc
    if os.fstat(read_fd).st_ino != inode:  # replaced between the stat and the open
        os.close(read_fd)
        raise PipeGone(f"{path} changed while it was opened")
    return read_fd


class _LineProtocol(asyncio.Protocol):
    """Splits one stream into lines (cut at MAX_LINE_BYTES) and hands each to `on_line`."""

    def __init__(self, stream: str, on_line: LineHandler, closed: asyncio.Event) -> None:
        self._stream = stream
        self._on_line = on_line
        self._closed = closed
        self._buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) >= MAX_LINE_BYTES:
                    self._emit(bytes(buf[:MAX_LINE_BYTES]))
                    del buf[:MAX_LINE_BYTES]
                    continue
                return
            if nl > MAX_LINE_BYTES:
                self._emit(bytes(buf[:MAX_LINE_BYTES]))
                del buf[:MAX_LINE_BYTES]
                continue
            self._emit(bytes(buf[:nl]))
            del buf[: nl + 1]

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._buf:
            self._emit(bytes(self._buf))
            self._buf.clear()
        self._closed.set()

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        try:
            self._on_line(self._stream, line)
        except Exception:
            log.exception("output handler failed")


class OutputReader:
    """Reads a node's stdout and stderr pipes (read ends owned here) until EOF or `close()`."""

    def __init__(self, on_line: LineHandler) -> None:
        self._on_line = on_line
        self._transports: list[asyncio.ReadTransport] = []
        self._closed: list[asyncio.Event] = []

    async def attach(self, fd_no: int, read_fd: int) -> None:
        """Start reading `read_fd` (the node's `fd_no`); takes ownership of the descriptor."""
        closed = asyncio.Event()
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: _LineProtocol(STREAMS[fd_no], self._on_line, closed), pipe
            )
        except BaseException:
            pipe.close()
            raise
        self._transports.append(transport)
        self._closed.append(closed)

    async def wait_closed(self) -> None:
        for closed in self._closed:
            await closed.wait()

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
