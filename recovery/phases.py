"""Phase reports to the supervisor, stamped at the moment the phase was reached (not when the detail was
ready), and logged with the time since the process started, so a restart can be read from the log alone."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from supervisor import notify
from supervisor.notify import Notifier, encode_detail

log = logging.getLogger(__name__)

# Reported instead of `reconciled` when the node's own check finds the cache still differs from the venue.
RECONCILE_FAILED = "reconcile_failed"
# Any other failure before READY (timeouts, venue errors, a strategy that failed): the reason and the diff.
RECOVERY_FAILED = "recovery_failed"
CACHE_LOADED = "cache_loaded"
RECONCILED = "reconciled"


def process_start_mono_ns() -> int:
    """CLOCK_MONOTONIC when this process started (from /proc), so the import time is counted too."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime: field 22, in clock ticks since boot
        return int(ticks * 1e9 / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic_ns()


class PhaseReporter:
    """Owns the node's Notifier for phase, status and failure messages."""

    def __init__(self, notifier: Notifier, *, started_mono_ns: int | None = None) -> None:
        self.notifier = notifier
        self.started_mono_ns = started_mono_ns if started_mono_ns is not None else process_start_mono_ns()
        self.reached: dict[str, int] = {}  # phase -> monotonic ns

    def stamp(self) -> tuple[int, int]:
        return time.monotonic_ns(), time.time_ns()

    def phase(
        self,
        name: str,
        detail: Mapping[str, Any] | None = None,
        *,
        at: tuple[int, int] | None = None,
        status: str | None = None,
    ) -> None:
        mono, epoch = at or self.stamp()
        self.reached[name] = mono
        fields = {notify.X_PHASE: name, notify.X_MONO: str(mono), notify.X_TS: str(epoch)}
        if detail:
            fields[notify.X_DETAIL] = encode_detail(detail)
        if status:
            fields[notify.STATUS] = status
        self.notifier.send(fields)
        log.info("phase %s at +%.1f ms since process start", name, (mono - self.started_mono_ns) / 1e6)

    def ready(self, status: str) -> None:
        mono = time.monotonic_ns()
        self.reached["ready"] = mono
        self.notifier.ready(status)
        log.info("READY at +%.1f ms since process start: %s", (mono - self.started_mono_ns) / 1e6, status)

    def status(self, text: str) -> None:
        self.notifier.status(text)

    def fatal(self, reason: str, detail: Mapping[str, Any]) -> None:
        self.notifier.fatal(reason, detail)
