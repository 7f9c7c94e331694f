"""The control socket's wire format: one JSON object per line, each way. Shared by server and client."""

from __future__ import annotations

import json
from typing import Any

COMMANDS = ("status", "start", "stop", "restart", "reset", "logs", "reload")
# Requests are tiny; a line longer than this is a client bug, not something to buffer.
MAX_REQUEST_BYTES = 64 * 1024


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("a control message is a JSON object")
    return value
