"""Warm spares: processes that have done a strategy node's imports and wait to be handed a node.

Starting Python and importing nautilus is most of a node's recovery (about 1.3 s of 1.7 s). A `SparePool`
keeps `wanted()` spares (`python -m recovery.spare`, see that module for the protocol) each with one end of a
socketpair. At crash detection the node's runner `take`s one: the pool sends it the node's arguments (the
spec path, freshly written), environment (secrets included) and directory; the spare answers `taken` and
runs `recovery.node.main`, or `refused` (its imports are stale) and the node starts cold.

- One handoff per spare: it leaves the pool before the message is sent, and the socket is closed after the
  answer; a spare that does not answer in time is killed, so it can never run as a second node unsupervised.
- A spare that dies is replaced; one that fails before it is ready is retried with backoff.
- Spares start only when `may_start()` allows (no node of theirs recovering): a spare starting takes a core
  for a second, which a recovering node on a small host needs more.
- The supervisor never imports nautilus: spares are plain child processes to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.child import NodeProcess
from supervisor.output_pipe import LineHandler

log = logging.getLogger(__name__)

SPARE_ENTRY_MODULE = "recovery.spare"
# A spare that has not reported ready by then is killed and counted as a failed start.
SPARE_READY_TIMEOUT_S = 120.0
# The spare answers a handoff within microseconds when idle; this bounds a spare stuck in swap.
HANDOFF_TIMEOUT_S = 2.0
# After a spare fails before it is ready (a strategy module that does not import, say), the next try waits.
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 60.0
RETIRE_GRACE_S = 2.0
# How a handoff ended.
TAKEN, REFUSED, FAILED = "taken", "refused", "failed"


class SpareState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"


@dataclass(frozen=True, kw_only=True)
class SpareInfo:
    pool: str  # the node it belongs to, or "fleet" for the fleet's shared spares
    pid: int
    state: SpareState
    rss_bytes: int | None
    private_bytes: int | None  # not shared with other processes (the spare's real cost)
    import_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "pid": self.pid,
            "state": str(self.state),
            "rss_bytes": self.rss_bytes,
            "private_bytes": self.private_bytes,
            "import_ms": self.import_ms,
        }


@dataclass(frozen=True)
class Handoff:
    process: NodeProcess
    pool: str
    round_trip_ms: float


class _Output:
    """Where a spare's output goes: the pool's log until the handoff, then the node's."""

    def __init__(self, target: LineHandler) -> None:
        self.target = target

    def __call__(self, stream: str, line: str) -> None:
        self.target(stream, line)


class Spare:
    def __init__(
        self,
        process: NodeProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        output: _Output,
    ) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer
        self.output = output
        self.state = SpareState.STARTING
        self.import_ms: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def await_ready(self) -> str | None:
        """None once the spare says it is ready; else why it never will be."""
        try:
            async with asyncio.timeout(SPARE_READY_TIMEOUT_S):
                line = await self._reader.readline()
        except TimeoutError:
            return f"not ready within {SPARE_READY_TIMEOUT_S:g}s"
        except OSError as exc:
            return f"its socket failed: {exc}"
        reply = _parse(line)
        if reply.get("event") == "ready":
            self.state = SpareState.READY
            raw = reply.get("import_ms")
            self.import_ms = float(raw) if isinstance(raw, int | float) else None
            return None
        if reply.get("event") == "failed":
            return f"its imports failed: {reply.get('error', '?')}"
        return "it exited before it was ready" if not line else f"unexpected message {line[:200]!r}"

    async def hand(self, args: Sequence[str], env: Mapping[str, str], cwd: str | None) -> tuple[str, str]:
        """Send the one handoff: ("taken", ""), ("refused", why: its imports are stale) or ("failed", why)."""
        message = json.dumps({"args": list(args), "env": dict(env), "cwd": cwd}).encode() + b"\n"
        try:
            self._writer.write(message)
            async with asyncio.timeout(HANDOFF_TIMEOUT_S):
                await self._writer.drain()
                line = await self._reader.readline()
        except TimeoutError:
            return FAILED, f"no answer within {HANDOFF_TIMEOUT_S:g}s"
        except OSError as exc:
            return FAILED, f"its socket failed: {exc}"
        finally:
            await self.close_channel()
        reply = _parse(line)
        if reply.get("event") == TAKEN:
            return TAKEN, ""
        if reply.get("event") == REFUSED:
            return REFUSED, str(reply.get("reason", "refused"))
        return FAILED, "it exited during the handoff" if not line else f"unexpected answer {line[:200]!r}"

    async def close_channel(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), RETIRE_GRACE_S)

    async def retire(self) -> None:
        """EOF on its socket ends an idle spare; the signal is for one still importing."""
        await self.close_channel()
        await self.process.stop(signal.SIGTERM, RETIRE_GRACE_S, name=f"spare {self.pid}")
        self.process.kill_group_remains()
        await self.process.drain_and_close()

    def info(self, pool: str) -> SpareInfo:
        rss, private = process_memory(self.pid)
        return SpareInfo(
            pool=pool,
            pid=self.pid,
            state=self.state,
            rss_bytes=rss,
            private_bytes=private,
            import_ms=self.import_ms,
        )


class SparePool:
    """The spares of one node (`name` = the node) or of the fleet (`name` = "fleet"). `run()` is its task:
    it keeps `wanted()` spares, and retires them all when cancelled."""

    def __init__(
        self,
        *,
        name: str,
        strategies: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        wanted: Callable[[], int],
        may_start: Callable[[], bool],
        output: LineHandler | None = None,
        python: str = sys.executable,
        strategies_only: bool = False,
    ) -> None:
        self.name = name
        self.strategies = tuple(strategies)
        self.cwd = cwd
        self._env = dict(env)
        self._wanted = wanted
        self._may_start = may_start
        self._output = output or self._log_line
        self._python = python
        self._strategies_only = strategies_only  # tests of the protocol: spares that skip nautilus
        self._spares: list[Spare] = []
        self._wake = asyncio.Event()
        self._became_ready = asyncio.Event()
        self._failures = 0
        self._retry_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self.handoffs: Counter[str] = Counter()  # taken, refused, failed
        self.replaced = 0  # spares that died waiting and were replaced

    # ---- what the runner and the daemon call ----------------------------------------------------------

    def poke(self) -> None:
        """Something `wanted()` or `may_start()` depend on changed."""
        self._wake.set()

    def info(self) -> list[SpareInfo]:
        return [spare.info(self.name) for spare in self._spares]

    def ready_count(self) -> int:
        return sum(1 for s in self._spares if s.state is SpareState.READY and not s.process.exited.done())

    async def wait_ready(self, count: int = 1) -> None:
        """Until `count` spares are ready (bound it with a timeout)."""
        while self.ready_count() < count:
            self._became_ready.clear()
            await self._became_ready.wait()

    async def take(
        self, args: Sequence[str], env: Mapping[str, str], cwd: str | None, output: LineHandler
    ) -> Handoff | None:
        """Hand the node to a ready spare; None if there is none, or it refused (start the node cold)."""
        if cwd != self.cwd:
            return None
        for spare in list(self._spares):
            if spare.state is not SpareState.READY or spare.process.exited.done():
                continue
            self._spares.remove(spare)  # consumed before anything is sent: never offered twice
            self.poke()
            spare.output.target = output
            began = time.monotonic_ns()
            outcome, why = await spare.hand(args, env, cwd)
            self.handoffs[outcome] += 1
            if outcome == TAKEN:
                spare.process.spawned_mono_ns = began  # the node starts now, not when the spare did
                return Handoff(spare.process, self.name, (time.monotonic_ns() - began) / 1e6)
            self._retire_later(spare)  # killed if it is still there: it never runs unsupervised
            if outcome == FAILED:
                log.warning("spare %s of %s failed at the handoff: %s", spare.pid, self.name, why)
                continue  # another one may do
            log.warning("spare %s of %s refused the node: %s; starting it cold", spare.pid, self.name, why)
            # Its siblings were started alike and would refuse alike: replace them all.
            self._retire_all_later()
            return None
        return None

    # ---- the pool's task ----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                self._reap()
                wanted = self._wanted()
                while len(self._spares) > wanted:
                    self._retire_later(self._spares.pop())
                now = time.monotonic()
                starting = any(s.state is SpareState.STARTING for s in self._spares)
                short = len(self._spares) < wanted
                if short and not starting and now >= self._retry_at and self._may_start():
                    await self._start_one()
                    continue
                timeout = self._retry_at - now if short and now < self._retry_at else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            spares, self._spares = self._spares, []
            # Retirements already under way finish (each is bounded by its grace): a cancelled one could
            # leave a spare that nobody supervises. The watchers are cancelled.
            retiring = list(self._retiring)
            await asyncio.gather(*(s.retire() for s in spares), *retiring, return_exceptions=True)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _start_one(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [self._python, "-m", SPARE_ENTRY_MODULE, "--handoff-fd", str(child.fileno())]
        for path in self.strategies:
            argv += ["--strategy", path]
        if self._strategies_only:
            argv.append("--strategies-only")
        output = _Output(self._output)
        process: NodeProcess | None = None
        try:
            process = await NodeProcess.spawn(
                argv, env=self._env, cwd=self.cwd, on_line=output, pass_fds=(child.fileno(),)
            )
            child.close()
            parent.setblocking(False)
            reader, writer = await asyncio.open_unix_connection(sock=parent)
        except OSError as exc:
            parent.close()
            self._failed(f"cannot start a spare: {exc}")
            return
        except asyncio.CancelledError:
            # Retired while starting (the pool's task ends): nothing may outlive it.
            parent.close()
            if process is not None:
                await process.kill_and_reap()
                await process.drain_and_close()
            raise
        finally:
            child.close()
        spare = Spare(process, reader, writer, output)
        self._spares.append(spare)
        process.exited.add_done_callback(lambda _f: self.poke())
        self._spawn_task(self._watch(spare), f"spare[{self.name}].{spare.pid}")
        log.info("%s: spare %s starting", self.name, spare.pid, extra={"node": self.name})

    async def _watch(self, spare: Spare) -> None:
        problem = await spare.await_ready()
        if problem is None:
            self._failures = 0
            self._became_ready.set()
            log.info(
                "%s: spare %s ready (imports %s ms)",
                self.name,
                spare.pid,
                spare.import_ms,
                extra={"node": self.name},
            )
        elif spare in self._spares:
            self._spares.remove(spare)
            await spare.retire()
            self._failed(f"spare {spare.pid}: {problem}")
        self.poke()

    def _failed(self, reason: str) -> None:
        self._failures += 1
        delay = min(RETRY_MAX_S, RETRY_INITIAL_S * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        log.error("%s: %s; next spare in %.0fs", self.name, reason, delay, extra={"node": self.name})

    def _reap(self) -> None:
        for spare in list(self._spares):
            if not spare.process.exited.done() or spare.state is SpareState.STARTING:
                continue  # a starting one is reaped by its _watch (which also counts the failure)
            self._spares.remove(spare)
            self.replaced += 1
            log.warning(
                "%s: spare %s died waiting (exit %s): replacing it",
                self.name,
                spare.pid,
                spare.process.returncode,
                extra={"node": self.name},
            )
            self._retire_later(spare)

    def _retire_all_later(self) -> None:
        spares, self._spares = self._spares, []
        for spare in spares:
            self._retire_later(spare)

    def _retire_later(self, spare: Spare) -> None:
        task = asyncio.create_task(spare.retire(), name=f"spare[{self.name}].{spare.pid}.retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _spawn_task(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _log_line(self, stream: str, line: str) -> None:
        log.info("spare of %s (%s): %s", self.name, stream, line)


def process_memory(pid: int) -> tuple[int | None, int | None]:
    """(RSS, private) bytes of a process: /proc/PID/status VmRSS, and smaps_rollup's private pages (what
    it costs beyond the pages it shares with nodes, such as nautilus' 160 MB library)."""
    rss = private = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
                break
        total = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
        private = total
    except (OSError, ValueError, IndexError):
        pass
    return rss, private


def _parse(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
