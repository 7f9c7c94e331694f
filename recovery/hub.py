"""The object strategies talk to during recovery: the node's side of the contract with `RecoverableStrategy`.

The node (recovery.lifecycle) creates one hub per process, fills in what reconciliation found, and calls
`strategy.bind_recovery(hub)` on every strategy that has that method, before the node starts. A strategy then
reports its progress here; the hub turns the per-strategy progress into the node's phases (`state_restored`,
`orders_restored`, `warmed`: each sent once, when every bound strategy has reached it, in that order), moves
the RiskEngine's trading state (HALTED from the start, REDUCING on request, ACTIVE only when every strategy is
ready) and tells the node when to report READY or to give up.

Nautilus runs timer callbacks on another thread: every public method may be called from any thread and is
carried out on the node's event loop. `durable` methods are coroutines and must be awaited on that loop.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from recovery.durable import DurableStore, DurableWriteError
from recovery.venue import VenueOpenOrder, VenuePosition, VenueReconciliation

__all__ = [
    "PHASES",
    "DurableStore",
    "DurableWriteError",
    "HubOutcome",
    "PhaseSink",
    "RecoveryHub",
    "TradingGate",
    "TradingStateName",
    "VenueOpenOrder",
    "VenuePosition",
    "VenueReconciliation",
]

log = logging.getLogger(__name__)

STATE_RESTORED = "state_restored"
ORDERS_RESTORED = "orders_restored"
WARMED = "warmed"
# The order the node reports them in, whatever order strategies reach them.
PHASES = (STATE_RESTORED, ORDERS_RESTORED, WARMED)


class TradingStateName(enum.StrEnum):
    """nautilus' TradingState names (the RiskEngine's gate)."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class TradingGate(Protocol):
    """Sets the node's RiskEngine trading state (the lifecycle wraps `risk_engine.set_trading_state`)."""

    def set_trading_state(self, state: TradingStateName) -> None: ...


class PhaseSink(Protocol):
    """Reports a node-level phase (timestamped when called) to the supervisor."""

    def phase(self, name: str, detail: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class HubOutcome:
    """How recovery ended for the strategies: all ready, or one failed."""

    ready: bool
    reason: str = ""
    strategy_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    fatal: bool = False


@dataclass
class _Strategy:
    attached: bool = False
    phases: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    wants_reducing: bool = False
    ready: bool = False


class RecoveryHub:
    """One per node. Strategy-facing methods: `attach`, `strategy_phase`, `request_trading_state`,
    `strategy_ready`, `strategy_failed`; attributes `trader_id`, `reconciliation`, `lost_cache`, `durable`."""

    def __init__(
        self,
        *,
        trader_id: str,
        durable: DurableStore,
        gate: TradingGate,
        phases: PhaseSink,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.trader_id = trader_id
        self.durable = durable
        # Filled in by the node before any strategy's on_start runs.
        self.reconciliation: dict[str, VenueReconciliation] = {}
        self.lost_cache = False
        self._gate = gate
        self._phases = phases
        self._loop = loop or asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._strategies: dict[str, _Strategy] = {}
        self._reported: list[str] = []  # node-level phases sent so far
        self._state = TradingStateName.HALTED
        self._outcome: HubOutcome | None = None
        self._done = asyncio.Event()
        self._failure: HubOutcome | None = None
        self._failed = asyncio.Event()
        self._bound = False

    # ---- node side -----------------------------------------------------------------------------------

    def expect(self, strategy_id: str) -> None:
        """A strategy was bound: READY waits for it."""
        if self._bound:
            raise RuntimeError("expect() after the node closed the set of strategies")
        self._strategies.setdefault(strategy_id, _Strategy())

    def close_expectations(self) -> None:
        """No more strategies will be bound. With none, the phases are reached at once."""
        self._bound = True
        if not self._strategies:
            for name in PHASES:
                self._report(name, {"strategies": {}})
            self._finish(HubOutcome(ready=True))
            return
        self._report_reached()
        if all(e.ready for e in self._strategies.values()):
            self._finish(HubOutcome(ready=True))

    @property
    def expected(self) -> tuple[str, ...]:
        return tuple(self._strategies)

    @property
    def trading_state(self) -> TradingStateName:
        return self._state

    @property
    def outcome(self) -> HubOutcome | None:
        return self._outcome

    async def wait(self) -> HubOutcome:
        """Until every strategy is ready or one failed (or the node failed recovery itself)."""
        await self._done.wait()
        assert self._outcome is not None
        return self._outcome

    async def wait_failure(self) -> HubOutcome:
        """Until a strategy (or the node) fails, also after READY: the node then stops and exits non-zero."""
        await self._failed.wait()
        assert self._failure is not None
        return self._failure

    def waiting_for(self) -> dict[str, str]:
        """For a timeout report: each strategy not ready yet and the last phase it reached."""
        pending: dict[str, str] = {}
        for sid, entry in self._strategies.items():
            if not entry.ready:
                reached = [name for name in PHASES if name in entry.phases]
                pending[sid] = reached[-1] if reached else ("attached" if entry.attached else "not started")
        return pending

    def fail(self, reason: str, detail: Mapping[str, Any] | None = None, *, fatal: bool = False) -> None:
        """The node itself gave up (timeout, post-check): strategies can no longer make it ready."""
        self._call(self._fail, None, reason, dict(detail or {}), fatal)

    def activate(self) -> None:
        """The node decided to trade: ACTIVE. Only after every strategy reported ready."""
        if self._outcome is None or not self._outcome.ready:
            raise RuntimeError("activate() before every strategy is ready")
        self._set_state(TradingStateName.ACTIVE)

    # ---- strategy side (the contract) ------------------------------------------------------------------

    def attach(self, strategy_id: str) -> None:
        """Called by RecoverableStrategy.on_start."""
        self._call(self._attach, strategy_id)

    def strategy_phase(self, strategy_id: str, phase: str, detail: Mapping[str, Any]) -> None:
        """phase in PHASES; the node-level phase goes out once every strategy reached it."""
        self._call(self._strategy_phase, strategy_id, phase, dict(detail))

    def request_trading_state(self, strategy_id: str, state: str) -> None:
        """ "REDUCING" while placing protective orders, "HALTED" when done with them. Never ACTIVE: the node
        goes ACTIVE by itself when every strategy is ready."""
        self._call(self._request_trading_state, strategy_id, state)

    def strategy_ready(self, strategy_id: str) -> None:
        self._call(self._strategy_ready, strategy_id)

    def strategy_failed(
        self, strategy_id: str, reason: str, detail: Mapping[str, Any], *, fatal: bool
    ) -> None:
        """No READY; the node stops and exits non-zero (78 with X_FATAL when `fatal`)."""
        self._call(self._fail, strategy_id, reason, dict(detail), fatal)

    # ---- on the loop --------------------------------------------------------------------------------

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _entry(self, strategy_id: str) -> _Strategy | None:
        entry = self._strategies.get(strategy_id)
        if entry is None:
            log.error("recovery hub: strategy %s was not bound to this node; ignored", strategy_id)
        return entry

    def _attach(self, strategy_id: str) -> None:
        entry = self._entry(strategy_id)
        if entry is not None:
            entry.attached = True

    def _strategy_phase(self, strategy_id: str, phase: str, detail: dict[str, Any]) -> None:
        if phase not in PHASES:
            log.error("recovery hub: %s reported unknown phase %r; ignored", strategy_id, phase)
            return
        entry = self._entry(strategy_id)
        if entry is None or self._outcome is not None:
            return
        if phase in entry.phases:
            log.warning("recovery hub: %s reported %s twice; keeping the first", strategy_id, phase)
            return
        entry.phases[phase] = detail
        self._report_reached()

    def _request_trading_state(self, strategy_id: str, state: str) -> None:
        entry = self._entry(strategy_id)
        if entry is None:
            return
        if self._outcome is not None:
            log.warning("recovery hub: %s asked for %s after recovery ended; ignored", strategy_id, state)
            return
        if state == TradingStateName.REDUCING:
            entry.wants_reducing = True
        elif state == TradingStateName.HALTED:
            entry.wants_reducing = False
        else:
            log.error("recovery hub: %s asked for trading state %r; only REDUCING/HALTED", strategy_id, state)
            return
        wanted = (
            TradingStateName.REDUCING
            if any(e.wants_reducing and not e.ready for e in self._strategies.values())
            else TradingStateName.HALTED
        )
        self._set_state(wanted)

    def _strategy_ready(self, strategy_id: str) -> None:
        entry = self._entry(strategy_id)
        if entry is None or self._outcome is not None:
            return
        # Ready implies every phase; a strategy that skipped one reached it now.
        for name in PHASES:
            entry.phases.setdefault(name, {})
        entry.ready = True
        entry.wants_reducing = False
        self._report_reached()
        if self._bound and all(e.ready for e in self._strategies.values()):
            self._finish(HubOutcome(ready=True))

    def _fail(self, strategy_id: str | None, reason: str, detail: dict[str, Any], fatal: bool) -> None:
        if self._failure is not None:
            log.warning(
                "recovery hub: further failure (%s: %s) after the first; not reported", strategy_id, reason
            )
            return  # the first failure is the one reported
        if self._outcome is not None and self._outcome.ready:
            log.error("recovery hub: %s failed after recovery ended: %s", strategy_id, reason)
        self._set_state(TradingStateName.HALTED)
        failure = HubOutcome(ready=False, reason=reason, strategy_id=strategy_id, detail=detail, fatal=fatal)
        self._failure = failure
        self._failed.set()
        self._finish(failure)

    def _report_reached(self) -> None:
        """Send each node-level phase, in order, once every strategy has reached it."""
        for name in PHASES:
            if name in self._reported:
                continue
            if not self._bound or not all(name in e.phases for e in self._strategies.values()):
                return
            self._report(name, _merge(name, self._strategies))

    def _report(self, name: str, detail: Mapping[str, Any]) -> None:
        self._reported.append(name)
        self._phases.phase(name, detail)

    def _set_state(self, state: TradingStateName) -> None:
        if state is self._state:
            return
        log.info("recovery hub: trading state %s -> %s", self._state, state)
        self._state = state
        self._gate.set_trading_state(state)

    def _finish(self, outcome: HubOutcome) -> None:
        if self._outcome is None:
            self._outcome = outcome
            self._done.set()


def _merge(phase: str, strategies: Mapping[str, _Strategy]) -> dict[str, Any]:
    """One node-level detail: every strategy's own under `strategies`, their `actions` concatenated."""
    actions: list[Any] = []
    per_strategy: dict[str, Any] = {}
    for sid, entry in strategies.items():
        detail = entry.phases[phase]
        per_strategy[sid] = {k: v for k, v in detail.items() if k != "actions"}
        listed = detail.get("actions")
        if isinstance(listed, list):
            actions.extend(listed)
    merged: dict[str, Any] = {"strategies": per_strategy}
    if actions:
        merged["actions"] = actions
    return merged
