"""A pidfile per node (pid + process start time), so a restarted daemon can find nodes a previous run left
behind: it adopts them (`supervisor.adopt`) or, when it cannot, stops them before it starts new ones: never
two copies of one trader_id. The record also carries what adoption needs: the output pipes' inodes, the
digest of the process' spec, and where the node's supervision stood (ready, watchdog armed, recovery)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from supervisor.child import process_start_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PidRecord:
    node: str
    trader_id: str
    pid: int
    pgid: int
    start_time: int | None
    daemon_pid: int
    # Below: written by supervisors that can re-attach; a record without them is stopped, not adopted.
    main_pid: int | None = None
    spawned_mono_ns: int | None = None  # CLOCK_MONOTONIC, comparable across processes on one host
    output_inodes: list[int] | None = None  # the stdout and stderr pipes (supervisor.output_pipe)
    digest: str = ""  # of what the process was started with (supervisor.adopt.process_digest)
    ready_epoch: float | None = None  # when it said READY=1; None while it is recovering
    watchdog_armed: bool = False  # it has pinged (or is READY): a silence from now on is a hang
    status_text: str = ""
    recovery_reason: str = "cold_start"  # why this process was started (the reason of its recovery)
    detected_mono_ns: int | None = None  # when the crash it recovers from was detected
    detected_epoch_ns: int | None = None
    lease_epoch: int | None = None  # the fencing epoch it was started under (FLEET_EPOCH); None: no lease


def write(path: Path, record: PidRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_all(directory: Path) -> list[tuple[Path, PidRecord | None]]:
    """Every pidfile in `directory`; None for one that does not parse (it is reported and removed)."""
    found: list[tuple[Path, PidRecord | None]] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.pid")):
        try:
            found.append((path, PidRecord(**json.loads(path.read_text()))))
        except (OSError, ValueError, TypeError):
            found.append((path, None))
    return found


def is_alive(record: PidRecord) -> bool:
    """The same process is still running: same pid and same start time (guards against pid reuse)."""
    return record.start_time is not None and process_start_time(record.pid) == record.start_time


async def stop_leftover(record: PidRecord, *, sig: int, grace: float) -> None:
    """Stop a node left by an earlier daemon: stop signal to its group, wait `grace`, SIGKILL."""
    log.warning(
        "found node %s (trader %s, pid %s) left running by an earlier supervisor (pid %s): stopping it",
        record.node,
        record.trader_id,
        record.pid,
        record.daemon_pid,
        extra={"node": record.node},
    )
    _signal_group(record.pgid, sig)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    # Not our child, so there is no exit notification to wait on: a pidfd tells us when it is gone.
    if await _wait_gone(record.pid, deadline - loop.time()):
        _signal_group(record.pgid, signal.SIGKILL)  # whatever else remains of its group
        return
    log.warning(
        "leftover node %s (pid %s) ignored %s for %.1fs: SIGKILL", record.node, record.pid, sig, grace
    )
    _signal_group(record.pgid, signal.SIGKILL)
    await _wait_gone(record.pid, grace)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _wait_gone(pid: int, within: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await asyncio.wait_for(gone, max(within, 0.0))
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
