"""When venue audits run, and where their results go.

- At crash detection (the `detected` phase): a snapshot of the venue's positions and balances for the node's
  account, if the rate group's budget has room at that moment (it is only useful at that moment).
- After READY: the first audit (`audited` phase when it matches), with the balances, so that what changed at
  the venue while the node was down goes into its recovery report next to the node's own explanation.
- Then every `audit.interval`, jittered by +-10 % so that the nodes of a fleet do not audit in step, while the
  node stays READY. A node that leaves READY is "not audited" until its next audit after READY.

Recovery comes first: an audit waits while nodes of its rate group are queued at the reconciliation gate or
recover (from their start to READY: their warm-up takes weight from the same budget). Then it takes its
request weight from the rate group's shared budget (deferred to the next window when the budget has no
room). A difference is confirmed by a second look after `confirm_after_s` (a fill can reach the venue a
moment before it reaches the node) before it is reported as a mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from functools import partial
from typing import Any, Protocol

from supervisor.audit.budget import Grant, observe_weight, take_weight
from supervisor.audit.compare import compare, downtime_changes
from supervisor.audit.holdings import read_holdings
from supervisor.audit.venue_view import (
    VenueAuditError,
    VenueRequest,
    VenueView,
    afetch_venue_view,
    close_clients,
    venue_symbol,
)
from supervisor.clock import Clock
from supervisor.config.resolve import instruments_of
from supervisor.config.schema import FleetSpec, NodeSpec
from supervisor.events import READY_RESULT, AuditResult, NodeStatus, PhaseMark, RecoveryReport
from supervisor.rate_budget import rate_group
from supervisor.recovery_tracker import DETECTED
from supervisor.secrets import SecretUnavailableError, resolve_secret
from supervisor.states import NodeState

log = logging.getLogger(__name__)

AUDITED = "audited"
JITTER = 0.1
CONFIRM_AFTER_S = 2.0
ADOPTED_GRACE_S = 2.0  # before auditing a READY node whose recovery report this daemon did not see
# A budget that keeps saying "not now" (the venue holds the group back for minutes) skips the round.
MAX_DEFERRAL_S = 300.0
# While nodes of the group reconcile, look again this often (the gate itself looks every second).
BUSY_POLL_S = 1.0
RESTORED_PHASE = "orders_restored"

Fetch = Callable[[VenueRequest], Awaitable[VenueView]]


class AuditObserver(Protocol):
    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None: ...

    def audit_result(
        self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None
    ) -> None: ...


class AuditSkipped(Exception):
    """No request budget for the audit (Redis does not answer, or the group stays held back)."""


def next_delay(interval: float, draw: float) -> float:
    """The wait before the next audit: `interval` +-10 %, `draw` uniform in [0, 1)."""
    return interval * (1.0 - JITTER + 2 * JITTER * draw)


def audit_scope(node: NodeSpec, report: RecoveryReport | None) -> tuple[str, ...]:
    """The instruments audited: the node's own, and those its last recovery reconciled positions on."""
    scope = dict.fromkeys(instruments_of(node))
    for phase in report.phases if report else ():
        for position in phase.detail.get("positions", []) if phase.name == "reconciled" else []:
            if isinstance(position, dict) and isinstance(position.get("instrument"), str):
                scope[position["instrument"]] = None
    return tuple(scope)


@dataclasses.dataclass
class _NodeAudit:
    state: str = (
        "-"  # what `fleet status` shows: -, pending, deferred, running, audited, mismatch, error, skipped
    )
    last: AuditResult | None = None
    last_ok_at: float | None = None
    report: RecoveryReport | None = None
    loop: asyncio.Task[None] | None = None
    snapshot: asyncio.Task[dict[str, VenueView]] | None = None


class AuditScheduler:
    """Runs the fleet's venue audits. Feed it the daemon's events (`node_status`, `recovery_phase`,
    `recovery_report`, `node_removed`); run `run()` as a service task; cancel it to stop every audit."""

    def __init__(
        self,
        *,
        fleet: Callable[[], FleetSpec],
        redis: Callable[[], Any],
        call_timeout_s: float,
        observer: AuditObserver,
        status_of: Callable[[str], NodeStatus | None],
        env_of: Callable[[NodeSpec], Mapping[str, str]],
        host: str,
        clock: Clock,
        fetch: Fetch = afetch_venue_view,
        draw: Callable[[], float] = random.random,
        confirm_after_s: float = CONFIRM_AFTER_S,
        reconciling: Callable[[str], bool] = lambda group: False,
    ) -> None:
        self._fleet = fleet
        self._redis = redis
        self._timeout = call_timeout_s
        self._observer = observer
        self._status_of = status_of
        self._env_of = env_of
        self._host = host
        self._clock = clock
        self._fetch = fetch
        self._draw = draw
        self._confirm_after_s = confirm_after_s
        self._reconciling = reconciling
        self._nodes: dict[str, _NodeAudit] = {}
        self._recovering: set[str] = set()  # nodes between their start and READY
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    await asyncio.Event().wait()
                finally:
                    self._group = None
        finally:
            # The venue's keep-alive connections; a request still running in its thread keeps its client.
            await asyncio.shield(asyncio.to_thread(close_clients))

    # ---- what the daemon tells us ---------------------------------------------------------------------

    def node_status(self, status: NodeStatus) -> None:
        if status.state in (NodeState.STARTING, NodeState.RECOVERING):
            self._recovering.add(status.name)
        else:
            self._recovering.discard(status.name)
        audit = self._nodes.get(status.name)
        if audit is not None and status.state is not NodeState.READY:
            _cancel(audit.loop)
            audit.loop = None
            audit.state = "-"
        elif status.state is NodeState.READY and (audit is None or audit.loop is None):
            self._audit_without_report(status.name)

    def _audit_without_report(self, name: str) -> None:
        """A node READY without a recovery report this daemon saw (adopted from an earlier daemon): audited
        on the interval from now on. A recovery report arriving meanwhile replaces this loop."""
        if self._auditable(name) is None or self._group is None:
            return
        audit = self._nodes.setdefault(name, _NodeAudit())
        audit.state = "pending"
        audit.loop = self._group.create_task(
            _guarded(partial(self._loop, name, None), name, None), name=f"audit[{name}]"
        )

    def recovery_phase(self, status: NodeStatus, phase: PhaseMark) -> None:
        node = self._auditable(status.name)
        if phase.name != DETECTED or node is None or self._group is None:
            return
        audit = self._nodes.setdefault(node.name, _NodeAudit())
        _cancel(audit.snapshot)
        audit.snapshot = self._group.create_task(
            _guarded(partial(self._snapshot, node), node.name, {}), name=f"audit[{node.name}].at-detection"
        )

    def recovery_report(self, report: RecoveryReport) -> None:
        node = self._auditable(report.node)
        if report.result != READY_RESULT or node is None or self._group is None:
            return
        audit = self._nodes.setdefault(node.name, _NodeAudit())
        _cancel(audit.loop)
        audit.report = report
        audit.state = "pending"
        audit.loop = self._group.create_task(
            _guarded(partial(self._loop, node.name, report), node.name, None), name=f"audit[{node.name}]"
        )

    def node_removed(self, name: str) -> None:
        self._recovering.discard(name)
        audit = self._nodes.pop(name, None)
        if audit is not None:
            _cancel(audit.loop)
            _cancel(audit.snapshot)

    def status_of(self, name: str) -> dict[str, Any]:
        """What `fleet status` shows in its AUDIT column."""
        audit = self._nodes.get(name)
        node = self._auditable(name)
        if node is None:
            return {"state": "off"}
        if audit is None:
            return {"state": "-"}
        last = audit.last
        return {
            "state": audit.state,
            "at": last.at if last else None,
            "last_ok_at": audit.last_ok_at,
            "differences": len(last.differences) if last else 0,
            "error": last.error if last else "",
        }

    # ---- the audits -----------------------------------------------------------------------------------

    def _auditable(self, name: str) -> NodeSpec | None:
        fleet = self._fleet()
        if not fleet.audit.enabled:
            return None
        try:
            node = fleet.node(name)
        except KeyError:
            return None
        venues = [fleet.venues.get(v) for v in node.venues]
        if node.strategies is None or not venues or any(v is None or v.api_key is None for v in venues):
            return None
        return node

    async def _loop(self, name: str, report: RecoveryReport | None) -> None:
        trigger = "ready" if report is not None else "adopted"
        if report is None:
            # The recovery report of a node that has just recovered follows its READY status closely.
            await self._clock.sleep(ADOPTED_GRACE_S)
        while True:
            node = self._auditable(name)
            if node is None:
                return
            audit = self._nodes.setdefault(name, _NodeAudit())
            first = trigger == "ready"
            before = await self._snapshot_result(audit) if first else None
            result, views = await self._audit(node, audit, trigger=trigger, balances=bool(before))
            audit.last = result
            audit.state = {"matched": "audited"}.get(result.result, result.result)
            if result.result == "matched":
                audit.last_ok_at = result.at
            amended = self._amend(report, result, before, views) if first and report is not None else None
            status = self._status_of(name)
            if status is not None:
                if amended is not None and result.result == "matched":
                    self._observer.recovery_phase(status, amended.phases[-1])
                self._observer.audit_result(status, result, amended)
            trigger = "interval"
            await self._clock.sleep(next_delay(self._fleet().audit.interval, self._draw()))

    async def _snapshot_result(self, audit: _NodeAudit) -> dict[str, VenueView] | None:
        task, audit.snapshot = audit.snapshot, None
        if task is None:
            return None
        # wait() does not pass our own cancellation into the snapshot's task, nor its end into us.
        await asyncio.wait([task])
        return None if task.cancelled() else task.result()

    async def _snapshot(self, node: NodeSpec) -> dict[str, VenueView]:
        """The venue's positions and balances at crash detection; what could not be read is left out."""
        views: dict[str, VenueView] = {}
        for venue_name in node.venues:
            try:
                request = self._request(
                    node, venue_name, audit_scope(node, None), orders=False, balances=True
                )
                grant = await take_weight(
                    self._redis(), self._group_of(venue_name), request.weight(), timeout_s=self._timeout
                )
                if grant.wait_ms:
                    log.info("node %s: no request budget for the audit at detection; skipped", node.name)
                    continue
                views[venue_name] = await self._fetch(request)
            except (VenueAuditError, SecretUnavailableError, OSError, TimeoutError) as exc:
                log.warning("node %s: venue snapshot at detection failed: %s", node.name, exc)
            except Exception as exc:  # a Redis error: the snapshot is a nicety, never a failure
                log.warning("node %s: venue snapshot at detection failed: %r", node.name, exc)
        return views

    async def _audit(
        self, node: NodeSpec, audit: _NodeAudit, *, trigger: str, balances: bool
    ) -> tuple[AuditResult, dict[str, VenueView]]:
        started = time.monotonic()
        weight = 0
        views: dict[str, VenueView] = {}
        differences: list[dict[str, Any]] = []
        result, error = "matched", ""
        try:
            for attempt in range(2):
                if attempt:
                    await self._clock.sleep(self._confirm_after_s)  # a fill may be on its way to the node
                differences = []
                for venue_name in node.venues:
                    diff, view, spent = await self._audit_venue(node, audit, venue_name, balances=balances)
                    differences.extend(diff)
                    views[venue_name] = view
                    weight += spent
                if not differences:
                    break
            if differences:
                result = "mismatch"
                log.error(
                    "node %s: the venue audit found %d difference(s): %s",
                    node.name,
                    len(differences),
                    differences,
                    extra={"node": node.name},
                )
        except AuditSkipped as exc:
            result, error = "skipped", str(exc)
        except (VenueAuditError, SecretUnavailableError, OSError, TimeoutError) as exc:
            result, error = "error", str(exc) or type(exc).__name__
        except Exception as exc:  # the Redis client's errors: not ours to know by type
            if isinstance(exc, asyncio.CancelledError):
                raise
            result, error = "error", f"{type(exc).__name__}: {exc}"
        if error:
            log.warning("node %s: venue audit %s: %s", node.name, result, error, extra={"node": node.name})
        return (
            AuditResult(
                node=node.name,
                trader_id=node.trader_id,
                venues=tuple(node.venues),
                result=result,
                trigger=trigger,
                at=self._clock.time(),
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                differences=tuple(differences),
                error=error,
                weight=weight,
            ),
            views,
        )

    async def _audit_venue(
        self, node: NodeSpec, audit: _NodeAudit, venue_name: str, *, balances: bool
    ) -> tuple[list[dict[str, Any]], VenueView, int]:
        redis = self._redis()
        holdings = await read_holdings(
            redis,
            trader_id=node.trader_id,
            venue=venue_name,
            instruments=audit_scope(node, audit.report),
            timeout_s=self._timeout,
        )
        scope = tuple(dict.fromkeys((*audit_scope(node, audit.report), *holdings.positions)))
        request = self._request(node, venue_name, scope, orders=True, balances=balances)
        group = self._group_of(venue_name)
        grant = await self._admit(audit, group, request.weight())
        audit.state = "running"
        view = await self._fetch(request)
        if view.used_weight is not None:
            with contextlib.suppress(Exception):
                await observe_weight(redis, group, view.used_weight, grant, timeout_s=self._timeout)
        return compare(venue_name, holdings, view, scope), view, request.weight()

    async def _admit(self, audit: _NodeAudit, group: str, weight: int) -> Grant:
        """Wait until no node of the group reconciles, then until the group's budget takes `weight` (the next
        window, a venue pause), up to a limit."""
        while self._reconciling(group) or self._recovering_in(group):
            audit.state = "deferred"
            await self._clock.sleep(BUSY_POLL_S * (1.0 + self._draw()))
        waited = 0.0
        while True:
            try:
                grant = await take_weight(self._redis(), group, weight, timeout_s=self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise AuditSkipped(f"request budget unavailable: {type(exc).__name__}: {exc}") from None
            if not grant.wait_ms:
                return grant
            delay = grant.wait_ms / 1000 + 0.25 * self._draw()
            if waited + delay > MAX_DEFERRAL_S:
                raise AuditSkipped(f"no request budget in rate group {group} for {MAX_DEFERRAL_S:g}s")
            audit.state = "deferred"
            await self._clock.sleep(delay)
            waited += delay

    def _request(
        self, node: NodeSpec, venue_name: str, scope: tuple[str, ...], *, orders: bool, balances: bool
    ) -> VenueRequest:
        venue = self._fleet().venues[venue_name]
        assert venue.api_key is not None and venue.api_secret is not None
        env = dict(self._env_of(node))
        return VenueRequest(
            base_url=venue.base_url_http,
            testnet=venue.testnet,
            api_key=resolve_secret(venue.api_key, env),
            api_secret=resolve_secret(venue.api_secret, env),
            symbols=tuple(dict.fromkeys(venue_symbol(i) for i in scope)),
            orders=orders,
            balances=balances,
        )

    def _recovering_in(self, group: str) -> bool:
        fleet = self._fleet()
        for name in self._recovering:
            with contextlib.suppress(KeyError):
                if any(self._group_of(v) == group for v in fleet.node(name).venues if v in fleet.venues):
                    return True
        return False

    def _group_of(self, venue_name: str) -> str:
        return rate_group(self._fleet().venues[venue_name], self._host)

    def _amend(
        self,
        report: RecoveryReport,
        result: AuditResult,
        before: dict[str, VenueView] | None,
        views: dict[str, VenueView],
    ) -> RecoveryReport:
        """The recovery report with the first audit after READY: an `audited` phase when it matched, the
        audit's result, and what changed at the venue while the node was down."""
        phases = report.phases
        if result.result == "matched":
            mono = time.monotonic_ns()
            detected = next((p for p in report.phases if p.name == DETECTED), None)
            since = round((mono - detected.mono_ns) / 1e6, 3) if detected else None
            detail = {"weight": result.weight, "duration_ms": result.duration_ms}
            phases = (
                *phases,
                PhaseMark(
                    name=AUDITED,
                    epoch_ns=time.time_ns(),
                    mono_ns=mono,
                    ms_since_detection=since,
                    detail=detail,
                ),
            )
        downtime = None
        if before:
            node_balances = node_balance_explanation(report)
            scope = audit_scope(self._fleet().node(report.node), report)
            downtime = tuple(
                downtime_changes(name, before[name], views[name], scope, node_balances)
                for name in report.venues
                if name in before and name in views
            )
        return dataclasses.replace(report, phases=phases, audit=result.to_json(), downtime=downtime)


def node_balance_explanation(report: RecoveryReport) -> list[dict[str, Any]]:
    """The node's own explanation of its balance change, per venue and currency: the `balances` of its
    `orders_restored` phase (once per node, or once per strategy under `strategies`; the first one wins)."""
    lines: dict[tuple[object, object], dict[str, Any]] = {}
    for phase in report.phases:
        if phase.name != RESTORED_PHASE:
            continue
        sources = [phase.detail, *(s for s in (phase.detail.get("strategies") or {}).values())]
        for source in sources:
            entries = source.get("balances") if isinstance(source, dict) else None
            for line in entries if isinstance(entries, list) else []:
                if isinstance(line, dict):
                    lines.setdefault((line.get("venue"), line.get("currency")), line)
    return list(lines.values())


async def _guarded[T](work: Callable[[], Coroutine[Any, Any, T]], node: str, fallback: T) -> T:
    """A bug in one node's audit must not end the audit task group (and with it the daemon's services). The
    work is made only once the task runs: a task cancelled before that leaves no coroutine never awaited."""
    try:
        return await work()
    except Exception:
        log.critical("node %s: the venue audit failed unexpectedly; its audits stop", node, exc_info=True)
        return fallback


def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
