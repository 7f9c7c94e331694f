"""A node's supervision history in the state dir (restarts, starts, last exit, last recovery), so that a
daemon that takes over from one that died (`supervisor.adopt`) carries the counts on instead of starting
from zero. Removed when the node is stopped on purpose: a node started afresh starts its history afresh."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.events import ExitInfo
from supervisor.states import ExitReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeHistory:
    restarts: int
    starts: int
    last_exit: ExitInfo | None
    last_recovery_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "restarts": self.restarts,
            "starts": self.starts,
            "last_exit": self.last_exit.to_json() if self.last_exit else None,
            "last_recovery_ms": self.last_recovery_ms,
        }


def save(path: Path, history: NodeHistory) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(history.to_json()))
        os.replace(tmp, path)
    except OSError as exc:
        # Losing the counts on a takeover is the whole cost: never a reason to disturb supervision.
        log.warning("cannot write %s: %s", path, exc)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def load(path: Path) -> NodeHistory | None:
    """The saved history, or None when there is none (or it does not parse: then it is said and ignored)."""
    try:
        raw = json.loads(path.read_text())
        exit_raw = raw["last_exit"]
        last_exit = (
            ExitInfo(
                reason=ExitReason(exit_raw["reason"]),
                code=exit_raw["code"],
                signal=exit_raw["signal"],
                at=float(exit_raw["at"]),
                detail=str(exit_raw["detail"]),
            )
            if exit_raw
            else None
        )
        recovery = raw["last_recovery_ms"]
        return NodeHistory(
            restarts=int(raw["restarts"]),
            starts=int(raw["starts"]),
            last_exit=last_exit,
            last_recovery_ms=float(recovery) if recovery is not None else None,
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
