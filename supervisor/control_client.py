"""The CLI side of the control socket: plain blocking sockets (the CLI has no event loop), with timeouts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from supervisor import control_protocol as proto

CONNECT_TIMEOUT_SECONDS = 2.0
# `stop` waits for the node's grace period on the daemon's side.
REPLY_TIMEOUT_SECONDS = 90.0


class DaemonNotRunningError(ConnectionError):
    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"no fleet daemon is listening on {path} ({why}); start one with `fleet run`")
        self.path = path


class ControlClient:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_SECONDS)
        try:
            sock.connect(str(self.path))
        except FileNotFoundError as exc:
            sock.close()
            raise DaemonNotRunningError(self.path, "socket not found") from exc
        except ConnectionRefusedError as exc:
            sock.close()
            raise DaemonNotRunningError(self.path, "connection refused") from exc
        except PermissionError as exc:
            sock.close()
            raise PermissionError(f"no permission to use {self.path}: run as the daemon's user") from exc
        return sock

    def probe(self) -> None:
        """Is a daemon listening? DaemonNotRunningError when not (nothing is sent)."""
        self._connect().close()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        for reply in self.stream(message, timeout=REPLY_TIMEOUT_SECONDS):
            return reply
        raise ConnectionError("the daemon closed the connection without answering")

    def stream(self, message: dict[str, Any], *, timeout: float | None) -> Iterator[dict[str, Any]]:
        """Send one request and yield every reply line until the daemon closes the connection."""
        with self._connect() as sock:
            sock.settimeout(timeout)
            sock.sendall(proto.encode(message))
            with sock.makefile("rb") as replies:
                for line in replies:
                    yield proto.decode(line)
