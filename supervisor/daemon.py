"""`fleet run`: the long-running daemon that keeps every node of fleet.yaml alive.

Structure (hypercorn-style): the shutdown trigger is an injectable awaitable, services run in one task group,
signal handlers only record what arrived and the loop acts on it. On SIGTERM/SIGINT every node is stopped in
parallel within its grace and `run()` returns 0; a second SIGINT escalates to SIGKILL. SIGHUP reloads.
SIGUSR2 detaches for an upgrade: the daemon exits (EXIT_DETACHED) and leaves its nodes running, for the next
daemon to adopt (supervisor.adopt), as it adopts the nodes of a daemon that was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from supervisor import adopt, node_history, pidfile
from supervisor.audit.scheduler import AuditScheduler
from supervisor.clock import Clock, SystemClock
from supervisor.config import ConfigError, ResolvedPaths, load_fleet, resolve_paths
from supervisor.config.builtins import to_builtins
from supervisor.config.schema import FleetSpec, NodeSpec
from supervisor.control_server import ControlServer
from supervisor.discovery import Announcement, Announcer
from supervisor.events import (
    AuditResult,
    ExitInfo,
    FleetObserver,
    NodeStatus,
    PhaseMark,
    RecoveryReport,
    ReloadOutcome,
)
from supervisor.fleet_view import FleetViewPublisher
from supervisor.lease import Holder, LeaseKeeper, LeaseTiming
from supervisor.node_logs import NodeLogWriter, NodeOutput
from supervisor.node_runner import NodePaths, NodeRunner
from supervisor.notify import Notifier
from supervisor.observers import FanOut
from supervisor.rate_budget import host_egress
from supervisor.reconcile_gate import NodeGate, ReconcileGate
from supervisor.redis_client import RedisOwner
from supervisor.reload import ReloadPlan, plan_reload, watch_file
from supervisor.spare_keeper import SpareKeeper
from supervisor.spares import SpareInfo, SparePool
from supervisor.state_lock import StateDirBusy, StateLock
from supervisor.states import NodeState

log = logging.getLogger(__name__)

# The module a strategy node runs (the recovery library's entry point).
NODE_ENTRY_MODULE = "recovery.node"
# After the file watch failed (its directory removed, say), watch again after this long.
WATCH_RETRY_S = 5.0
# The exit status after SIGUSR2 (EX_TEMPFAIL): not 0, so that systemd's Restart=on-failure starts the
# successor.
EXIT_DETACHED = 75


class Daemon:
    def __init__(
        self,
        *,
        config_path: Path,
        spec: FleetSpec,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        observers: list[FleetObserver] | None = None,
        watch: bool = True,
        host_id: str | None = None,
    ) -> None:
        self.config_path = config_path.resolve()
        # This supervisor's host id: lease holder, placement, MQTT topics, metrics labels.
        self.host = host_id or default_host_id(environ if environ is not None else os.environ)
        self.spec = spec
        self._environ = dict(os.environ if environ is None else environ)
        self._clock = clock or SystemClock()
        self.observer = FanOut(observers or [])
        self._watch = watch
        self.paths: ResolvedPaths = resolve_paths(spec, self._environ)
        self._runners: dict[str, NodeRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._log_writer = NodeLogWriter()
        self._systemd = Notifier(environ=self._environ)
        self._shutdown = asyncio.Event()
        self._escalate = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._reload_trigger = "file"
        self._reload_lock = asyncio.Lock()
        self._last_reload: ReloadOutcome | None = None
        self._ready_sent = False
        self._exit_code = 0
        self._detaching = False
        self._adoptions: dict[str, adopt.Adoption] = {}
        self._adoption_outputs: dict[str, NodeOutput] = {}
        self._node_group: asyncio.TaskGroup | None = None
        self._redis = RedisOwner(spec.redis, self._environ)
        # Created on first use (a fleet of `command:` nodes never touches Redis).
        self._gate = ReconcileGate(
            redis=self._redis.client, observer=self, call_timeout_s=self._redis.call_timeout
        )
        self._node_gate = NodeGate(
            gate=self._gate,
            redis=self._redis.client,
            fleet=lambda: self.spec,
            host=host_egress(),
            call_timeout_s=self._redis.call_timeout,
        )
        self._audits = AuditScheduler(
            fleet=lambda: self.spec,
            redis=self._redis.client,
            call_timeout_s=self._redis.call_timeout,
            observer=self.observer,
            status_of=lambda name: r.status() if (r := self._runners.get(name)) else None,
            env_of=self._node_env,
            host=host_egress(),
            clock=self._clock,
            reconciling=self._gate.reconciling,
        )
        # Built in run(), once the state directory exists (it keeps the lease holder's session).
        self.leases: LeaseKeeper | None = None
        self._view: FleetViewPublisher | None = None
        self._spares = SpareKeeper(
            fleet=lambda: self.spec,
            runners=lambda: self._runners,
            base_env=self._base_env,
            node_env=self._node_env,
            entry_module=NODE_ENTRY_MODULE,
        )

    # ---- the Fleet protocol used by the control server --------------------------------------------

    def runners(self) -> list[NodeRunner]:
        return list(self._runners.values())

    def runner(self, name: str) -> NodeRunner | None:
        return self._runners.get(name)

    def audit_status(self, name: str) -> dict[str, Any]:
        return self._audits.status_of(name)

    def spares(self) -> list[SpareInfo]:
        return self._spares.info()

    def spare_pools(self) -> list[SparePool]:
        return self._spares.pools()

    def request_reload(self, trigger: str = "control") -> None:
        self._reload_trigger = trigger
        self._reload_requested.set()

    def request_shutdown(self) -> None:
        self._shutdown.set()

    def summary(self) -> str:
        counts = Counter(str(r.state) for r in self._runners.values())
        order = [str(s) for s in NodeState]
        parts = [f"{counts[s]} {s}" for s in order if counts[s]]
        total = len(self._runners)
        return f"{total} node{'s' if total != 1 else ''}: {', '.join(parts) if parts else 'none'}"

    # ---- running ---------------------------------------------------------------------------------

    async def run(self, shutdown_trigger: Callable[[], Awaitable[None]] | None = None) -> int:
        """Run until the trigger completes or a SIGTERM/SIGINT arrives; returns the exit code."""
        self._prepare_dirs()
        lock = StateLock(self.paths.state_dir)
        try:
            lock.acquire()
        except StateDirBusy as exc:
            log.critical("cannot start: %s", exc)
            return 1
        try:
            return await self._run_locked(shutdown_trigger)
        finally:
            lock.release()

    def _make_lease_keeper(self) -> None:
        """Before adoption: an adopted strategy node must find its lease held by this supervisor."""
        if self.spec.leases.enabled:
            self.leases = LeaseKeeper(
                redis=self._redis.client,
                holder=Holder.for_state_dir(self.paths.state_dir, self.host),
                timing=LeaseTiming.from_spec(self.spec.leases),
                on_lost=self._lease_lost,
                call_timeout=self._redis.call_timeout,
            )

    def _start_leases(self, services: asyncio.TaskGroup) -> None:
        """The keeper's renewals and this host's view of the fleet in Redis."""
        if self.leases is None:
            return
        services.create_task(self.leases.run(), name="fleet.leases")
        self._view = FleetViewPublisher(
            redis=self._redis.client,
            fleet=self.spec.fleet,
            host=self.host,
            snapshot=self._view_snapshot,
            every=self.leases.timing.renew_every,
            ttl=max(3 * self.leases.timing.ttl, 30.0),
            call_timeout=self._redis.call_timeout,
            clock=self._clock.time,
        )
        services.create_task(self._view.run(), name="fleet.view")

    async def _run_locked(self, shutdown_trigger: Callable[[], Awaitable[None]] | None) -> int:
        self._make_lease_keeper()
        self._log_writer.start()
        await self._take_over_leftovers()
        control = ControlServer(path=self.paths.control_socket, mode=self.spec.control.mode, fleet=self)
        await control.start()
        announcer = Announcer(
            Announcement(
                pid=os.getpid(),
                config=str(self.config_path),
                socket=str(self.paths.control_socket),
                fleet=self.spec.fleet,
            ),
            self.paths.runtime_dir,
            self._environ,
        )
        announcer.announce()
        installed = self._install_signal_handlers()
        try:
            async with asyncio.TaskGroup() as services:
                await self._start_status(services)
                self._node_group = services
                self._spares.start(services)
                for node in self.spec.nodes:
                    self._add_node(node)
                self._start_leases(services)
                services.create_task(self._reload_loop(), name="fleet.reload")
                services.create_task(self._gate.run(), name="fleet.reconcile-gate")
                services.create_task(self._audits.run(), name="fleet.audit")
                if self._watch:
                    services.create_task(self._watch_config(), name="fleet.watch-config")
                if self._systemd.watchdog_interval:
                    services.create_task(self._systemd_watchdog(), name="fleet.systemd-watchdog")
                if shutdown_trigger is not None:
                    services.create_task(self._trigger(shutdown_trigger), name="fleet.shutdown-trigger")
                services.create_task(self._escalation_loop(), name="fleet.escalation")
                log.info(
                    "fleet %s running %d nodes on host %s (control socket %s)",
                    self.spec.fleet,
                    len(self.spec.nodes),
                    self.host,
                    self.paths.control_socket,
                )
                self._systemd.ready(status=self.summary())
                self._ready_sent = True
                await self._shutdown.wait()
                if self._detaching:
                    await self._detach_everything()
                else:
                    await self._stop_everything()
                # Leaving the group with an exception cancels (and awaits) every remaining service task.
                raise _Shutdown
        except* _Shutdown:
            pass
        except* StartupError as group:
            for exc in group.exceptions:
                log.critical("%s", exc)
            self._exit_code = 1
        finally:
            self._node_group = None
            self._restore_signal_handlers(installed)
            announcer.withdraw()
            await control.close()
            await self._redis.close()
            self._log_writer.stop()
        log.info("fleet %s stopped", self.spec.fleet)
        return self._exit_code

    async def _start_status(self, services: asyncio.TaskGroup) -> None:
        """MQTT and Prometheus, before any node starts, so that the first transitions are seen. A metrics
        address that is taken fails the start (better than a fleet nobody can alert on)."""
        from supervisor.status.metrics import FleetMetrics
        from supervisor.status.metrics_server import MetricsServer
        from supervisor.status.mqtt import MqttPublisher
        from supervisor.status.session import FileSessionCounter
        from supervisor.status.spare_metrics import SpareCollector

        host = self.host
        publisher = None
        if self.spec.mqtt.enabled:
            publisher = MqttPublisher(
                spec=self.spec.mqtt,
                fleet=self.spec.fleet,
                host=host,
                sessions=FileSessionCounter(self.paths.state_dir / "mqtt-session"),
                clock=self._clock,
                environ=self._environ,
            )
            self.observer.add(publisher)
            services.create_task(publisher.run(), name="status.mqtt")
        if self.spec.metrics.enabled:
            metrics = FleetMetrics(fleet=self.spec.fleet, host=host, clock=self._clock, mqtt=publisher)
            metrics.registry.register(SpareCollector(self._spares.pools))
            self.observer.add(metrics)
            server = MetricsServer(registry=metrics.registry, listen=self.spec.metrics.listen)
            started = services.create_task(server.run(), name="status.metrics")
            waiter = asyncio.create_task(server.wait_started(), name="status.metrics-started")
            done, _ = await asyncio.wait({started, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if started in done:
                waiter.cancel()
                try:
                    started.result()
                except OSError as exc:
                    raise StartupError(
                        f"metrics: cannot listen on {self.spec.metrics.listen}: {exc}"
                    ) from exc
            else:
                address = waiter.result()
                log.info("metrics on http://%s:%d/metrics", address[0], address[1])

    def _prepare_dirs(self) -> None:
        for directory in (self.paths.runtime_dir, self.paths.state_dir, self.paths.log_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def _take_over_leftovers(self) -> None:
        """Nodes an earlier daemon left are adopted (or recovered, if they died meanwhile); those that cannot
        be adopted are stopped before any new node starts."""
        outputs: dict[str, NodeOutput] = {}

        def output_for(name: str) -> Callable[[str, str], None]:
            outputs[name] = self._node_output(name)
            return outputs[name].line

        async def stop(record: pidfile.PidRecord) -> None:
            node = next((n for n in self.spec.nodes if n.name == record.node), None)
            sig = signal.Signals[node.stop.signal] if node else signal.SIGTERM
            grace = node.stop.grace if node else self.spec.defaults.stop.grace
            await pidfile.stop_leftover(record, sig=sig, grace=grace)

        self._adoption_outputs = outputs
        self._adoptions = await adopt.take_over(
            self.paths.pidfile("x").parent,
            digests={n.name: self._digest(n) for n in self.spec.nodes if n.enabled},
            output_for=output_for,
            stop_leftover=stop,
        )

    def _add_node(self, node: NodeSpec) -> None:
        """A node of the fleet at startup: carries on the history and the process an earlier daemon left."""
        runner = self._make_runner(node, output=self._adoption_outputs.pop(node.name, None))
        history = node_history.load(self._history_file(node.name))
        if history is not None:
            runner.restore_history(history)
        adoption = self._adoptions.pop(node.name, None)
        if adoption is not None:
            runner.take_over(adoption)
        self._launch(runner)

    def _launch(self, runner: NodeRunner) -> None:
        assert self._node_group is not None
        self._runners[runner.name] = runner
        self._tasks[runner.name] = self._node_group.create_task(
            self._guard(runner), name=f"node[{runner.name}]"
        )
        self._spares.add_node(runner)

    def _make_runner(self, node: NodeSpec, *, output: NodeOutput | None = None) -> NodeRunner:
        return NodeRunner(
            spec=node,
            argv=self._argv(node),
            env=self._node_env(node),
            paths=self._node_paths(node),
            spec_payload=self._spec_payload,
            output=output or self._node_output(node.name),
            observer=self,
            clock=self._clock,
            before_start=self._compact_cache if node.strategies is not None else None,
            gate=self._node_gate if node.strategies is not None else None,
            digest=self._digest(node),
            leases=self.leases if node.strategies is not None else None,
            host=self.host,
            spares=self._spares.for_node(node.name) if node.strategies is not None else None,
        )

    def _node_output(self, name: str) -> NodeOutput:
        return NodeOutput(node=name, path=self.paths.log_dir / f"{name}.log", writer=self._log_writer)

    def _digest(self, node: NodeSpec) -> str:
        return adopt.process_digest(self.spec, node, self._argv(node))

    def _history_file(self, name: str) -> Path:
        return self.paths.state_dir / "history" / f"{name}.json"

    async def _guard(self, runner: NodeRunner) -> None:
        """A bug in one runner must not take the others down with SIGKILL: stop the fleet gracefully and
        exit non-zero, so that systemd restarts the daemon."""
        try:
            await runner.run()
        except Exception:
            log.critical("supervision of node %s failed: stopping the fleet", runner.name, exc_info=True)
            self._exit_code = 1
            self._shutdown.set()

    async def _remove_node(self, name: str, *, release: bool = True) -> None:
        runner = self._runners.pop(name)
        await self._spares.remove_node(name)  # its spares imported what the replaced runner ran
        await runner.stop()
        task = self._tasks.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if release and self.leases is not None:
            await self.leases.release(runner.spec.trader_id)
        self.node_removed(name, runner.spec.trader_id, tuple(runner.spec.venues))
        self._publish_summary()

    async def _compact_cache(self, node: NodeSpec) -> dict[str, Any] | None:
        """Archive the node's closed nautilus history before it starts (nautilus loads all of it, ~0.2-0.5 ms
        per item). A failure is logged and the node starts anyway: what was moved is consistent."""
        from supervisor.compaction import CompactionError, compact_with_policy

        policy = node.cache_compaction
        if not policy.enabled:
            return None
        try:
            result = await compact_with_policy(
                self._redis.client(), node.trader_id, policy, call_timeout=self._redis.call_timeout
            )
        except (CompactionError, OSError) as exc:
            log.error("node %s: cache compaction failed, starting anyway: %s", node.name, exc)
            return {"compaction": "failed", "error": str(exc)}
        log.info("node %s: %s", node.name, result.summary(), extra={"node": node.name})
        return {"compaction": result.summary(), "duration_ms": round(result.duration * 1000, 1)}

    def _argv(self, node: NodeSpec) -> list[str]:
        if node.command is not None:
            return list(node.command)
        return [sys.executable, "-m", NODE_ENTRY_MODULE, "--spec", str(self._node_paths(node).spec_file)]

    def _node_env(self, node: NodeSpec) -> dict[str, str]:
        """The daemon's environment with the fleet's virtualenv activated (so `python` in a `command:` is
        the interpreter the fleet runs on), then the node's own `env:`."""
        env = self._base_env()
        env.update(node.env)
        return env

    def _base_env(self) -> dict[str, str]:
        env = dict(self._environ)
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)])
        if sys.prefix != sys.base_prefix:
            env["VIRTUAL_ENV"] = sys.prefix
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _node_paths(self, node: NodeSpec) -> NodePaths:
        return NodePaths(
            notify_socket=self.paths.notify_socket(node.name),
            pidfile=self.paths.pidfile(node.name),
            spec_file=self.paths.runtime_dir / "specs" / f"{node.name}.json",
            log_file=self.paths.node_log(node.name),
            history_file=self._history_file(node.name),
        )

    def _spec_payload(self, node: NodeSpec) -> dict[str, Any]:
        """What a node is handed: its validated spec and what it refers to (secrets stay references)."""
        return {
            "fleet": self.spec.fleet,
            "node": to_builtins(node),
            "venues": {name: to_builtins(self.spec.venues[name]) for name in node.venues},
            "redis": to_builtins(self.spec.redis),
            "coordination": to_builtins(self.spec.coordination),
            "state_dir": str(self.paths.state_dir),
        }

    # ---- reload ----------------------------------------------------------------------------------

    def last_reload(self) -> ReloadOutcome | None:
        return self._last_reload

    async def _watch_config(self) -> None:
        """Reload on every change of the file's content. The watch itself failing (its directory removed or
        made unreadable) must not take the fleet down: it is logged and retried."""
        while True:
            try:
                async for _ in watch_file(self.config_path):
                    self.request_reload("file")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("watching %s failed (%s); retrying in %gs", self.config_path, exc, WATCH_RETRY_S)
            await asyncio.sleep(WATCH_RETRY_S)

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            trigger, self._reload_trigger = self._reload_trigger, "file"
            await self.reload(trigger=trigger)

    async def reload(self, *, trigger: str = "control") -> ReloadOutcome:
        """Re-read fleet.yaml and apply the difference. Any failure before the first change to the running
        fleet (an invalid file, an unreadable one, YAML nested too deep, any exception at all) refuses the
        reload: nothing changes, and the reason is logged, counted and published. Reloads run one at a
        time."""
        async with self._reload_lock:
            try:
                prepared = await self._prepare_reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = self._reload_refused(trigger, exc)
            else:
                await self._apply_reload(*prepared)
                outcome = ReloadOutcome(
                    applied=True, at=self._clock.time(), trigger=trigger, detail=prepared[1].describe()
                )
            self._last_reload = outcome
            self.observer.reload_outcome(outcome)
            return outcome

    async def _prepare_reload(self) -> tuple[FleetSpec, ReloadPlan, dict[str, NodeRunner]]:
        """Everything that can fail, before anything changes: read and validate the file, plan, and build
        the runners of nodes to (re)start (building one starts nothing)."""
        new = await asyncio.to_thread(load_fleet, self.config_path, self._environ)
        plan = plan_reload(self.spec, new)
        fresh = {
            name: self._make_runner(new.node(name))
            for name in (*plan.restart, *plan.start)
            if name in plan.restart or name not in self._runners
        }
        return new, plan, fresh

    def _reload_refused(self, trigger: str, exc: Exception) -> ReloadOutcome:
        if isinstance(exc, ConfigError):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = f"cannot read {self.config_path}: {exc.strerror or exc}"
        else:
            reason = f"{self.config_path}: {type(exc).__name__}: {exc}"
            log.error("reload failed unexpectedly", exc_info=exc)
        log.error("reload refused, the fleet keeps running unchanged: %s", reason)
        return ReloadOutcome(applied=False, at=self._clock.time(), trigger=trigger, detail=reason)

    async def _apply_reload(self, new: FleetSpec, plan: ReloadPlan, fresh: dict[str, NodeRunner]) -> None:
        log.info("reload: %s", plan.describe())
        if plan.needs_daemon_restart:
            log.warning(
                "reload: changes to %s take effect after a daemon restart",
                ", ".join(plan.needs_daemon_restart),
            )
        self.spec = new
        names = {n.name for n in new.nodes}
        # Removed nodes go away; disabled ones stay listed, stopped.
        await asyncio.gather(
            *(
                self._remove_node(name) if name not in names else self._runners[name].stop()
                for name in plan.stop
            )
        )
        for name in plan.update:
            self._runners[name].update(new.node(name))
        for name in plan.restart:
            await self._remove_node(name, release=False)  # its new runner starts under the same lease
            self._launch(fresh[name])
        for name in plan.start:
            if name in fresh:
                self._launch(fresh[name])
            else:
                self._runners[name].update(new.node(name))
                self._runners[name].start()
        # Keep the runners in the file's order.
        self._runners = {n.name: self._runners[n.name] for n in new.nodes if n.name in self._runners}
        await self._spares.reconfigure()
        self._publish_summary()

    # ---- shutdown, signals, systemd --------------------------------------------------------------

    async def _trigger(self, trigger: Callable[[], Awaitable[None]]) -> None:
        await trigger()
        self._shutdown.set()

    async def _stop_everything(self) -> None:
        self._systemd.stopping()
        log.info("stopping all %d nodes", len(self._runners))
        await asyncio.gather(*(runner.stop() for runner in self._runners.values()))
        for task in self._tasks.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.leases is not None:
            # Every node is stopped: hand the leases over now rather than after their TTL.
            await self.leases.release_all()
        if self._view is not None:
            await self._view.withdraw()

    async def _detach_everything(self) -> None:
        """Leave every node running, with its pidfile and history, for the next daemon to adopt."""
        log.warning("detaching: %d nodes keep running for the next supervisor to adopt", len(self._runners))
        for runner in self._runners.values():
            runner.detach()
        for task in self._tasks.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._exit_code = EXIT_DETACHED

    async def _escalation_loop(self) -> None:
        await self._escalate.wait()
        log.warning("second interrupt: killing every node now")
        for runner in self._runners.values():
            runner.kill()

    def _install_signal_handlers(self) -> list[int]:
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: self._handle_term,
            signal.SIGINT: self._handle_int,
            signal.SIGHUP: self._handle_hup,
            signal.SIGUSR2: self._handle_usr2,
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        return list(handlers)

    def _restore_signal_handlers(self, installed: list[int]) -> None:
        loop = asyncio.get_running_loop()
        for sig in installed:
            loop.remove_signal_handler(sig)

    def _handle_term(self) -> None:
        log.info("SIGTERM: stopping the fleet")
        self._shutdown.set()

    def _handle_int(self) -> None:
        if self._shutdown.is_set():
            self._escalate.set()
            return
        log.info("SIGINT: stopping the fleet (interrupt again to kill every node at once)")
        self._shutdown.set()

    def _handle_usr2(self) -> None:
        if self._shutdown.is_set():
            return  # already stopping the nodes: too late to leave them
        log.info("SIGUSR2: detaching, the nodes keep running (upgrade)")
        self._detaching = True
        self._shutdown.set()

    def _handle_hup(self) -> None:
        log.info("SIGHUP: reloading %s", self.config_path)
        self.request_reload("sighup")

    async def _systemd_watchdog(self) -> None:
        interval = self._systemd.watchdog_interval
        assert interval is not None
        while True:
            self._systemd.watchdog()
            await asyncio.sleep(interval)

    # ---- leases and the fleet-wide view ------------------------------------------------------------

    def _lease_lost(self, trader_id: str, reason: str) -> None:
        """Called by the keeper the moment a lease counts as lost: the node must stop trading now."""
        for runner in self._runners.values():
            if runner.spec.trader_id == trader_id:
                runner.fence(reason)

    def _view_snapshot(self) -> list[dict[str, Any]] | None:
        if not any(r.spec.strategies is not None for r in self._runners.values()):
            return None
        return [runner.status().to_json() for runner in self._runners.values()]

    async def hosts_view(self) -> dict[str, dict[str, Any]]:
        """Every host's published view of this fleet (this host's own included, as published)."""
        if self.leases is None or self._view_snapshot() is None:
            return {}  # no node here runs under a lease: Redis is not asked
        from supervisor.fleet_view import read_views

        return await read_views(self._redis.client(), self.spec.fleet, timeout_s=self._redis.call_timeout)

    # ---- FleetObserver: runners report here; the daemon keeps its summary and passes everything on ----

    def node_status(self, status: NodeStatus) -> None:
        self._audits.node_status(status)
        self.observer.node_status(status)
        self._spares.poke()
        self._publish_summary()
        if self._view is not None:
            self._view.changed()

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None:
        self.observer.node_exited(status, exit_info, will_restart)

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        self.observer.recovery_phase(node, phase)
        self._audits.recovery_phase(node, phase)

    def recovery_report(self, report: RecoveryReport) -> None:
        self.observer.recovery_report(report)
        self._audits.recovery_report(report)

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None:
        self._audits.node_removed(name)
        self.observer.node_removed(name, trader_id, venues)

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None:
        self.observer.fleet_summary(summary, counts)

    def reload_outcome(self, outcome: ReloadOutcome) -> None:
        self.observer.reload_outcome(outcome)

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        self.observer.reconcile_queue_depth(group, depth)

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        self.observer.audit_result(status, result, report)

    def _publish_summary(self) -> None:
        summary = self.summary()
        if self._ready_sent:
            self._systemd.status(summary)
        counts = dict(Counter(str(r.state) for r in self._runners.values()))
        self.observer.fleet_summary(summary, counts)


def default_host_id(environ: Mapping[str, str]) -> str:
    """$FLEET_HOST_ID, else the host name (its first label)."""
    return environ.get("FLEET_HOST_ID") or socket.gethostname().split(".")[0]


class StartupError(Exception):
    """The daemon cannot start (a port taken, a directory not writable): said once, clearly, exit 1."""


class _Shutdown(Exception):
    """Raised inside the service task group to cancel every remaining service task."""
