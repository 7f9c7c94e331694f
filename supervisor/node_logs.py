"""Where a node's output goes: its own rotating log file (written off the event loop), the daemon's log,
and any live followers (`fleet logs -f`)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import logging.handlers
import queue
from pathlib import Path

# Per-node file size before rotation, and rotated files kept.
LOG_FILE_BYTES = 20 * 1024 * 1024
LOG_FILE_BACKUPS = 5
# A follower that cannot keep up loses lines rather than slowing the daemon.
FOLLOWER_QUEUE_LINES = 1000

node_output = logging.getLogger("fleet.node")


class _PerNodeFiles(logging.Handler):
    """Routes records to one rotating file per node; runs on the listener thread only."""

    def __init__(self) -> None:
        super().__init__()
        self._files: dict[Path, logging.handlers.RotatingFileHandler] = {}

    def emit(self, record: logging.LogRecord) -> None:
        path: Path = record.__dict__["log_path"]
        handler = self._files.get(path)
        if handler is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter("%(asctime)s %(stream)s %(message)s"))
            self._files[path] = handler
        handler.handle(record)

    def close(self) -> None:
        for handler in self._files.values():
            handler.close()
        self._files.clear()
        super().close()


class NodeLogWriter:
    """Owns the background thread that writes every node's log file."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._files = _PerNodeFiles()
        self._listener = logging.handlers.QueueListener(self._queue, self._files)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._listener.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._listener.stop()
            self._started = False
        self._files.close()

    def write(self, path: Path, node: str, stream: str, line: str) -> None:
        record = logging.LogRecord("fleet.node", logging.INFO, "", 0, line, None, None)
        record.__dict__.update(log_path=path, node=node, stream=stream)
        self._queue.put(record)


class NodeOutput:
    """One node's output: to its file, to the daemon's log, and to followers."""

    def __init__(self, *, node: str, path: Path, writer: NodeLogWriter) -> None:
        self.node = node
        self.path = path
        self._writer = writer
        self._followers: set[asyncio.Queue[str]] = set()
        self.dropped_for_followers = 0

    def line(self, stream: str, text: str) -> None:
        self._writer.write(self.path, self.node, stream, text)
        node_output.info("%s", text, extra={"node": self.node, "stream": stream})
        for follower in self._followers:
            try:
                follower.put_nowait(text)
            except asyncio.QueueFull:
                self.dropped_for_followers += 1

    @contextlib.contextmanager
    def follow(self) -> collections.abc.Iterator[asyncio.Queue[str]]:
        q: asyncio.Queue[str] = asyncio.Queue(FOLLOWER_QUEUE_LINES)
        self._followers.add(q)
        try:
            yield q
        finally:
            self._followers.discard(q)

    async def tail(self, lines: int) -> list[str]:
        return await asyncio.to_thread(_read_tail, self.path, lines)


def _read_tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            # Read enough from the end for `lines` lines of typical length; more if they are long.
            chunk = min(size, max(64 * 1024, lines * 512))
            fh.seek(size - chunk)
            data = fh.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]
