"""One node's whole lifecycle: spawn, supervise (exit, watchdog, ready timeout), restart or quarantine.

A `NodeRunner` owns its child process, its notify endpoint and its restart history. Others talk to it only
through its public methods (`start`, `stop`, `restart`, `reset`, `update`, `status`), which record what is
wanted and wake its loop; the loop (`run`, one task per node) does all the acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from supervisor import node_history, notify, pidfile
from supervisor.adopt import LOST_DETAIL, UNKNOWN_EXIT_DETAIL, Adoption
from supervisor.child import NodeProcess, SupervisedProcess
from supervisor.clock import Clock
from supervisor.config.schema import NodeSpec
from supervisor.events import (
    FAILED_RESULT,
    READY_RESULT,
    STOPPED_RESULT,
    ExitInfo,
    FleetObserver,
    NodeStatus,
    PhaseMark,
)
from supervisor.lease import LeaseKeeper
from supervisor.node_logs import NodeOutput
from supervisor.notify_server import NotifyEndpoint
from supervisor.reconcile_gate import ADMITTED, ENV_GATE_KEY, QUEUED, NodeGate, Ticket, gate_key
from supervisor.recovery_tracker import DETECTED, PREPARED, READY, SPAWNED, RecoveryTracker
from supervisor.restart_policy import RestartHistory, Verdict, decide_after_exit
from supervisor.spares import Handoff
from supervisor.states import ExitReason, NodeState, check_transition

log = logging.getLogger(__name__)

# A node killed for a hang first gets SIGABRT (Python's faulthandler, if enabled, prints every thread's
# stack to the captured stderr), then SIGKILL after this long.
ABORT_GRACE_SECONDS = 2.0
# The exit code a shell gives a command it cannot execute; recorded when the spawn itself fails.
EXIT_CODE_EXEC_FAILED = 127


# Node phases after which its reconciliation no longer holds a place at the gate.
GATE_RELEASING_PHASES = frozenset({"reconciled", "reconcile_failed", "recovery_failed"})

# Work done before each spawn (the daemon compacts a strategy node's cache). Returns a phase detail to
# publish as `prepared`, or None when it did nothing. Must not raise for anything but a bug.
BeforeStart = Callable[[NodeSpec], Awaitable[dict[str, Any] | None]]


class SpareSource(Protocol):
    """Where a start can get a warm spare (supervisor/spare_keeper.py); None: start cold."""

    async def take(
        self, argv: list[str], env: dict[str, str], cwd: str | None, output: Callable[[str, str], None]
    ) -> Handoff | None: ...


@dataclass(frozen=True)
class NodePaths:
    notify_socket: Path
    pidfile: Path
    spec_file: Path
    log_file: Path
    # Restart counts and last recovery, kept for a daemon that takes over (supervisor.node_history).
    history_file: Path | None = None


@dataclass
class _Run:
    """What belongs to one spawned process."""

    process: SupervisedProcess
    main_pid: int
    tracker: RecoveryTracker
    ready_deadline: float  # loop time
    ready_when_running: float | None = None  # loop time; readiness mode "running": READY at this moment
    watchdog_deadline: float | None = None  # loop time; armed by the first WATCHDOG=1 or READY=1
    ready_at: float | None = None  # monotonic
    kill_reason: ExitReason | None = None
    fatal_reason: str = ""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ticket: Ticket | None = None  # its place at the reconciliation gate
    queued: bool = False  # it had to wait (a `queued` phase was published)
    admission_seen: bool = False
    lease_epoch: int | None = None  # the fencing epoch it was started under (None: no lease)


# Exit codes a node uses to say why it ended (any other code is a plain `exit`).
_MEANINGFUL_EXIT_CODES = {
    notify.EXIT_LEASE_LOST: (ExitReason.FENCED, "exit code 75: the node lost its lease"),
    notify.EXIT_FATAL: (ExitReason.FATAL, "exit code 78 (EX_CONFIG)"),
}


class NodeRunner:
    def __init__(
        self,
        *,
        spec: NodeSpec,
        argv: list[str],
        env: dict[str, str],
        paths: NodePaths,
        spec_payload: Callable[[NodeSpec], dict[str, object]],
        output: NodeOutput,
        observer: FleetObserver,
        clock: Clock,
        before_start: BeforeStart | None = None,
        gate: NodeGate | None = None,
        digest: str = "",
        leases: LeaseKeeper | None = None,
        host: str = "",
        spares: SpareSource | None = None,
    ) -> None:
        self.spec = spec
        # Of how its process is started (supervisor.adopt.process_digest): recorded so a later daemon can
        # tell whether it may adopt the process.
        self._digest = digest
        # Strategy nodes run only under their trader_id's lease (None: leases are off, or a `command:` node).
        self._leases = leases
        self.host = host
        self._spares = spares
        self._before_start = before_start
        self._gate = gate
        self._argv = argv
        self._env = env
        self.paths = paths
        self._spec_payload = spec_payload
        self.output = output
        self._observer = observer
        self._clock = clock
        self._endpoint = NotifyEndpoint(paths.notify_socket, self._on_notify)

        self.state = NodeState.STOPPED
        self._since = clock.time()
        self._wanted = spec.enabled
        self._restart_requested = False
        self._wake = asyncio.Event()
        self._run: _Run | None = None
        self._history = RestartHistory()
        self._starts = 0
        self._restarts = 0
        self._last_exit: ExitInfo | None = None
        self._last_recovery_ms: float | None = None
        self._status_text = ""
        self._quarantine_reason = ""
        self._quarantined = False
        self._next_start_at: float | None = None
        # Set when the last process ended: the next start is a recovery timed from this moment.
        self._detected: tuple[int, int, str] | None = None
        self._stopped = asyncio.Event()
        self._stopped.set()
        self.rejected_notify = 0
        self._drains: set[asyncio.Task[None]] = set()
        self._early_notify: list[tuple[dict[str, str], int]] = []
        self._adoption: Adoption | None = None
        self._detached = False
        self._standby_reason = ""
        # After the node lost its lease, this host does not ask for it again before this (monotonic): another
        # eligible host, asking every ttl/3, gets it first.
        self._retry_lease_at = 0.0

    # ---- public commands (called on the loop by the daemon and the control socket) -------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> None:
        """Run the node; also releases it from quarantine."""
        self._wanted = True
        self._release_quarantine()
        self._next_start_at = None
        self._wake.set()

    async def stop(self) -> None:
        """Stop the node (stop signal, grace, SIGKILL) and keep it stopped; returns once it is."""
        self._wanted = False
        self._restart_requested = False
        self._wake.set()
        if self._run is not None:
            self._run.wake.set()
        await self._stopped.wait()

    def restart(self) -> None:
        """Stop the running process gracefully and start a new one (or just start it if not running)."""
        self._wanted = True
        self._release_quarantine()
        if self._run is not None:
            self._restart_requested = True
            self._run.wake.set()
        self._next_start_at = None
        self._wake.set()

    def kill(self) -> None:
        """SIGKILL the node's process group now (the daemon's escalation on a second SIGINT)."""
        self._wanted = False
        if self._run is not None:
            self._run.process.kill()

    def reset(self) -> None:
        """Forget crash history and quarantine; a wanted node that is not running starts now."""
        if self._quarantined:
            self._wanted = True
        self._history = self._history.reset()
        self._release_quarantine()
        self._next_start_at = None
        self._wake.set()

    def _release_quarantine(self) -> None:
        if self._quarantined:
            self._quarantined = False
            self._quarantine_reason = ""
            self._history = self._history.reset()

    def take_over(self, adoption: Adoption) -> None:
        """Before `run`: supervise a process an earlier daemon left (or recover it if it died meanwhile)."""
        self._adoption = adoption

    def restore_history(self, history: node_history.NodeHistory) -> None:
        """Before `run`: carry on the counts of an earlier daemon."""
        self._restarts = history.restarts
        self._starts = history.starts
        self._last_exit = history.last_exit
        self._last_recovery_ms = history.last_recovery_ms

    def detach(self) -> None:
        """The daemon is leaving for a successor (an upgrade): when this runner's task is cancelled, leave the
        process running and its pidfile in place."""
        self._detached = True

    def fence(self, reason: str) -> None:
        """The node's lease is lost: another host may take its trader_id over at any moment. Kill the node's
        process group now (no graceful stop: it must not place another order); it is not restarted here
        unless this host acquires the lease again."""
        run = self._run
        if run is None or run.process.exited.done():
            return
        log.error(
            "node %s (pid %s): lease lost (%s): killing it", self.name, run.main_pid, reason,
            extra={"node": self.name},
        )  # fmt: skip
        run.kill_reason = ExitReason.FENCED
        run.fatal_reason = ""
        run.process.kill()
        run.wake.set()

    @property
    def lease_held(self) -> bool | None:
        """This host holds the node's lease, valid now (None: the node needs none: leases are off, or it is a
        `command:` node)."""
        if self._leases is None:
            return None
        lease = self._leases.held(self.spec.trader_id)
        if lease is None or not self._leases.valid(lease):
            return False
        run = self._run
        return run is None or run.lease_epoch in (None, lease.epoch)

    @property
    def wants_to_run(self) -> bool:
        """Wanted and not quarantined: worth keeping spares for."""
        return self._wanted and not self._quarantined

    def update(self, spec: NodeSpec) -> None:
        """Apply changed supervision settings (restart, stop, watchdog, ready timeout) without a restart."""
        self.spec = spec

    def status(self) -> NodeStatus:
        run = self._run
        next_in = None
        if self.state is NodeState.BACKOFF and self._next_start_at is not None:
            next_in = max(0.0, self._next_start_at - self._clock.monotonic())
        return NodeStatus(
            name=self.spec.name,
            trader_id=self.spec.trader_id,
            venues=tuple(self.spec.venues),
            state=self.state,
            pid=run.main_pid if run else None,
            restarts=self._restarts,
            since=self._since,
            started_at=self._started_epoch(run),
            last_exit=self._last_exit,
            last_recovery_ms=self._last_recovery_ms,
            status_text=self._status_text,
            quarantine_reason=self._quarantine_reason,
            next_start_in=next_in,
            host=self.host,
            standby_reason=self._standby_reason if self.state is NodeState.STANDBY else "",
            lease_held=self.lease_held,
        )

    # ---- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """The node's task. Cancel it only after `stop()` returned (the daemon does); cancelling a running
        node kills it outright."""
        self._endpoint.open()
        try:
            if self._adoption is not None:
                adoption, self._adoption = self._adoption, None
                await self._resume(adoption)
            while True:
                await self._wait_until_wanted()
                if await self._hold_lease():
                    await self._run_once()
        finally:
            run = self._run
            if run is not None and not run.process.exited.done() and not self._detached:
                await run.process.kill_and_reap()  # never an unsupervised node, nor an unreaped one
            for drain in list(self._drains):
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
            self._endpoint.close()
            # Whoever waits in stop() must not wait for a loop that has ended.
            self._stopped.set()

    async def _wait_until_wanted(self) -> None:
        while not self._wanted or self._quarantined:
            if not self._wanted and self._quarantined:
                self._release_quarantine()  # an operator's stop ends the quarantine
                self._transition(NodeState.STOPPED)
            self._stopped.set()
            self._wake.clear()
            await self._wake.wait()

    async def _resume(self, adoption: Adoption) -> None:
        """Take over from an earlier daemon: supervise its running process from where it stood, or recover a
        node that died while no supervisor ran."""
        record = adoption.record
        if adoption.process is None:
            mono, epoch = time.monotonic_ns(), time.time_ns()
            self._last_exit = ExitInfo(reason=ExitReason.SIGNAL, at=epoch / 1e9, detail=LOST_DETAIL)
            self._detected = (mono, epoch, str(ExitReason.SIGNAL))
            self._restarts += 1
            self._publish_phase(
                PhaseMark(name=DETECTED, epoch_ns=epoch, mono_ns=mono, ms_since_detection=0.0)
            )
            self._observer.node_exited(self.status(), self._last_exit, True)
            self._save_history()
            return
        self._stopped.clear()
        process = adoption.process
        loop = asyncio.get_running_loop()
        age = max(0.0, (time.monotonic_ns() - process.spawned_mono_ns) / 1e9)
        tracker = RecoveryTracker(
            node=self.name,
            trader_id=self.spec.trader_id,
            venues=tuple(self.spec.venues),
            attempt=max(self._starts, 1),
            reason=record.recovery_reason,
            detected_mono_ns=record.detected_mono_ns,
            detected_epoch_ns=record.detected_epoch_ns,
        )
        run = _Run(
            process=process,
            main_pid=record.main_pid or process.pid,
            tracker=tracker,
            ready_deadline=loop.time() + self.spec.ready_timeout - age,
        )
        self._status_text = record.status_text
        self._run = run
        self._transition(NodeState.STARTING)
        self._transition(NodeState.RECOVERING)
        if record.ready_epoch is not None:
            # Its recovery was reported by the daemon that saw it; READY is resumed, not reported again.
            tracker.finished = True
            run.ready_at = self._clock.monotonic() - max(0.0, self._clock.time() - record.ready_epoch)
            self._transition(NodeState.READY)
        elif self.spec.readiness.mode == "running":
            run.ready_when_running = loop.time() + self.spec.readiness.after - age
        if record.watchdog_armed or record.ready_epoch is not None:
            # Its next ping is due within one timeout from now: a node that has stopped pinging is hung.
            self._arm_watchdog(run)
        # Shown as it stood meanwhile; killed right after if it has lost the lease it was started under.
        await self._resume_lease(run, record.lease_epoch)
        self._write_pidfile(run)
        log.info(
            "node %s: supervising adopted pid %s (%s)",
            self.name,
            process.pid,
            self.state,
            extra={"node": self.name},
        )
        await self._supervise(run)
        ran_for = self._clock.monotonic() - run.ready_at if run.ready_at is not None else 0.0
        await self._after_exit(run, ran_for=ran_for)

    async def _resume_lease(self, run: _Run, epoch: int | None) -> None:
        """An adopted strategy node runs on only under the lease `epoch` it was started with (its pidfile's).
        This supervisor continues the session of the one that started it (`Holder.for_state_dir`), so the
        lease is renewed with that epoch. If it expired in the gap (a new epoch) or another host holds it now,
        the node is killed (its own guard halts it too) and waits in standby like any fenced node."""
        if self._leases is None:
            return
        run.lease_epoch = epoch
        lease = await self._leases.acquire(self.spec.trader_id)
        if lease is None or lease.epoch != epoch:
            self.fence("adopted without the lease it was started under")

    async def _hold_lease(self) -> bool:
        """Wait in standby until this host holds the node's lease (True), or the node is no longer wanted
        (False). Retried every renewal interval: when the holder's host dies, its lease expires and the first
        eligible host to ask after that acquires it (failover)."""
        if self._leases is None:
            return True
        placement = self.spec.placement
        while self._wanted and not self._quarantined:
            if not placement.allows(self.host):
                self._standby_reason = (
                    f"placement: hosts {', '.join(placement.hosts or ())} exclude this host ({self.host})"
                )
            elif self._clock.monotonic() < self._retry_lease_at:
                self._standby_reason = "lease lost here; other hosts may take it first"
            elif await self._leases.acquire(self.spec.trader_id) is not None:
                self._standby_reason = ""
                return True
            else:
                other = self._leases.other_holder(self.spec.trader_id)
                self._standby_reason = f"host {other} holds the lease" if other else "lease not acquired"
            self._stopped.set()
            if self.state is not NodeState.STANDBY:
                log.info("node %s: standby: %s", self.name, self._standby_reason, extra={"node": self.name})
                self._transition(NodeState.STANDBY)
            await self._sleep_interruptibly(self._leases.retry_in(self.spec.trader_id))
        if self.state is NodeState.STANDBY:
            self._transition(NodeState.STOPPED)
        return False

    async def _run_once(self) -> None:
        self._stopped.clear()
        reason = self._detected[2] if self._detected else "cold_start"
        self._transition(NodeState.STARTING)
        now = self._clock.monotonic()
        self._history = self._history.started(now, self.spec.restart.start_limit.window)
        self._starts += 1
        tracker = RecoveryTracker(
            node=self.name,
            trader_id=self.spec.trader_id,
            venues=tuple(self.spec.venues),
            attempt=self._starts,
            reason=reason,
            detected_mono_ns=self._detected[0] if self._detected else None,
            detected_epoch_ns=self._detected[1] if self._detected else None,
        )
        if self._before_start is not None:
            detail = await self._before_start(self.spec)
            if detail is not None:
                self._publish_phase(
                    tracker.mark(
                        PREPARED, mono_ns=time.monotonic_ns(), epoch_ns=time.time_ns(), detail=detail
                    )
                )
        ticket, queued = await self._enqueue(tracker)
        if ticket is not None and not await self._wait_for_spawn_turn(ticket):
            self._release()
            self._finish_recovery(tracker, result=STOPPED_RESULT, error="stopped while queued, never started")
            self._detected = None
            self._transition(NodeState.STOPPED)
            return
        process, via = await self._spawn(tracker, gated=ticket is not None)
        if process is None:
            self._release()
            await self._after_exit(None, ran_for=0.0)
            return
        loop = asyncio.get_running_loop()
        run = _Run(
            process=process,
            main_pid=process.pid,
            tracker=tracker,
            ready_deadline=loop.time() + self.spec.ready_timeout,
            ticket=ticket,
            queued=queued,
        )
        lease = self._leases.held(self.spec.trader_id) if self._leases is not None else None
        run.lease_epoch = lease.epoch if lease is not None else None
        if self.spec.readiness.mode == "running":
            run.ready_when_running = loop.time() + self.spec.readiness.after
        self._run = run
        self._write_pidfile(run)
        self._publish_phase(
            tracker.mark(SPAWNED, mono_ns=process.spawned_mono_ns, epoch_ns=time.time_ns(), detail=via)
        )
        self._transition(NodeState.RECOVERING)
        early, self._early_notify = self._early_notify, []
        for fields, sender in early:
            self._on_notify(fields, sender)
        await self._supervise(run)
        ran_for = self._clock.monotonic() - run.ready_at if run.ready_at is not None else 0.0
        await self._after_exit(run, ran_for=ran_for)

    async def _enqueue(self, tracker: RecoveryTracker) -> tuple[Ticket | None, bool]:
        """A strategy node's place at the reconciliation gate (None: it does not pass one), and whether it
        has to wait (then the `queued` phase says where it stands)."""
        if self._gate is None:
            return None, False
        down_since = self._detected[1] / 1e9 if self._detected else self._clock.time()
        ticket = await self._gate.enqueue(self.spec, down_since=down_since)
        if ticket is None or ticket.admitted.is_set():
            return ticket, False
        place, of = self._gate.gate.place(ticket)
        detail = {
            "place": place,
            "of": of,
            "rate_group": ticket.group,
            "expected_weight": ticket.waiting.weight,
            "has_positions": ticket.waiting.has_positions,
        }
        log.info(
            "node %s: queued for reconciliation, %d of %d", self.name, place, of, extra={"node": self.name}
        )
        self._publish_phase(
            tracker.mark(QUEUED, mono_ns=time.monotonic_ns(), epoch_ns=time.time_ns(), detail=detail)
        )
        return ticket, True

    async def _wait_for_spawn_turn(self, ticket: Ticket) -> bool:
        """A node far back in its group's queue starts its process when its turn nears
        (`ReconcileGate.may_spawn`). False if it was stopped meanwhile."""
        assert self._gate is not None
        gate = self._gate.gate
        logged = False
        while True:
            moved = gate.next_move()
            if gate.may_spawn(ticket) or not self._wanted:
                return self._wanted
            if not logged:
                logged = True
                log.info(
                    "node %s: starts when its turn nears (%d weight queued ahead)",
                    self.name,
                    gate.weight_ahead(ticket),
                    extra={"node": self.name},
                )
            await self._until_woken_or(moved.wait(), "turn")

    def _release(self) -> None:
        if self._gate is not None:
            self._gate.gate.release(self.name)

    def _on_admitted(self, run: _Run) -> None:
        """The gate let the node reconcile: the wait did not count against its ready deadline."""
        run.admission_seen = True
        assert run.ticket is not None
        waited = run.ticket.waited_s
        # Only the wait after the spawn counts: the ready deadline runs from there.
        admitted_mono = run.ticket.admitted_mono if run.ticket.admitted_mono is not None else time.monotonic()
        run.ready_deadline += max(0.0, admitted_mono - run.process.spawned_mono_ns / 1e9)
        if run.queued:
            detail = {"waited_ms": round(waited * 1000, 1), "rate_group": run.ticket.group}
            self._publish_phase(
                run.tracker.mark(
                    ADMITTED, mono_ns=time.monotonic_ns(), epoch_ns=time.time_ns(), detail=detail
                )
            )

    async def _spawn(
        self, tracker: RecoveryTracker, *, gated: bool = False
    ) -> tuple[NodeProcess | None, dict[str, Any]]:
        """The node's process, and how it came to be (`via`: a warm spare's handoff, or a cold start)."""
        self._early_notify = []
        self._write_spec_file()
        env = dict(self._env)
        if gated:
            env[ENV_GATE_KEY] = gate_key(self.spec.trader_id)
        else:
            env.pop(ENV_GATE_KEY, None)
        env["NOTIFY_SOCKET"] = str(self.paths.notify_socket)
        env["FLEET_NODE"] = self.name
        env["FLEET_NODE_SPEC"] = str(self.paths.spec_file)
        lease = self._leases.held(self.spec.trader_id) if self._leases is not None else None
        if self._leases is not None and lease is None:
            log.warning("node %s: lease lost before the spawn: not started", self.name)
            self._last_exit = ExitInfo(
                reason=ExitReason.FENCED, at=self._clock.time(), detail="lease lost before the spawn"
            )
            self._finish_recovery(tracker, result=FAILED_RESULT, error=self._last_exit.detail)
            return None, {}
        for key in ("FLEET_EPOCH", "FLEET_LEASE_KEY", "FLEET_LEASE_TTL_MS", "FLEET_LEASE_MARGIN_MS"):
            env.pop(key, None)
        if lease is not None and self._leases is not None:
            env.update(self._leases.node_env(lease))
        env.pop("WATCHDOG_PID", None)
        if self.spec.watchdog is not None:
            env["WATCHDOG_USEC"] = str(int(self.spec.watchdog.timeout * 1e6))
        else:
            env.pop("WATCHDOG_USEC", None)
        if self._spares is not None:
            # The spec file was written just now: a spare is handed the spec as it is at this moment.
            handoff = await self._spares.take(self._argv, env, self.spec.cwd, self.output.line)
            if handoff is not None:
                log.info(
                    "node %s: warm spare %s (%s) took over in %.1f ms",
                    self.name,
                    handoff.process.pid,
                    handoff.pool,
                    handoff.round_trip_ms,
                    extra={"node": self.name},
                )
                via = {"via": "spare", "pool": handoff.pool, "handoff_ms": round(handoff.round_trip_ms, 2)}
                return handoff.process, via
        try:
            process = await NodeProcess.spawn(
                self._argv, env=env, cwd=self.spec.cwd, on_line=self.output.line
            )
            return process, {"via": "cold"}
        except OSError as exc:
            log.error(
                "node %s: cannot start %s: %s", self.name, self._argv[0], exc, extra={"node": self.name}
            )
            self._last_exit = ExitInfo(
                reason=ExitReason.EXIT,
                code=EXIT_CODE_EXEC_FAILED,
                at=self._clock.time(),
                detail=f"cannot start {self._argv[0]}: {exc.strerror or exc}",
            )
            self._finish_recovery(tracker, result=FAILED_RESULT, error=self._last_exit.detail)
            return None, {}

    async def _supervise(self, run: _Run) -> None:
        """Wait for the process to end, killing it on a watchdog or ready timeout or a stop request."""
        loop = asyncio.get_running_loop()
        exited = run.process.exited
        while not exited.done():
            # Cleared before the checks: a command or notify message arriving while we wait wakes us.
            run.wake.clear()
            if self._fenced(run):
                break  # killed; only its exit is left to see
            if not self._wanted or self._restart_requested or run.fatal_reason:
                await self._stop_process(run)
                break
            if run.ticket is not None and run.ticket.admitted.is_set() and not run.admission_seen:
                self._on_admitted(run)
            waiting_at_gate = run.ticket is not None and not run.ticket.admitted.is_set()
            now = loop.time()
            if run.watchdog_deadline is not None and now >= run.watchdog_deadline:
                await self._kill_hung(run, ExitReason.WATCHDOG)
                break
            if run.ready_at is None and run.ready_when_running is not None and now >= run.ready_when_running:
                self._on_ready(run)  # a plain program that has run long enough: ready
                continue
            if run.ready_at is None and not waiting_at_gate and now >= run.ready_deadline:
                await self._kill_hung(run, ExitReason.READY_TIMEOUT)
                break
            deadlines = [run.ready_deadline] if run.ready_at is None and not waiting_at_gate else []
            if run.ready_at is None and run.ready_when_running is not None:
                deadlines.append(run.ready_when_running)
            if run.watchdog_deadline is not None:
                deadlines.append(run.watchdog_deadline)
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            waker: asyncio.Future[Any] = asyncio.create_task(run.wake.wait(), name=f"node[{self.name}].wake")
            wakers = [exited, waker]
            if waiting_at_gate:
                assert run.ticket is not None
                admitted = asyncio.create_task(run.ticket.admitted.wait(), name=f"node[{self.name}].admitted")
                wakers.append(admitted)
            try:
                await asyncio.wait(wakers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in wakers[1:]:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        await exited

    async def _stop_process(self, run: _Run) -> None:
        self._transition(NodeState.STOPPING)
        if not run.fatal_reason:
            run.kill_reason = ExitReason.STOPPED
        sig = signal.Signals[self.spec.stop.signal]
        await run.process.stop(sig, self.spec.stop.grace, name=self.name)

    async def _kill_hung(self, run: _Run, reason: ExitReason) -> None:
        run.kill_reason = reason
        what = (
            f"no watchdog ping within {self.spec.watchdog.timeout:g}s"
            if reason is ExitReason.WATCHDOG and self.spec.watchdog
            else f"not ready within {self.spec.ready_timeout:g}s"
        )
        log.error(
            "node %s (pid %s): %s: killing it", self.name, run.main_pid, what, extra={"node": self.name}
        )
        await run.process.stop(signal.SIGABRT, ABORT_GRACE_SECONDS, name=self.name)

    async def _after_exit(self, run: _Run | None, *, ran_for: float) -> None:
        self._release()
        if run is not None:
            mono = run.process.exit_mono_ns or time.monotonic_ns()
            epoch = time.time_ns() - (time.monotonic_ns() - mono)
            run.process.kill_group_remains()
            self._last_exit = self._exit_info(run)
            self._detected = (mono, epoch, str(self._last_exit.reason))
            self._publish_phase(
                PhaseMark(name=DETECTED, epoch_ns=epoch, mono_ns=mono, ms_since_detection=0.0)
            )
            drain = asyncio.create_task(run.process.drain_and_close(), name=f"node[{self.name}].drain")
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
            pidfile.remove(self.paths.pidfile)
            if not run.tracker.finished:
                self._finish_recovery(
                    run.tracker,
                    result=_unfinished_result(self._last_exit),
                    error=_describe_exit(self._last_exit),
                )
            self._run = None
        exit_info = self._last_exit
        assert exit_info is not None

        if self._restart_requested and self._wanted:
            self._restart_requested = False
            self._restarts += 1
            self._detected = (*self._detected[:2], "operator") if self._detected else None
            self._observer.node_exited(self.status(), exit_info, True)
            return
        if not self._wanted:
            self._detected = None
            self._transition(NodeState.STOPPED)
            self._observer.node_exited(self.status(), exit_info, False)
            self._forget_history()
            return
        if exit_info.reason is ExitReason.FENCED:
            # Not the restart policy's business: the node runs again here only if this host gets the lease.
            if self._leases is not None:
                await self._leases.release(self.spec.trader_id)
                self._retry_lease_at = self._clock.monotonic() + self._leases.timing.ttl
            self._standby_reason = "lease lost here; other hosts may take it first"
            self._transition(NodeState.STANDBY)
            self._observer.node_exited(self.status(), exit_info, False)
            return

        self._history, decision = decide_after_exit(
            self._history,
            self.spec.restart,
            now=self._clock.monotonic(),
            ran_for=ran_for,
            fatal=exit_info.reason is ExitReason.FATAL,
        )
        if decision.verdict is Verdict.QUARANTINE:
            self._quarantined = True
            self._quarantine_reason = decision.reason
            log.error("node %s quarantined: %s", self.name, decision.reason, extra={"node": self.name})
            self._transition(NodeState.QUARANTINED)
            self._observer.node_exited(self.status(), exit_info, False)
            self._save_history()
            return
        self._restarts += 1
        self._observer.node_exited(self.status(), exit_info, True)
        self._save_history()
        if decision.delay <= 0:
            return
        self._next_start_at = self._clock.monotonic() + decision.delay
        self._transition(NodeState.BACKOFF)
        log.info("node %s: restarting in %.2fs", self.name, decision.delay, extra={"node": self.name})
        await self._sleep_interruptibly(decision.delay)

    async def _until_woken_or(self, awaitable: Coroutine[Any, Any, Any], what: str) -> None:
        """Until `awaitable` is done or a command (stop, start, reset) wakes the runner; cleans up both."""
        self._wake.clear()
        done: asyncio.Future[Any] = asyncio.create_task(awaitable, name=f"node[{self.name}].{what}")
        waker: asyncio.Future[Any] = asyncio.create_task(self._wake.wait(), name=f"node[{self.name}].wake")
        try:
            await asyncio.wait([done, waker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (done, waker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _sleep_interruptibly(self, delay: float) -> None:
        """Back off, unless a command (stop, start, reset) comes first."""
        await self._until_woken_or(self._clock.sleep(delay), "backoff")
        self._next_start_at = None
        if not self._wanted:
            self._detected = None
            self._transition(NodeState.STOPPED)
            self._forget_history()

    def _fenced(self, run: _Run) -> bool:
        """Killed for its lease already, or its lease is gone now (seen here first when this supervisor was
        itself frozen past the deadline): then it is killed now."""
        if run.kill_reason is ExitReason.FENCED:
            return True
        if self._lease_gone(run):
            self.fence("its lease expired")
            return True
        return False

    def _lease_gone(self, run: _Run) -> bool:
        """The node was started under a lease this host no longer holds valid (lost, replaced, or past its
        deadline, which the keeper may not have acted on yet)."""
        if run.lease_epoch is None or self._leases is None:
            return False
        lease = self._leases.held(self.spec.trader_id)
        return lease is None or lease.epoch != run.lease_epoch or not self._leases.valid(lease)

    def _exit_info(self, run: _Run) -> ExitInfo:
        code = run.process.returncode
        at = self._clock.time()
        if run.kill_reason is not ExitReason.STOPPED and self._lease_gone(run):
            # Whatever ended it (its own exit 75, our SIGKILL, a watchdog seen late), it ran without a lease.
            run.kill_reason = ExitReason.FENCED
        if run.fatal_reason:
            return ExitInfo(reason=ExitReason.FATAL, code=code, at=at, detail=run.fatal_reason)
        if run.kill_reason is not None:
            return ExitInfo(
                reason=run.kill_reason,
                code=code if code is not None and code >= 0 else None,
                signal=-code if code is not None and code < 0 else None,
                at=at,
                detail="the node's lease was lost" if run.kill_reason is ExitReason.FENCED else "",
            )
        if code is None:
            # Not our child (adopted): no exit status to reap. Reported as a signal, the likelier end of a
            # node that did not say X_FATAL (the node's own last lines are in its log).
            return ExitInfo(reason=ExitReason.SIGNAL, at=at, detail=UNKNOWN_EXIT_DETAIL)
        if code < 0:
            return ExitInfo(reason=ExitReason.SIGNAL, signal=-code, at=at)
        reason, detail = _MEANINGFUL_EXIT_CODES.get(code, (ExitReason.EXIT, ""))
        return ExitInfo(reason=reason, code=code, at=at, detail=detail)

    # ---- notify messages -----------------------------------------------------------------------------

    def _on_notify(self, fields: dict[str, str], sender: int) -> None:
        run = self._run
        if run is None and self.state is NodeState.STARTING:
            # The child can speak before the spawn call has returned to us: keep it for a moment.
            self._early_notify.append((fields, sender))
            return
        if run is None or run.process.exited.done():
            log.debug("node %s: notify from pid %s while not running: ignored", self.name, sender)
            return
        if not self._sender_allowed(run, sender):
            self.rejected_notify += 1
            log.warning(
                "node %s: ignored a notify message from pid %s, which is not in the node's process group",
                self.name,
                sender,
                extra={"node": self.name},
            )
            return
        loop = asyncio.get_running_loop()
        if notify.MAINPID in fields:
            self._on_mainpid(run, fields[notify.MAINPID], sender)
        if notify.STATUS in fields and fields[notify.STATUS] != self._status_text:
            self._status_text = fields[notify.STATUS]
            self._observer.node_status(self.status())
        if notify.EXTEND_TIMEOUT_USEC in fields and run.ready_at is None:
            with contextlib.suppress(ValueError):
                extended = loop.time() + int(fields[notify.EXTEND_TIMEOUT_USEC]) / 1e6
                run.ready_deadline = max(run.ready_deadline, extended)
                run.wake.set()
        if notify.X_PHASE in fields:
            self._on_phase(run, fields)
        if fields.get(notify.WATCHDOG) == "1":
            self._arm_watchdog(run)
        elif fields.get(notify.WATCHDOG) == "trigger":
            run.watchdog_deadline = loop.time()
            run.wake.set()
        if fields.get(notify.READY) == "1" and run.ready_at is None:
            self._on_ready(run)
        if notify.X_FATAL in fields:
            run.fatal_reason = fields[notify.X_FATAL] or "fatal"
            detail = _parse_detail(fields.get(notify.X_DETAIL))
            log.error(
                "node %s reported a fatal error: %s",
                self.name,
                run.fatal_reason,
                extra={"node": self.name, "detail": detail},
            )
            run.wake.set()

    def _sender_allowed(self, run: _Run, sender: int) -> bool:
        if sender in (run.main_pid, run.process.pid):
            return True
        try:
            return os.getpgid(sender) == run.process.pgid
        except ProcessLookupError:
            return False

    def _on_mainpid(self, run: _Run, value: str, sender: int) -> None:
        if sender != run.main_pid or not value.isdigit():
            log.warning("node %s: MAINPID=%s from pid %s refused", self.name, value, sender)
            return
        pid = int(value)
        try:
            same_group = os.getpgid(pid) == run.process.pgid
        except ProcessLookupError:
            same_group = False
        if not same_group:
            log.warning("node %s: MAINPID=%s is not in the node's process group: refused", self.name, pid)
            return
        run.main_pid = pid

    def _on_phase(self, run: _Run, fields: dict[str, str]) -> None:
        if fields[notify.X_PHASE] in GATE_RELEASING_PHASES:
            self._release()  # it spent its reconciliation's weight (or never will)
        mono = _int_or(fields.get(notify.X_MONO), time.monotonic_ns())
        epoch = _int_or(fields.get(notify.X_TS), time.time_ns())
        phase = run.tracker.mark(
            fields[notify.X_PHASE],
            mono_ns=mono,
            epoch_ns=epoch,
            detail=_parse_detail(fields.get(notify.X_DETAIL)),
        )
        self._publish_phase(phase)

    def _arm_watchdog(self, run: _Run) -> None:
        if self.spec.watchdog is None:
            return
        first = run.watchdog_deadline is None
        run.watchdog_deadline = asyncio.get_running_loop().time() + self.spec.watchdog.timeout
        run.wake.set()
        if first:
            self._write_pidfile(run)  # a successor must watch it too

    def _on_ready(self, run: _Run) -> None:
        run.ready_at = self._clock.monotonic()
        if run.ready_when_running is None or run.watchdog_deadline is not None:
            # A program that does not speak sd_notify is watched by its exit only, unless it pings.
            self._arm_watchdog(run)
        phase = run.tracker.mark(READY, mono_ns=time.monotonic_ns(), epoch_ns=time.time_ns())
        self._publish_phase(phase)
        self._transition(NodeState.READY)
        self._finish_recovery(run.tracker, result=READY_RESULT)
        self._write_pidfile(run)
        run.wake.set()

    def _finish_recovery(self, tracker: RecoveryTracker, *, result: str, error: str = "") -> None:
        report = tracker.report(result=result, error=error)
        if report.full_recovery_ms is not None:
            self._last_recovery_ms = report.full_recovery_ms
        self._observer.recovery_report(report)
        self._save_history()

    # ---- helpers -----------------------------------------------------------------------------------

    def _transition(self, new: NodeState) -> None:
        if new is self.state:
            return
        check_transition(self.name, self.state, new)
        log.info(
            "node %s: %s -> %s", self.name, self.state, new, extra={"node": self.name, "state": str(new)}
        )
        self.state = new
        self._since = self._clock.time()
        self._observer.node_status(self.status())

    def _publish_phase(self, phase: PhaseMark) -> None:
        self._observer.recovery_phase(self.status(), phase)

    def _write_spec_file(self) -> None:
        path = self.paths.spec_file
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._spec_payload(self.spec), indent=2, default=str))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def _write_pidfile(self, run: _Run) -> None:
        """What a successor needs to adopt the process; rewritten when it becomes ready or first pings."""
        if self._run is not run or run.process.exited.done():
            return
        ready_epoch = None
        if run.ready_at is not None:
            ready_epoch = self._clock.time() - (self._clock.monotonic() - run.ready_at)
        pidfile.write(
            self.paths.pidfile,
            pidfile.PidRecord(
                node=self.name,
                trader_id=self.spec.trader_id,
                pid=run.process.pid,
                pgid=run.process.pgid,
                start_time=run.process.start_time,
                daemon_pid=os.getpid(),
                main_pid=run.main_pid,
                spawned_mono_ns=run.process.spawned_mono_ns,
                output_inodes=list(run.process.output_inodes),
                digest=self._digest,
                ready_epoch=ready_epoch,
                watchdog_armed=run.watchdog_deadline is not None,
                status_text=self._status_text,
                recovery_reason=run.tracker.reason,
                detected_mono_ns=run.tracker.detected_mono_ns,
                detected_epoch_ns=run.tracker.detected_epoch_ns,
                lease_epoch=run.lease_epoch,
            ),
        )

    def _save_history(self) -> None:
        if self.paths.history_file is not None:
            node_history.save(
                self.paths.history_file,
                node_history.NodeHistory(
                    restarts=self._restarts,
                    starts=self._starts,
                    last_exit=self._last_exit,
                    last_recovery_ms=self._last_recovery_ms,
                ),
            )

    def _forget_history(self) -> None:
        if self.paths.history_file is not None:
            node_history.remove(self.paths.history_file)

    def _started_epoch(self, run: _Run | None) -> float | None:
        if run is None:
            return None
        age_ns = time.monotonic_ns() - run.process.spawned_mono_ns
        return self._clock.time() - age_ns / 1e9


def _parse_detail(raw: str | None) -> dict[str, object]:
    if not raw:
        return {}
    if len(raw) > notify.MAX_DETAIL_BYTES:
        return {"error": "detail over the size cap", "bytes": len(raw)}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"error": "detail is not JSON", "raw": raw[:200]}
    return value if isinstance(value, dict) else {"value": value}


def _int_or(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _unfinished_result(exit_info: ExitInfo) -> str:
    """How a start that never reached READY ended: stopped on purpose (a stop, a reload), or failed."""
    return STOPPED_RESULT if exit_info.reason is ExitReason.STOPPED else FAILED_RESULT


def _describe_exit(info: ExitInfo) -> str:
    if info.signal is not None:
        try:
            name = signal.Signals(info.signal).name
        except ValueError:
            name = str(info.signal)
        return f"{info.reason}: killed by {name}"
    if info.detail:
        return f"{info.reason}: {info.detail}"
    return f"{info.reason}: exit code {info.code}"
