"""One node process from start to exit, on the node's own event loop.

    resolve secrets, reach Redis -> TradingNode() loads the cache        -> X_PHASE cache_loaded
    RiskEngine HALTED; strategies bound to the hub; clients built
    start: connect (our timeout) -> reconcile (our timeout, our client)  -> X_PHASE reconciled
        our own check: cached net == venue per instrument, else no trader start, the diff, exit 1
    trader started -> strategies restore (hub)        -> state_restored, orders_restored, warmed
    every strategy ready -> RiskEngine ACTIVE          -> READY=1
    SIGTERM -> STOPPING=1, clean stop, state saved (only after a recovery that reached READY), exit 0

Nautilus itself never fails a start: it logs and returns, leaving a node that looks RUNNING with strategies
that never started. Every step here has its own bound, and any failure ends in a clean stop that writes
nothing over the cached state, with the reason and the diff in the log and in the notify detail.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from recovery import cache_view
from recovery.build import CLIENT_NAME, Credentials, build_node_config
from recovery.durable import DurableStore
from recovery.errors import (
    CacheCorruptError,
    LeaseNotHeldError,
    ReconciliationError,
    RecoveryError,
    RedisUnavailableError,
    SpecError,
    StartupTimeoutError,
)
from recovery.hub import RecoveryHub, TradingStateName
from recovery.judge import Judgement, judge, venue_view_from_reports
from recovery.kernel_waits import poll_until, stop_spinning
from recovery.lease_guard import Fence, LeaseGuard, LeaseSettings
from recovery.phases import CACHE_LOADED, RECONCILE_FAILED, RECONCILED, RECOVERY_FAILED, PhaseReporter
from recovery.positions_hash import PositionsHash, aggregate
from recovery.ratelimit import LocalRequestLimiter, RequestLimiter
from recovery.spec import NodeRun, Timeouts, node_instruments, parse_redis_url, timeouts_for
from recovery.venue import VenuePosition, VenueSnapshot
from supervisor.notify import EXIT_FATAL, EXIT_LEASE_LOST, Notifier
from supervisor.secrets import SecretUnavailableError, resolve_secret

if TYPE_CHECKING:
    from recovery.binance.http import RequestGate

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # recovery failed; a restart (after backoff) may succeed
ACCOUNT_ID = f"{CLIENT_NAME}-USDT_FUTURES-master"
# Waits for the venue's request budget do not count against the connect and reconcile bounds, up to this much
# in all (a ban of hours is a failure, not a wait); shorter waits than the slack are noise.
MAX_BUDGET_WAIT_S = 600.0
BUDGET_WAIT_SLACK_S = 0.05
# Each call to the fleet's request budget in Redis; beyond it the node uses a local share for a while.
RATE_BUDGET_CALL_TIMEOUT_S = 0.5


class Stage(enum.Enum):
    LOADING = "loading"
    CONNECTING = "connecting"
    RECONCILING = "reconciling"
    STARTING = "starting"
    RESTORING = "restoring"
    READY = "ready"
    STOPPING = "stopping"


class ExecClientKind(enum.StrEnum):
    FLEET = "fleet"  # ours (recovery.binance)
    STOCK = "stock"  # nautilus' own: only to reproduce upstream defects in tests and benchmarks


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    exec_client: ExecClientKind = ExecClientKind.FLEET
    # Reproduces upstream defect 4 in tests; production leaves it None.
    reconciliation_lookback_mins: int | None = None
    timeouts: Mapping[str, float | None] = field(default_factory=dict)
    log_level: str = "INFO"
    limiter: RequestLimiter | None = None


class ReconciliationMismatchError(ReconciliationError):
    """Raised from the reconciliation report handler, inside nautilus' start, so the trader never starts."""


class _StopRequestedError(Exception):
    """SIGTERM/SIGINT during startup: stop cleanly, exit 0."""


class _RiskGate:
    """The hub's TradingGate on the node's RiskEngine."""

    def __init__(self, risk_engine: Any) -> None:
        from nautilus_trader.model.enums import TradingState

        self._engine = risk_engine
        self._states = {
            TradingStateName.ACTIVE: TradingState.ACTIVE,
            TradingStateName.REDUCING: TradingState.REDUCING,
            TradingStateName.HALTED: TradingState.HALTED,
        }

    def set_trading_state(self, state: TradingStateName) -> None:
        self._engine.set_trading_state(self._states[state])


class NodeLifecycle:
    def __init__(
        self, run: NodeRun, options: RunOptions | None = None, *, notifier: Notifier | None = None
    ) -> None:
        self.run_spec = run
        self.options = options or RunOptions()
        self.phases = PhaseReporter(notifier or Notifier())
        self.stage = Stage.LOADING
        self.hub: RecoveryHub | None = None
        self.exit_code: int | None = None
        self._timeouts: Timeouts | None = None
        self._node: Any = None
        self._redis: Any = None
        self._hash: PositionsHash | None = None
        self._registry: Any = None
        self._start_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        self._connected = asyncio.Event()
        self._reconciled = asyncio.Event()
        self._runtime_failure = asyncio.Event()
        self._runtime_reason = ""
        self._summary: cache_view.CacheSummary | None = None
        self._snapshot: VenueSnapshot | None = None
        self._fetch_error: BaseException | None = None
        self._last_venue_positions: list[VenuePosition] | None = None
        self._publications: dict[str, int] = {}
        self._reconcile_fills: list[Any] = []
        self._repaired: list[dict[str, str]] = []
        self._budget_extension = 0.0  # seconds of budget waits the connect and reconcile bounds gave back
        self._failure_reported = False
        self._gate: RequestGate | None = None
        self._budget_reported = False
        self._ready = False
        self._deadline = 0.0
        self._instruments = frozenset(node_instruments(run))
        # Down until the lease the supervisor started this node under is confirmed (None: no lease).
        self._lease = LeaseSettings.from_env(os.environ)
        self._fence: Fence | None = Fence() if self._lease is not None else None
        self._guard: LeaseGuard | None = None

    # ---- the whole run -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # The supervisor's ready deadline runs from the spawn, not from here (imports take a second or two).
        since_spawn = max(0.0, (time.monotonic_ns() - self.phases.started_mono_ns) / 1e9)
        self._deadline = loop.time() + float(self.run_spec.node.ready_timeout) - since_spawn
        self._install_signal_handlers()
        clean = False
        try:
            await self._start()
            self._ready = True
            clean = await self._serve()
            self.exit_code = EXIT_OK if clean else EXIT_FAILED
        except _StopRequestedError:
            log.info("stop requested during startup: stopping without trading")
            self.exit_code = EXIT_OK
        except LeaseNotHeldError as error:
            log.error("%s: not starting (exit %d)", error.message, EXIT_LEASE_LOST)
            self.phases.status(f"lease not held: {error.message}"[:200])
            self.exit_code = EXIT_LEASE_LOST
        except RecoveryError as error:
            self._report_failure(error)
            self.exit_code = EXIT_FATAL if error.fatal else EXIT_FAILED
        finally:
            await self._teardown(save=self._ready and clean)
        return self.exit_code

    async def _start(self) -> None:
        run = self.run_spec
        self._timeouts = timeouts = timeouts_for(run.node, run.redis, run.node.env, self.options.timeouts)
        credentials = self._credentials()
        password = resolve_secret(run.redis.password).reveal() if run.redis.password else None
        endpoint = parse_redis_url(run.redis.url, password)
        await self._connect_redis(endpoint, timeouts.redis)
        await self._confirm_lease(endpoint, timeouts.redis)
        config = build_node_config(
            run,
            credentials=credentials,
            redis=endpoint,
            timeouts=timeouts,
            log_level=self.options.log_level,
            reconciliation_lookback_mins=self.options.reconciliation_lookback_mins,
        )
        node = self._construct(config)
        await self._drop_dangling_indexes(node, timeouts)
        self._prepare(node, timeouts)
        await self._wait_for_the_gate(timeouts)
        await self._run_startup(node, timeouts)

    def _credentials(self) -> Credentials:
        venue = self.run_spec.venue
        if venue.api_key is None or venue.api_secret is None:
            raise SpecError(f"venue {self.run_spec.venue_name} has no api_key/api_secret reference")
        try:
            return Credentials(
                api_key=resolve_secret(venue.api_key), api_secret=resolve_secret(venue.api_secret)
            )
        except SecretUnavailableError as exc:
            raise SpecError(f"venue {self.run_spec.venue_name} credentials: {exc}") from exc

    async def _connect_redis(self, endpoint: Any, timeout_s: float) -> None:
        self._redis = _redis_client(endpoint, timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                await self._redis.ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise RedisUnavailableError(
                f"Redis at {endpoint.host}:{endpoint.port} did not answer: {exc}"
            ) from exc

    async def _confirm_lease(self, endpoint: Any, timeout_s: float) -> None:
        """Under a lease: confirm it holds this node's epoch before anything reads the cache or the venue,
        then keep checking it (its own connection: a busy cache connection must not delay the check)."""
        if self._lease is None or self._fence is None:
            return
        self._guard = LeaseGuard(
            redis=_redis_client(endpoint, timeout_s),
            settings=self._lease,
            fence=self._fence,
            on_lost=self._lease_lost,
            call_timeout=timeout_s,
        )
        judgement = await self._guard.confirm()
        if not self._fence.confirmed:
            raise LeaseNotHeldError(
                f"lease {self._lease.key} epoch {self._lease.epoch}: {judgement.reason}",
                {"verdict": str(judgement.verdict)},
            )
        self._guard.start()

    def _lease_lost(self, reason: str) -> None:
        """Another host may own this trader_id any moment now: halt trading and exit at once. No clean stop:
        it would write the strategies' state and the cache that the new owner now writes."""
        if self._node is not None:
            _RiskGate(self._node.kernel.risk_engine).set_trading_state(TradingStateName.HALTED)
        log.critical(
            "lease lost (%s): trading HALTED at %.3f; exiting %d", reason, time.time(), EXIT_LEASE_LOST
        )
        with contextlib.suppress(Exception):
            self.phases.status(f"lease lost: {reason}"[:200])
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(EXIT_LEASE_LOST)

    # ---- TradingNode(): the cache load ------------------------------------------------------------------

    def _construct(self, config: Any) -> Any:
        from nautilus_trader.live.node import TradingNode

        started = time.perf_counter()
        try:
            node = TradingNode(config=config, loop=asyncio.get_running_loop())
        except Exception as exc:  # the cache or a strategy failed to load: deterministic, so fatal
            raise self._construction_error(config, exc) from exc
        at = self.phases.stamp()
        # nautilus installed its own SIGTERM/SIGINT handlers; ours decide how to stop.
        self._install_signal_handlers()
        from nautilus_trader.model.identifiers import AccountId

        self._summary = cache_view.summarize(node.cache, AccountId(ACCOUNT_ID))
        detail = {**self._summary.detail(), "load_ms": round((time.perf_counter() - started) * 1000, 1)}
        self.phases.phase(CACHE_LOADED, detail, at=at, status="cache loaded")
        return node

    async def _drop_dangling_indexes(self, node: Any, timeouts: Timeouts) -> None:
        """Index entries of orders the cache holds no record of would make nautilus refuse the order when
        reconciliation brings it back from the venue (recovery/cache_indexes.py)."""
        from nautilus_trader.model.identifiers import ClientOrderId

        from recovery.cache_indexes import dangling_order_ids, purge_dangling

        assert self._redis is not None
        cache = node.cache
        dangling = await dangling_order_ids(
            self._redis,
            self.run_spec.trader_id,
            lambda client_order_id: bool(cache.order_exists(ClientOrderId(client_order_id))),
            timeouts.redis,
        )
        purge_dangling(cache, dangling)

    def _construction_error(self, config: Any, exc: Exception) -> RecoveryError:
        error = f"{type(exc).__name__}: {exc}"
        log.error("TradingNode() failed: %s; scanning the cache for the entry that does not load", error)
        try:
            from recovery.cache_scan import find_corrupt_keys

            bad = find_corrupt_keys(
                trader_id=self.run_spec.trader_id, instance_id=config.instance_id, cache_config=config.cache
            )
        except Exception as scan_error:  # the scan is a diagnosis; its own failure must not hide the first
            log.exception("cache scan failed: %s", scan_error)
            bad = {}
        if bad:
            first = next(iter(bad))
            return CacheCorruptError(f"corrupt cache entry {first}: {bad[first]}", keys=bad, error=error)
        return SpecError(f"the node could not be built: {error}", {"error": error})

    # ---- between construction and start ------------------------------------------------------------------

    def _prepare(self, node: Any, timeouts: Timeouts) -> None:
        from nautilus_trader.adapters.binance import (
            BinanceLiveDataClientFactory,
            BinanceLiveExecClientFactory,
        )

        self._node = node
        stop_spinning(node.kernel)  # its waits would take a core from the venue for the whole connect
        gate = _RiskGate(node.kernel.risk_engine)
        gate.set_trading_state(TradingStateName.HALTED)  # nothing trades until recovery says so
        durable = DurableStore(
            redis=self._redis,
            trader_id=self.run_spec.trader_id,
            loaded=node.cache.get,
            timeout_s=timeouts.redis,
        )
        self.hub = RecoveryHub(
            trader_id=self.run_spec.trader_id, durable=durable, gate=gate, phases=self.phases
        )
        for strategy in node.trader.strategies():
            bind = getattr(strategy, "bind_recovery", None)
            if callable(bind):
                self.hub.expect(strategy.id.value)
                bind(self.hub)

        if self.options.exec_client is ExecClientKind.STOCK:
            log.warning("running nautilus' stock Binance exec client: upstream reconciliation defects apply")
            node.add_data_client_factory(CLIENT_NAME, BinanceLiveDataClientFactory)
            node.add_exec_client_factory(CLIENT_NAME, BinanceLiveExecClientFactory)
        else:
            from recovery.binance.factory import (
                ClientRegistry,
                GatedHttpClients,
                make_data_client_factory,
                make_exec_client_factory,
            )
            from recovery.binance.http import RequestGate
            from recovery.fill_window import cache_knows, limit_fill_adjustment

            # nautilus' fill adjustment rewrites cached orders' reports from the venue's trades alone.
            limit_fill_adjustment(
                node.kernel.exec_engine, lambda instrument: cache_knows(node.cache, instrument)
            )
            self._registry = ClientRegistry()
            # Every venue request of the node, nautilus' own included, passes the gate while it recovers.
            self._gate = RequestGate(self._limiter_for(timeouts), fence=self._fence)
            http = GatedHttpClients(self._gate)
            node.add_data_client_factory(CLIENT_NAME, make_data_client_factory(http=http))
            node.add_exec_client_factory(
                CLIENT_NAME,
                make_exec_client_factory(
                    http=http,
                    registry=self._registry,
                    observer=self,
                    scope=sorted(self._instruments),
                    request_timeout=max(1.0, min(10.0, timeouts.reconcile * 0.5)),
                    max_rate_limit_wait=timeouts.reconcile * 0.6,
                ),
            )
        node.build()

        bus = node.kernel.msgbus
        bus.subscribe(topic=f"reports.execution.{CLIENT_NAME}", handler=self._on_mass_status)
        bus.subscribe(topic="events.order.*", handler=self._on_order_event)
        bus.subscribe(topic="events.position.*", handler=self._on_position_event)
        self._hash = PositionsHash(
            redis=self._redis,
            trader_id=self.run_spec.trader_id,
            venue=self.run_spec.venue_name,
            timeout_s=timeouts.redis,
        )
        self._hash.start()
        self._start_watchdog()

    def _limiter_for(self, timeouts: Timeouts) -> RequestLimiter:
        """The injected limiter, else the fleet's budget in Redis for this venue entry's rate group (a local
        share of the venue's limit when the fleet's coordination is off)."""
        if self.options.limiter is not None:
            return self.options.limiter
        coordination = self.run_spec.coordination
        if not coordination.enabled:
            log.info("request budget: local (the fleet's coordination is off)")
            return LocalRequestLimiter(scope_reason="coordination is off")
        from recovery.fleet_limiter import FleetRequestLimiter
        from supervisor import rate_budget

        venue = self.run_spec.venue
        limiter = FleetRequestLimiter(
            redis=self._redis,
            group=rate_budget.rate_group(venue, rate_budget.host_egress()),
            account=rate_budget.account_key(self.run_spec.venue_name, venue),
            recovery_share=coordination.recovery_share,
            call_timeout_s=max(0.05, min(timeouts.redis, RATE_BUDGET_CALL_TIMEOUT_S)),
        )
        log.info("request budget: rate group %s, account %s", limiter.group, limiter.account)
        return limiter

    def _rate_budget_detail(self) -> dict[str, Any]:
        """`{"rate_budget": {...}}` for the one phase of this start that reports it (reconciled, or the
        failure when there is none): which budget the node's recovery requests used, and what they cost."""
        if self._gate is None or self._budget_reported:
            return {}
        self._budget_reported = True
        detail = {
            **self._gate.limiter.budget_detail(),
            "venue": self.run_spec.venue_name,
            "requests": self._gate.requests,
            "weight": self._gate.weight,
        }
        if detail.get("scope") == "local":
            log.warning("recovery used a local request budget: %s", detail.get("reason"))
        return {"rate_budget": detail}

    async def _wait_for_the_gate(self, timeouts: Timeouts) -> None:
        """Queued by the supervisor's reconciliation gate: no venue request before it admits this node. The
        cache is loaded and the watchdog pings meanwhile; the wait does not count against the node's own
        deadline (the supervisor extends its own ready deadline by it too)."""
        from recovery.gate import ENV_GATE_KEY, wait_for_admission

        key = os.environ.get(ENV_GATE_KEY)
        if not key:
            return
        self.phases.status("queued for reconciliation")
        waited = await wait_for_admission(self._redis, key, self._stop_requested, timeouts.redis)
        if self._stop_requested.is_set():
            raise _StopRequestedError
        self._deadline += waited

    # ---- start: connect, reconcile, trader, strategies -----------------------------------------------------

    async def _run_startup(self, node: Any, timeouts: Timeouts) -> None:
        self.stage = Stage.CONNECTING
        self.phases.status("connecting")
        self._start_task = asyncio.get_running_loop().create_task(
            node.kernel.start_async(), name="nautilus.start"
        )
        if self.options.exec_client is ExecClientKind.STOCK:
            self._poll_task = asyncio.get_running_loop().create_task(
                self._poll_connected(), name="node.poll-connected"
            )

        self._ensure_supervisor_waits(timeouts.connect)
        if await self._first_outside_budget_waits(timeouts.connect, connected=self._connected) is None:
            raise StartupTimeoutError("connect", timeouts.connect, self._connection_detail())
        if not self._connected.is_set():
            raise self._start_failure("connect")

        self.stage = Stage.RECONCILING
        self.phases.status("reconciling")
        self._ensure_supervisor_waits(timeouts.reconcile + timeouts.portfolio)
        if await self._first_outside_budget_waits(timeouts.reconcile, reconciled=self._reconciled) is None:
            raise StartupTimeoutError("reconcile", timeouts.reconcile, self._failure_diff())
        if not self._reconciled.is_set():
            raise self._start_failure("reconcile")

        self.stage = Stage.STARTING
        await self._await_trader(timeouts.portfolio)

        self.stage = Stage.RESTORING
        assert self.hub is not None
        self.hub.close_expectations()
        remaining = max(1.0, self._deadline - asyncio.get_running_loop().time() - timeouts.margin)
        outcome_task = asyncio.get_running_loop().create_task(self.hub.wait(), name="node.hub-outcome")
        try:
            if await self._first(remaining, restored=outcome_task) is None:
                raise StartupTimeoutError(
                    "strategies ready", remaining, {"waiting_for": self.hub.waiting_for()}
                )
            outcome = outcome_task.result()
        finally:
            outcome_task.cancel()
        if not outcome.ready:
            error: RecoveryError = (SpecError if outcome.fatal else ReconciliationError)(
                f"strategy {outcome.strategy_id or ''} failed recovery: {outcome.reason}".replace("  ", " "),
                {"strategy": outcome.strategy_id, **dict(outcome.detail)},
            )
            raise error

        self.hub.activate()
        # READY also means the readable positions summary in Redis is current (it is written in the
        # background); a slow Redis delays nothing beyond its bound, and is said.
        if self._hash is not None and not await self._hash.drain(timeouts.redis):
            log.warning("positions summary not written to Redis within %.1fs; READY anyway", timeouts.redis)
        if self._gate is not None:
            self._gate.live()  # live trading keeps the rest of the venue's limit; nothing waits on the budget
        self.stage = Stage.READY
        counts = f"{len(node.cache.positions_open())} positions, {len(node.cache.orders_open())} open orders"
        self.phases.ready(f"ready: {counts}")

    async def _await_trader(self, timeout_s: float) -> None:
        assert self._start_task is not None and self._node is not None
        if not self._start_task.done() and await self._first(timeout_s + 1.0) is None:
            raise StartupTimeoutError("portfolio and trader start", timeout_s)
        if self._start_task.cancelled() or self._start_task.exception() is not None:
            raise self._start_failure("start")
        if not self._node.trader.is_running:
            raise self._start_failure("start")
        if not self._reconciled.is_set():  # cannot happen with nautilus 1.231; fail safe if it ever does
            raise ReconciliationError("the trader started but the node never saw the reconciliation result")

    async def _first_outside_budget_waits(self, timeout_s: float, **events: asyncio.Event) -> str | None:
        """`_first`, except that time spent waiting for the venue's request budget (the fleet's window is
        spent, or the venue said Retry-After) does not count against the bound: the step gets that time
        back, and the supervisor is told to wait as long (up to MAX_BUDGET_WAIT_S in all). A node that
        waits its turn must not fail for it, and then be restarted into the same queue."""
        remaining = timeout_s
        seen = self._budget_waited()
        while True:
            happened = await self._first(remaining, **events)
            if happened is not None:
                return happened
            waited = self._budget_waited() - seen
            seen += waited
            self._budget_extension += waited
            if waited < BUDGET_WAIT_SLACK_S or self._budget_extension > MAX_BUDGET_WAIT_S:
                return None
            log.info(
                "waited %.1fs for the venue's request budget: the step's bound is extended by it", waited
            )
            self._ensure_supervisor_waits(waited)
            remaining = waited

    def _budget_waited(self) -> float:
        if self._gate is None:
            return 0.0
        return float(self._gate.limiter.budget_detail().get("waited_s") or 0.0)

    async def _first(self, timeout_s: float, **events: asyncio.Event | asyncio.Future[Any]) -> str | None:
        """Wait for the first of `events`, the start task ending, or a stop request. The name of what
        happened ("start" for the start task), or None on timeout. A stop request raises."""
        assert self._start_task is not None
        waiters: dict[str, asyncio.Future[Any]] = {}
        owned: list[asyncio.Future[Any]] = []
        for name, thing in events.items():
            if isinstance(thing, asyncio.Event):
                waiter = asyncio.get_running_loop().create_task(thing.wait(), name=f"node.wait[{name}]")
                owned.append(waiter)
                waiters[name] = waiter
            else:
                waiters[name] = thing
        stop = asyncio.get_running_loop().create_task(self._stop_requested.wait(), name="node.wait[stop]")
        owned.append(stop)
        if not self._start_task.done():
            waiters["start"] = self._start_task
        try:
            done, _ = await asyncio.wait(
                [*waiters.values(), stop], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in owned:
                task.cancel()
        if stop in done:
            raise _StopRequestedError
        for name, pending in waiters.items():  # events first: they say more than "start ended"
            if pending in done:
                return name
        return None

    def _start_failure(self, step: str) -> RecoveryError:
        """nautilus' start returned or raised before `step` completed: find out why."""
        assert self._start_task is not None
        exc = (
            self._start_task.exception()
            if self._start_task.done() and not self._start_task.cancelled()
            else None
        )
        if isinstance(exc, RecoveryError):
            return exc
        if self._fetch_error is not None:
            return ReconciliationError(
                f"reconciliation failed: the venue answered with an error: {self._fetch_error}",
                {"step": step, "error": str(self._fetch_error), **self._failure_diff()},
            )
        if exc is not None:
            return ReconciliationError(
                f"{step} failed: {type(exc).__name__}: {exc}", {"step": step, **self._failure_diff()}
            )
        if step == "connect":
            return ReconciliationError("clients did not connect", {"step": step, **self._connection_detail()})
        diff = self._failure_diff()
        agree = all(d["cached_qty"] == d["venue_qty"] for d in diff["diff"])
        why = (
            "the positions agree: nautilus refused an order's history (its ExecEngine errors above name it)"
            if agree and self._last_venue_positions is not None
            else "see its log above"
        )
        return ReconciliationError(
            f"nautilus did not start the trader ({step} failed; {why})", {"step": step, **diff}
        )

    def _ensure_supervisor_waits(self, seconds: float) -> None:
        """If our own bound for the next step ends after the supervisor's ready deadline, extend it, so that
        our timeout fires (and reports) first."""
        assert self._timeouts is not None
        now = asyncio.get_running_loop().time()
        needed = now + seconds + self._timeouts.margin
        if needed > self._deadline:
            self.phases.notifier.extend_timeout(seconds + 2 * self._timeouts.margin)
            self._deadline = needed

    async def _poll_connected(self) -> None:
        """Stock client only (ours reports it): both engines connected means reconciliation starts."""
        kernel = self._node.kernel  # nautilus offers no event for this
        await poll_until(
            lambda: bool(kernel.data_engine.check_connected() and kernel.exec_engine.check_connected()),
            math.inf,
        )
        self._connected.set()

    def _connection_detail(self) -> dict[str, Any]:
        node = self._node
        detail: dict[str, Any] = {
            "data_connected": bool(node.kernel.data_engine.check_connected()),
            "exec_connected": bool(node.kernel.exec_engine.check_connected()),
        }
        return detail

    # ---- our exec client's reports (ReconciliationObserver) ------------------------------------------------

    def reconciliation_started(self) -> None:
        self._connected.set()

    def reconciliation_fetched(self, snapshot: VenueSnapshot) -> None:
        self._snapshot = snapshot
        self._last_venue_positions = snapshot.positions
        if self.stage in (Stage.CONNECTING, Stage.RECONCILING) and self._node is not None:
            # Before nautilus applies the reports: a fill the cache holds on its order but not on its
            # position (a kill between nautilus' two writes) goes to the position, if the venue agrees.
            from recovery.cache_repair import repair_positions

            venue_net = {p.instrument_id: p.signed_qty for p in snapshot.positions}
            self._repaired = repair_positions(
                self._node.kernel.exec_engine, self._node.cache, venue_net, snapshot.fills
            )

    def reconciliation_failed(
        self, error: BaseException, venue_positions: list[VenuePosition] | None
    ) -> None:
        self._fetch_error = error
        if venue_positions is not None:
            self._last_venue_positions = venue_positions

    def resync_failed(self, error: BaseException) -> None:
        self._runtime_failed(f"re-sync with the venue after a user stream reconnect failed: {error}")

    # ---- reconciliation result: the node's own check -------------------------------------------------------

    def _on_mass_status(self, mass_status: Any) -> None:
        """nautilus publishes the startup mass status twice: after applying the reports, then after the
        cached positions the reports did not cover. The second is the result; a later one (listen-key
        re-sync) is checked the same way while trading."""
        key = mass_status.id.value
        self._publications[key] = self._publications.get(key, 0) + 1
        if self.stage in (Stage.CONNECTING, Stage.RECONCILING):  # (stock client: connect seen by polling)
            if self._publications[key] == 1:
                return
            self._check_startup(mass_status)
        elif self.stage is Stage.READY:
            self._check_runtime(mass_status)

    def _check_startup(self, mass_status: Any) -> None:
        at = self.phases.stamp()
        verdict = self._judge(mass_status)
        if verdict.mismatches:
            diff = [m.as_dict() for m in verdict.mismatches]
            text = "; ".join(str(m) for m in verdict.mismatches)
            self.phases.phase(
                RECONCILE_FAILED,
                {
                    **verdict.detail,
                    "mismatches": diff,
                    "reason": "cache differs from the venue after reconciliation",
                    **self._rate_budget_detail(),
                },
                at=at,
                status=f"reconciliation failed: {text}"[:200],
            )
            self._failure_reported = True
            # Raised inside nautilus' start (from its report publication): the trader never starts.
            raise ReconciliationMismatchError(
                f"after reconciliation the cache differs from the venue: {text}", {"mismatches": diff}
            )
        assert self.hub is not None
        self.hub.reconciliation[self.run_spec.venue_name] = verdict.reconciliation
        self.hub.lost_cache = verdict.lost_cache
        self.phases.phase(
            RECONCILED, {**verdict.detail, **self._rate_budget_detail()}, at=at, status="reconciled"
        )
        self._sync_positions_hash()
        self._reconciled.set()

    def _check_runtime(self, mass_status: Any) -> None:
        verdict = self._judge(mass_status)
        self._sync_positions_hash()
        if verdict.mismatches:
            text = "; ".join(str(m) for m in verdict.mismatches)
            self._runtime_failed(f"cache differs from the venue after a re-sync: {text}")

    def _judge(self, mass_status: Any) -> Judgement:
        from nautilus_trader.model.identifiers import AccountId

        assert self._summary is not None
        if self._snapshot is not None:
            positions, open_orders = self._snapshot.positions, self._snapshot.open_orders
        else:
            positions, open_orders = venue_view_from_reports(mass_status, self._in_scope)
            self._last_venue_positions = positions
        return judge(
            venue_name=self.run_spec.venue_name,
            cache=self._node.cache,
            account_id=AccountId(ACCOUNT_ID),
            summary=self._summary,
            positions=positions,
            open_orders=open_orders,
            in_scope=self._in_scope,
            fills=self._reconcile_fills,
            snapshot=self._snapshot,
            repaired=self._repaired,
        )

    def _in_scope(self, instrument: str) -> bool:
        """This node's instruments, and whatever its cache held (no strategy declares: everything)."""
        cached = self._summary.net if self._summary is not None else {}
        return not self._instruments or instrument in self._instruments or instrument in cached

    def _on_order_event(self, event: Any) -> None:
        if (
            self.stage in (Stage.CONNECTING, Stage.RECONCILING)
            and type(event).__name__ == "OrderFilled"
            and event.reconciliation
        ):
            self._reconcile_fills.append(event)

    # ---- positions hash ------------------------------------------------------------------------------------

    def _sync_positions_hash(self) -> None:
        if self._hash is None:
            return
        unrealized = {p.instrument_id: p.unrealized_pnl for p in (self._last_venue_positions or [])}
        parts = cache_view.position_parts(self._node.cache, unrealized=unrealized)
        records = [aggregate(i, parts) for i in sorted({p.instrument_id for p in parts})]
        self._hash.sync(r for r in records if r is not None)

    def _on_position_event(self, event: Any) -> None:
        if self._hash is None or self.stage in (Stage.LOADING, Stage.CONNECTING, Stage.RECONCILING):
            return  # reconciliation's own events: the full sync after it covers them
        instrument = str(event.instrument_id)
        unrealized = None
        if getattr(event, "unrealized_pnl", None) is not None:
            unrealized = {instrument: Decimal(str(event.unrealized_pnl.as_decimal()))}
        parts = cache_view.position_parts(
            self._node.cache, instrument_id=event.instrument_id, unrealized=unrealized
        )
        self._hash.update(instrument, aggregate(instrument, parts))

    # ---- while trading -------------------------------------------------------------------------------------

    async def _serve(self) -> bool:
        """Until a stop request (True: clean) or a failure while trading (False; a strategy's fatal failure
        raises SpecError: X_FATAL and exit 78)."""
        assert self.hub is not None
        loop = asyncio.get_running_loop()
        stop = loop.create_task(self._stop_requested.wait(), name="node.serve[stop]")
        failure = loop.create_task(self._runtime_failure.wait(), name="node.serve[failure]")
        strategy = loop.create_task(self.hub.wait_failure(), name="node.serve[strategy]")
        try:
            done, _ = await asyncio.wait([stop, failure, strategy], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, failure, strategy):
                task.cancel()
        if stop in done:
            return True
        if strategy in done:
            outcome = strategy.result()
            self._runtime_reason = f"strategy {outcome.strategy_id} failed while trading: {outcome.reason}"
            if outcome.fatal:
                raise SpecError(
                    self._runtime_reason, {"strategy": outcome.strategy_id, **dict(outcome.detail)}
                )
        log.error("stopping: %s", self._runtime_reason)
        self.phases.status(f"failed while trading: {self._runtime_reason}"[:200])
        return False

    def _runtime_failed(self, reason: str) -> None:
        log.error("%s; trading halted", reason)
        if self._node is not None:
            _RiskGate(self._node.kernel.risk_engine).set_trading_state(TradingStateName.HALTED)
        self._runtime_reason = reason
        self._runtime_failure.set()

    # ---- failure, signals, watchdog, teardown --------------------------------------------------------------

    def _report_failure(self, error: RecoveryError) -> None:
        detail = {"reason": error.message, "stage": self.stage.value, **error.detail}
        if not error.fatal and not self._failure_reported:
            detail.update(self._rate_budget_detail())
        log.error("recovery failed (%s): %s %s", self.stage.value, error.message, _json(error.detail))
        if error.fatal:
            self.phases.fatal(error.message, detail)
        elif not self._failure_reported:
            self.phases.phase(RECOVERY_FAILED, detail, status=f"recovery failed: {error.message}"[:200])
        self._failure_reported = True

    def _failure_diff(self) -> dict[str, Any]:
        """Cached versus venue quantities as far as known when recovery failed (venue "unknown" when the
        venue could not be asked)."""
        cached = self._summary.net if self._summary is not None else {}
        venue = (
            {p.instrument_id: p.signed_qty for p in self._last_venue_positions}
            if self._last_venue_positions is not None
            else None
        )
        instruments = sorted(set(cached) | set(venue or {}))
        return {
            "diff": [
                {
                    "instrument": i,
                    "cached_qty": str(cached.get(i, Decimal(0))),
                    "venue_qty": str(venue.get(i, Decimal(0))) if venue is not None else "unknown",
                }
                for i in instruments
            ]
        }

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self._stop_requested.is_set():
            log.info("%s received: stopping", sig.name)
            self.phases.notifier.stopping()
        self._stop_requested.set()

    def _start_watchdog(self) -> None:
        interval = self.phases.notifier.watchdog_interval
        if interval is None:
            return

        async def ping() -> None:
            while True:
                self.phases.notifier.watchdog()
                await asyncio.sleep(interval)

        self._watchdog_task = asyncio.get_running_loop().create_task(ping(), name="node.watchdog")

    async def _teardown(self, *, save: bool) -> None:
        self.stage = Stage.STOPPING
        node = self._node
        for task in (self._start_task, self._poll_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if node is not None:
            grace = float(self.run_spec.node.stop.grace)
            try:
                await asyncio.wait_for(node.stop_async(), timeout=max(1.0, grace * 0.7))
            except TimeoutError:
                log.error("nautilus did not stop within %.1fs", grace * 0.7)
            except Exception:
                log.exception("nautilus stop failed")
            if save:
                # Only after a recovery that reached READY: a failed start must never overwrite good state.
                node.trader.save()
            if self._hash is not None:
                await self._hash.aclose()
            node.kernel.dispose()
            if node.kernel.executor is not None:
                node.kernel.executor.shutdown(wait=False, cancel_futures=True)
        elif self._hash is not None:
            await self._hash.aclose()
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog_task
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        if self._guard is not None:
            await self._guard.aclose()
        self.phases.notifier.close()


def _redis_client(endpoint: Any, timeout_s: float) -> Any:
    import redis.asyncio as aioredis

    return aioredis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        db=endpoint.db,
        username=endpoint.username,
        password=endpoint.password,
        ssl=endpoint.ssl,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


def _json(detail: Mapping[str, Any]) -> str:
    import json

    return json.dumps(detail, default=str, separators=(",", ":")) if detail else ""
