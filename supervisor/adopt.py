"""Re-attach: a daemon that starts after another one died (or detached for an upgrade) takes over the nodes
it left running instead of stopping them.

For each pidfile it finds (`supervisor.pidfile`) the daemon decides (`decide`, pure):
- adopt: the process is alive (same pid *and* same start time, so a recycled pid is never adopted), the node
  is in fleet.yaml and enabled, and its process would be started the same way today (`process_digest`).
  A pidfd watches its exit; its stdout/stderr pipes are reopened (`supervisor.output_pipe`); its notify
  socket is bound again at the same path (the node's sd_notify client sends to the path every time).
- recover: the node died while no supervisor ran. It is started again as a crash recovery, reason `signal`:
  a process that is not our child cannot be reaped, so its exit status is unknown.
- stop: alive but not adoptable (removed from or changed in fleet.yaml, started by a supervisor without
  re-attach, its pipes gone): stopped (stop signal, grace, SIGKILL) before anything starts, as before.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import os
import select
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor import pidfile
from supervisor.child import SupervisedProcess, process_start_time
from supervisor.config.builtins import to_builtins
from supervisor.config.schema import FleetSpec, NodeSpec
from supervisor.output_pipe import LineHandler, OutputReader, PipeGone, reopen_node_pipe
from supervisor.reload import SUPERVISION_FIELDS

log = logging.getLogger(__name__)

# What is reported for a node whose exit was not ours to see (it is not our child: no exit status).
UNKNOWN_EXIT_DETAIL = "exit status unknown: the node was not this supervisor's child (adopted)"
LOST_DETAIL = "ended while no supervisor ran; exit status unknown"


class Verdict(enum.StrEnum):
    ADOPT = "adopt"
    RECOVER = "recover"
    STOP = "stop"
    FORGET = "forget"  # dead, and no longer wanted: nothing to do


def process_digest(fleet: FleetSpec, node: NodeSpec, argv: list[str]) -> str:
    """What decides how a node's process is started: argv, every non-supervision field of its spec, the
    venues it uses and (for strategy nodes) Redis. The same test as a reload's "restart" (reload.py)."""
    names = [f for f in NodeSpec.__struct_fields__ if f not in SUPERVISION_FIELDS]
    fields = {f: to_builtins(getattr(node, f)) for f in names}
    payload: dict[str, Any] = {
        "argv": argv,
        "node": fields,
        "venues": {v: to_builtins(fleet.venues.get(v)) for v in node.venues},
        "redis": to_builtins(fleet.redis) if node.strategies is not None else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def decide(record: pidfile.PidRecord, *, wanted_digest: str | None, alive: bool) -> tuple[Verdict, str]:
    """What to do with a node a previous daemon left; `wanted_digest` is None when the node is not wanted."""
    if not alive:
        if wanted_digest is None:
            return Verdict.FORGET, "gone, and no longer in fleet.yaml"
        return Verdict.RECOVER, LOST_DETAIL
    if wanted_digest is None:
        return Verdict.STOP, "not an enabled node of fleet.yaml"
    if not record.output_inodes or not record.digest:
        return Verdict.STOP, "started by a supervisor that could not re-attach"
    if record.digest != wanted_digest:
        return Verdict.STOP, "fleet.yaml now starts it differently"
    return Verdict.ADOPT, ""


class NotAdoptable(Exception):
    """The process cannot be taken over (the message says why)."""


class ExitedMeanwhile(NotAdoptable):
    """It ended between the survey and the takeover."""


class AdoptedProcess(SupervisedProcess):
    """A node left by an earlier daemon: not our child, so its exit comes from a pidfd and has no status."""

    def __init__(self, record: pidfile.PidRecord, pidfd: int, output: OutputReader) -> None:
        super().__init__(output)
        self.pid = record.pid
        self.pgid = record.pgid
        self.start_time = record.start_time
        self.spawned_mono_ns = record.spawned_mono_ns or time.monotonic_ns()
        inodes = record.output_inodes or [0, 0]
        self.output_inodes = (inodes[0], inodes[1])
        loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        self._pidfd = pidfd
        loop.add_reader(pidfd, self._on_exit)

    @classmethod
    async def open(cls, record: pidfile.PidRecord, on_line: LineHandler) -> AdoptedProcess:
        try:
            pidfd = os.pidfd_open(record.pid)
        except ProcessLookupError as exc:
            raise ExitedMeanwhile(f"pid {record.pid} is gone") from exc
        output = OutputReader(on_line)
        try:
            # Checked after the pidfd is open: from here on the pid cannot be handed to another process.
            if process_start_time(record.pid) != record.start_time:
                raise NotAdoptable(f"pid {record.pid} now belongs to another process")
            if select.select([pidfd], [], [], 0)[0]:
                raise ExitedMeanwhile(f"pid {record.pid} has exited")
            if os.getpgid(record.pid) != record.pgid:
                raise NotAdoptable(f"pid {record.pid} left its process group {record.pgid}")
            inodes = record.output_inodes or []
            if len(inodes) != 2:
                raise NotAdoptable("no output pipes recorded")
            for fd_no, inode in zip((1, 2), inodes, strict=True):
                await output.attach(fd_no, reopen_node_pipe(record.pid, fd_no, inode))
        except (NotAdoptable, PipeGone, OSError) as exc:
            output.close()
            exited = bool(select.select([pidfd], [], [], 0)[0])
            os.close(pidfd)
            if isinstance(exc, ExitedMeanwhile) or exited:
                raise ExitedMeanwhile(str(exc)) from exc
            raise NotAdoptable(str(exc)) from exc
        return cls(record, pidfd, output)

    def _on_exit(self) -> None:
        if self._exit_mono_ns is None:
            self._exit_mono_ns = time.monotonic_ns()
        self._close_pidfd()
        if not self.exited.done():
            self.exited.set_result(None)


@dataclass(frozen=True)
class Adoption:
    """A node the daemon takes over: running (`process`), or found dead (`process` None: recover it)."""

    record: pidfile.PidRecord
    process: AdoptedProcess | None


StopLeftover = Callable[[pidfile.PidRecord], Awaitable[None]]


async def take_over(
    directory: Path,
    *,
    digests: Mapping[str, str],
    output_for: Callable[[str], LineHandler],
    stop_leftover: StopLeftover,
) -> dict[str, Adoption]:
    """Survey the pidfiles in `directory`: adopt, mark for recovery, or stop. `digests` holds the enabled
    nodes of fleet.yaml. Returns the nodes taken over (running or dead), by name."""
    taken: dict[str, Adoption] = {}
    stops: list[Awaitable[None]] = []
    for path, record in pidfile.read_all(directory):
        if record is None:
            log.warning("ignoring unreadable pidfile %s", path)
            pidfile.remove(path)
            continue
        verdict, why = decide(record, wanted_digest=digests.get(record.node), alive=pidfile.is_alive(record))
        if verdict is Verdict.ADOPT:
            try:
                process = await AdoptedProcess.open(record, output_for(record.node))
            except ExitedMeanwhile as exc:
                verdict, why = Verdict.RECOVER, f"{LOST_DETAIL} ({exc})"
            except NotAdoptable as exc:
                verdict, why = Verdict.STOP, str(exc)
            else:
                log.info(
                    "adopted node %s (trader %s, pid %s) left running by supervisor pid %s",
                    record.node,
                    record.trader_id,
                    record.pid,
                    record.daemon_pid,
                    extra={"node": record.node},
                )
                taken[record.node] = Adoption(record=record, process=process)
                continue
        pidfile.remove(path)
        if verdict is Verdict.RECOVER:
            log.warning(
                "node %s (trader %s, pid %s) %s: recovering it",
                record.node,
                record.trader_id,
                record.pid,
                why,
                extra={"node": record.node},
            )
            taken[record.node] = Adoption(record=record, process=None)
        elif verdict is Verdict.STOP:
            log.warning("node %s (pid %s) cannot be adopted: %s", record.node, record.pid, why)
            stops.append(stop_leftover(record))
    if stops:
        await asyncio.gather(*stops)
    return taken
