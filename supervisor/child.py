"""One node process: spawn it in its own process group, capture its output, notice its exit at once.

The exit is taken from a pidfd, not from the pipes closing: a grandchild that holds stdout open would
otherwise delay detection for as long as it lives.

The output pipes are the kind that outlive the daemon (`supervisor.output_pipe`), so that a later daemon can
adopt the node (`supervisor.adopt.AdoptedProcess`, the same interface for a process that is not our child).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from supervisor.output_pipe import LineHandler, OutputReader, open_child_pipe

log = logging.getLogger(__name__)

# How long to keep reading a dead node's pipes for its last words before closing them.
PIPE_DRAIN_SECONDS = 0.5
# A SIGKILLed process is gone in milliseconds; this only bounds the wait if the kernel is slow to tell.
KILL_REAP_SECONDS = 5.0


class SupervisedProcess:
    """What a node's runner needs of its process, whether spawned by this daemon or adopted from another."""

    pid: int
    pgid: int
    start_time: int | None
    spawned_mono_ns: int
    # The exit code (negative: the signal), or None when it cannot be known (a process that is not our child).
    exited: asyncio.Future[int | None]
    output_inodes: tuple[int, int]

    def __init__(self, output: OutputReader) -> None:
        self._output = output
        self._exit_mono_ns: int | None = None
        self._pidfd: int | None = None  # watched on the loop until the exit is seen

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    @property
    def exit_mono_ns(self) -> int | None:
        """CLOCK_MONOTONIC when the exit was seen."""
        return self._exit_mono_ns

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

    async def stop(self, sig: int, grace: float, *, name: str) -> int | None:
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

    async def kill_and_reap(self) -> None:
        """SIGKILL and wait for the exit to be seen (bounded): for a start abandoned half way, which must
        leave neither a process nor an unreaped child behind."""
        self.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), KILL_REAP_SECONDS)

    def kill_group_remains(self) -> None:
        """After the exit: kill whatever is left of the node's process group."""
        self.signal_group(signal.SIGKILL)

    async def drain_and_close(self) -> None:
        """Read the node's last output, then release the pipes. Runs after the exit was handled, so a
        grandchild holding the pipes delays nothing but this."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._output.wait_closed(), PIPE_DRAIN_SECONDS)
        finally:
            # A grandchild in another process group may still hold the pipes: stop reading them anyway.
            self._output.close()
            self._release()

    def _release(self) -> None:
        """Whatever else the process holds: its pidfd."""
        self._close_pidfd()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


class NodeProcess(SupervisedProcess):
    """A running (or finished) child. Created by `spawn`; one owner (the node's runner).

    Spawned with `subprocess.Popen`, not asyncio's subprocess transport: the transport kills a running child
    when it is closed (as the loop shuts down), and a daemon that detaches for an upgrade must leave its nodes
    running. The exit is seen through a pidfd and reaped with `Popen.poll()` (which gives the exit status).
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        spawned_mono_ns: int,
        output: OutputReader,
        inodes: tuple[int, int],
    ) -> None:
        super().__init__(output)
        self._popen = popen
        self.pid = popen.pid
        # start_new_session=True made it the leader of a new session and process group.
        self.pgid = popen.pid
        self.start_time = process_start_time(popen.pid)
        # Taken before the fork, so it precedes anything the child can report.
        self.spawned_mono_ns = spawned_mono_ns
        self.output_inodes = inodes
        loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        loop.add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        if self._exit_mono_ns is None:
            self._exit_mono_ns = time.monotonic_ns()
        code = self._popen.poll()
        if code is None:
            return  # not reaped yet (cannot happen once the pidfd is readable; try again if it does)
        self._close_pidfd()
        if not self.exited.done():
            self.exited.set_result(code)

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
        pipes = [open_child_pipe(), open_child_pipe()]
        output = OutputReader(on_line)
        try:
            spawned = time.monotonic_ns()
            # On the loop, as asyncio's own subprocess_exec does (vfork + exec: under a millisecond). Not in a
            # thread: a cancellation while the thread forks would leave a node that nobody supervises.
            popen = subprocess.Popen(  # noqa: ASYNC220
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=pipes[0].child_fd,
                stderr=pipes[1].child_fd,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
        except BaseException:
            for pipe in pipes:
                os.close(pipe.read_fd)
            raise
        finally:
            for pipe in pipes:
                os.close(pipe.child_fd)
        process = cls(popen, spawned, output, (pipes[0].inode, pipes[1].inode))
        attached = 0
        try:
            for fd_no, pipe in zip((1, 2), pipes, strict=True):
                attached += 1  # attach owns the descriptor from here on, even when it fails
                await output.attach(fd_no, pipe.read_fd)
        except BaseException:
            # Cancelled (its runner or pool is stopping) while the pipes were being attached: the caller never
            # gets the process, so it must not outlive this, nor stay unreaped.
            for pipe in pipes[attached:]:
                os.close(pipe.read_fd)
            await process.kill_and_reap()
            await process.drain_and_close()
            raise
        return process


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
