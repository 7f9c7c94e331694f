"""The receiving end of the notify protocol: one Unix datagram socket per node, with sender credentials.

asyncio has no `sock_recvmsg`, so the socket is read with `loop.add_reader` + `recvmsg`. The kernel attaches
the sender's pid (SO_PASSCRED); whoever owns the endpoint decides whether that pid may speak for the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from supervisor.notify import MAX_DATAGRAM_BYTES, decode

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")  # pid, uid, gid
# Room for a few datagrams in flight while the loop is busy.
_RCVBUF = 8 * MAX_DATAGRAM_BYTES

MessageHandler = Callable[[dict[str, str], int], None]


class NotifyEndpoint:
    """Owns one bound datagram socket; calls `handler(fields, sender_pid)` on the loop for each message."""

    def __init__(self, path: Path, handler: MessageHandler) -> None:
        self.path = path
        self._handler = handler
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        if len(os.fsencode(self.path)) >= 108:
            raise OSError(f"notify socket path too long for AF_UNIX (108 bytes): {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind(os.fspath(self.path))
            # Only the daemon's user may send; the credential check narrows it to the node's process group.
            os.chmod(self.path, 0o600)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _on_readable(self) -> None:
        assert self._sock is not None
        cmsg_space = socket.CMSG_SPACE(_UCRED.size)
        # Drain everything queued: one readiness callback may cover several datagrams.
        while True:
            try:
                data, ancdata, flags, _ = self._sock.recvmsg(MAX_DATAGRAM_BYTES, cmsg_space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("notify socket %s: receive failed: %s", self.path, exc)
                return
            pid = _sender_pid(ancdata)
            if flags & socket.MSG_TRUNC:
                log.warning("notify: dropped an oversized datagram from pid %s on %s", pid, self.path)
                continue
            if pid is None:
                log.warning("notify: dropped a datagram without credentials on %s", self.path)
                continue
            try:
                self._handler(decode(data), pid)
            except Exception:
                log.exception("notify: handler failed for a message from pid %s", pid)


def _sender_pid(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
            pid, _uid, _gid = _UCRED.unpack(payload[: _UCRED.size])
            return int(pid)
    return None
