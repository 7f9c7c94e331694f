"""RecoverableStrategy: a nautilus Strategy that comes back exact after a crash, and trades only once it has.

A subclass declares what must survive and what must exist:

- `state_type`: a frozen `msgspec.Struct` (defaults = fresh state). Change it only with `set_state(...)`,
  which persists the change through the hub's durable store; an order submitted after a change waits until
  the change is in Redis (write-ahead, `recovery.journal`).
- `protective_orders(position)`: the stop-loss / take-profit each open position must have. The base class
  places, re-links, replaces and cancels them, at recovery and whenever a position or the state changes, with
  deterministic client order ids (`recovery.client_ids`) so that no crash can double a stop.
- Indicators registered with `register_indicator_for_bars` in `on_setup` are warmed from the venue's history.
- `on_missed_fill(missed)`: fills (and stop triggers) that happened while the node was down, once, in venue
  order, before the strategy may trade.

On start it takes `_initialize_fresh()` (no state, no positions in the cache) or `_restore_state(positions)`,
then, in order: state restored, protective orders reconciled, missed fills delivered, indicators warm. Until
then every order the subclass submits is denied (`OrderDenied`, reason starting with "RECOVERING"): the node's
RiskEngine is HALTED/REDUCING meanwhile, but REDUCING alone would let a flat instrument open. Each step is
reported to the node's recovery hub (`state_restored`, `orders_restored`, `warmed`, then `strategy_ready`); a
failure reports `strategy_failed` (fatal for state that cannot be decoded) and the strategy never trades.
Without a hub (a plain nautilus node) it refuses to trade and logs why.

Use `oms_type=NETTING` (the config default here): under HEDGING a synthetic reconciliation fill leaves two
positions. Claim your instruments (`external_order_claims`) so that a lost cache recovers the venue's
positions and stops as this strategy's own.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
from nautilus_trader.config import NonNegativeInt, PositiveFloat, PositiveInt, StrategyConfig
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import TradingState
from nautilus_trader.trading.strategy import Strategy

from recovery.balances import BalanceChange, FillEffect, explain_balances
from recovery.client_ids import Owner, ProtectiveKind, owned_protective_id
from recovery.hub_api import RecoveryHub, venue_open_orders
from recovery.journal import DurableJournal
from recovery.missed import pending_missed, prune_delivered
from recovery.nautilus_views import fill_effect, fill_records, order_view, position_side, replay_from_cache
from recovery.order_port import StrategyOrderPort
from recovery.order_watch import OrderWatcher
from recovery.pacing import SubmitPacer
from recovery.protective import (
    IntendedOrder,
    OpenOrder,
    ProtectiveIntent,
    ProtectivePlan,
    plan_protective,
)
from recovery.protective_exec import ExecutionResult, ProtectiveExecutor
from recovery.state import LoadedState, NoState, StateCodec
from recovery.strategy_errors import (
    ProtectiveOrderError,
    StateWriteError,
    StrategyRecoveryError,
)
from recovery.warmup import WarmupTracker, await_warmup

# nautilus objects are untyped for mypy; named aliases keep signatures readable.
Position = Any
Order = Any
OrderFilled = Any
Bar = Any
Indicator = Any

STATE_KEY = "recovery:{strategy_id}:state"
LEDGER_KEY = "recovery:{strategy_id}:protective"
REFUSED_NO_HUB = "NO_RECOVERY_HUB"
_PROTECTIVE_PREFIXES = tuple(f"{kind.value}-" for kind in ProtectiveKind)
REFUSED_RECOVERING = "RECOVERING"
REFUSED_FAILED = "RECOVERY_FAILED"


class RecoverableStrategyConfig(StrategyConfig, kw_only=True, frozen=True):
    """Config base for RecoverableStrategy. Set `order_id_tag` (not `strategy_id`: nautilus raises a TypeError
    for it in an importable config); the strategy id is `{ClassName}-{order_id_tag}`."""

    oms_type: str | None = "NETTING"
    # Bound on the historical bar request that warms the indicators.
    warmup_timeout_secs: PositiveFloat = 30.0
    # At least this many bars of warm-up history, above what the indicators' periods ask for.
    warmup_bars: NonNegativeInt = 0
    # Bound on each protective order's acknowledgement (accept/reject/cancel) from the venue.
    order_ack_timeout_secs: PositiveFloat = 10.0
    # A protective order the venue refuses because its level is already crossed (the price moved while it was
    # missing): close the position at market, as the order would have. False: fail recovery instead.
    close_when_protective_crossed: bool = True
    # Protective submits per second (bursts of up to `protective_submit_burst`): under nautilus' RiskEngine
    # limit (100/s, beyond which it denies) and Binance's 300 orders per 10 s, with room for the strategy's
    # own orders. Placing 100 stops after a lost cache takes about 4 s at the default.
    protective_submit_rate: PositiveFloat = 25.0
    protective_submit_burst: PositiveInt = 10


@dataclass(frozen=True, slots=True)
class MissedFill:
    """A fill that happened while the node was down (found by reconciliation), handed over once."""

    fill: OrderFilled  # nautilus OrderFilled (reconciliation=True)
    order: Order  # the order it filled, as the cache has it now
    protective_kind: ProtectiveKind | None  # SL/TP when it was one of our protective orders (a stop trigger)
    realized_pnl: Decimal | None  # recomputed from the instrument's fills; None if the history is incomplete


class _Phase(enum.Enum):
    CREATED = "created"
    RECOVERING = "recovering"
    RECOVERED = "recovered"  # this strategy is done; waiting for the node to go ACTIVE
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


class RecoverableStrategy(Strategy):  # type: ignore[misc]  # nautilus ships no type stubs
    state_type: ClassVar[type[msgspec.Struct]] = NoState
    state_version: ClassVar[int] = 1

    def __init__(self, config: RecoverableStrategyConfig) -> None:
        super().__init__(config)
        if config.oms_type != "NETTING":
            raise ValueError(
                f"{type(self).__name__}: oms_type must be NETTING (got {config.oms_type!r}); under HEDGING a "
                "synthetic reconciliation fill leaves two positions"
            )
        self._config = config
        self._sid = self.id.value
        self._codec: StateCodec[Any] = StateCodec(
            self.state_type, version=self.state_version, migrate=self._migration()
        )
        self._hub: RecoveryHub | None = None
        self._phase = _Phase.CREATED
        self._failure: str | None = None
        self._state: Any = None
        self._state_seq = 0
        self._state_detail: dict[str, Any] = {}
        self._delivered: frozenset[str] = frozenset()
        self._loaded_mirror: dict[str, bytes] = {}
        self._internal_submit = False
        # Orders submit_order took that wait for earlier state writes to be durable (not in the cache yet).
        self._awaiting_state: dict[str, Order] = {}
        self._delivering = False
        self._port = StrategyOrderPort(self)
        self._watcher = OrderWatcher(self._port.order_status)
        self._journal: DurableJournal | None = None
        self._protective: ProtectiveExecutor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._sync_dirty = False
        self._warmup = WarmupTracker()
        self._in_setup = False

    # ------------------------------------------------------------------------------------------------------
    # Binding and public API for subclasses

    def bind_recovery(self, hub: RecoveryHub) -> None:
        """Called by the node's lifecycle after `TradingNode()` and before start. Without it: no trading."""
        if self._phase is not _Phase.CREATED:
            raise RuntimeError(f"{self._sid}: bind_recovery after start")
        self._hub = hub
        self._journal = DurableJournal(hub.durable, name=self._sid, on_failure=self._on_journal_failure)
        self._protective = ProtectiveExecutor(
            self._port,
            self._watcher,
            self._journal,
            ledger_key=self._key(LEDGER_KEY),
            venue_of=self._venue_of,
            ack_timeout=self._config.order_ack_timeout_secs,
            close_when_crossed=self._config.close_when_protective_crossed,
            pacer=SubmitPacer(self._config.protective_submit_rate, self._config.protective_submit_burst),
        )

    @property
    def state(self) -> Any:
        """The current declared state (a frozen struct of `state_type`); None before on_start restored it."""
        return self._state

    @property
    def recovery_ready(self) -> bool:
        """True once recovery finished and the strategy may trade."""
        return self._phase is _Phase.READY

    @property
    def recovery_failure(self) -> str | None:
        return self._failure

    @property
    def orders_awaiting_state(self) -> list[Order]:
        """Orders `submit_order` accepted that are not in the cache yet: each waits until the state written
        before it is in Redis (milliseconds). Count them as working orders, or a second signal arriving in
        between sends a second order."""
        return list(self._awaiting_state.values())

    def set_state(self, **changes: Any) -> None:
        """Change declared state fields and persist the change (awaited in order before any later submit)."""
        if self._state is None:
            raise RuntimeError(f"{self._sid}: state is restored in on_start; set_state is not available yet")
        updated = msgspec.structs.replace(self._state, **changes)
        # Type-check the change where it is made, not at the next restart.
        updated = msgspec.json.decode(msgspec.json.encode(updated), type=self.state_type)
        if updated == self._state:
            return
        self._state = updated
        if not self._delivering:  # during a missed-fill delivery the change goes out with its marker
            self._on_loop(self._persist_state)
        self._on_loop(self._request_protective_sync)

    async def state_durable(self) -> None:
        """Wait until every state change so far is in Redis (for code that wants to await it explicitly)."""
        if self._journal is not None:
            await self._journal.drain()
            if self._journal.failure is not None:
                raise self._journal.failure

    def refresh_protective(self) -> None:
        """Re-apply `protective_orders` to all open positions (also done on position and state changes)."""
        self._on_loop(self._request_protective_sync)

    # ------------------------------------------------------------------------------------------------------
    # Hooks for subclasses (all optional)

    def on_setup(self) -> None:
        """Subscribe to data and register indicators. Runs in on_start, after the state is restored."""

    def on_initialize_fresh(self) -> None:
        """First start: no positions and no state in the cache."""

    def on_restore_state(self, positions: Sequence[Position]) -> None:
        """Restart: `self.state` is restored; `positions` are the open positions as reconciled."""

    def protective_orders(self, position: Position) -> Sequence[ProtectiveIntent]:
        """The stop-loss / take-profit this open position must have (may depend on `self.state`)."""
        return ()

    def on_missed_fill(self, missed: MissedFill) -> None:
        """A fill from while the node was down. Update state here with set_state; do not trade."""
        self.log.info(f"missed fill {missed.fill}")

    def on_ready(self) -> None:
        """Recovery is complete: orders are allowed from now on."""

    def on_protective_failed(self, message: str) -> None:
        """A protective order could not be placed or cancelled while trading (after recovery)."""
        self.log.error(f"protective order failed: {message}")

    def migrate_state(self, from_version: int, fields: dict[str, Any]) -> Mapping[str, Any]:
        """Turn fields written by an older `state_version` into the current ones (override to support it)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------------------
    # nautilus lifecycle

    def on_load(self, state: dict[str, bytes]) -> None:
        # nautilus' own strategy-state key; our state lives in its own key. Kept only so that on_save can
        # hand it back unchanged if this run never restores (never overwrite good state with defaults).
        self._loaded_mirror = dict(state)

    def on_save(self) -> dict[str, bytes]:
        if self._state is None:
            return dict(self._loaded_mirror)
        return {
            "recovery_state": self._codec.encode(self._state, seq=self._state_seq, delivered=self._delivered)
        }

    def on_start(self) -> None:
        if self._hub is None or self._journal is None:
            self._phase = _Phase.FAILED
            self._failure = (
                f"{REFUSED_NO_HUB}: no recovery hub was bound; a RecoverableStrategy trades only under the "
                "recovery node (python -m recovery.node), which restores its positions, stops and state first"
            )
            self.log.error(f"{self._sid} refuses to trade: {self._failure}")
            return
        self._phase = _Phase.RECOVERING
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._hub.attach(self._sid)
        self._journal.start()
        self.msgbus.subscribe(topic=f"events.order.{self._sid}", handler=self._watcher.on_order_event)
        self.msgbus.subscribe(topic=f"events.position.{self._sid}", handler=self._on_position_event)
        self.msgbus.subscribe(topic="events.risk", handler=self._on_risk_event)
        try:
            positions = self.cache.positions_open(strategy_id=self.id)
            loaded = self._load_state()
            assert self._protective is not None
            self._protective.load_ledger(
                self._hub.durable.get(self._key(LEDGER_KEY)), self._redis_key(LEDGER_KEY)
            )
            if loaded is None and not positions:
                self._initialize_fresh()
            else:
                self._restore_state(positions, loaded)
            self._in_setup = True
            try:
                self.on_setup()
            finally:
                self._in_setup = False
            self._start_warmup()
        except StrategyRecoveryError as exc:
            self._fail(exc)
            return
        except Exception as exc:  # a subclass hook raised: report it, never trade
            self._fail(StrategyRecoveryError(f"{type(exc).__name__} in start-up: {exc}"))
            return
        self._spawn(self._recover(), "recover")

    def on_stop(self) -> None:
        if self._phase is not _Phase.FAILED:
            self._phase = _Phase.STOPPED
        if self._loop is None:
            return
        self.msgbus.unsubscribe(topic=f"events.order.{self._sid}", handler=self._watcher.on_order_event)
        self.msgbus.unsubscribe(topic=f"events.position.{self._sid}", handler=self._on_position_event)
        self.msgbus.unsubscribe(topic="events.risk", handler=self._on_risk_event)
        # on_stop is synchronous: the wind-down (cancel and await our tasks, let queued state writes finish
        # within the journal's grace) runs as a task while nautilus completes its stop on the same loop.
        self._closing = self._loop.create_task(self._wind_down(), name=f"recovery.strategy[{self._sid}].stop")

    async def _wind_down(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._journal is not None:
            await self._journal.aclose()

    def on_dispose(self) -> None:
        if self._journal is not None:
            self._journal.cancel()

    # ------------------------------------------------------------------------------------------------------
    # The two start paths

    def _initialize_fresh(self) -> None:
        self._state = self._codec.fresh()
        self._state_detail = {"path": "fresh", "state": "initialized"}
        self._persist_state()
        self.on_initialize_fresh()

    def _restore_state(self, positions: Sequence[Position], loaded: LoadedState[Any] | None) -> None:
        if loaded is None:
            # Positions but no state: a lost cache, or this strategy's first run over existing positions.
            # Said loudly in the report; the positions themselves come from reconciliation.
            self._state = self._codec.fresh()
            self._state_detail = {"path": "restored", "state": "absent", "lost_cache": self._hub_lost_cache()}
            self.log.warning(
                f"{self._sid}: {len(positions)} open position(s) but no saved state; starting from defaults"
            )
            self._persist_state()
        else:
            self._state = loaded.value
            self._state_seq = loaded.seq
            self._delivered = loaded.delivered
            self._state_detail = {"path": "restored", "state": "loaded", "state_seq": loaded.seq}
            if loaded.migrated_from is not None:
                self._state_detail["migrated_from"] = loaded.migrated_from
                self._persist_state()
        self._state_detail["positions"] = [
            {"instrument": p.instrument_id.value, "side": position_side(p), "quantity": str(p.quantity)}
            for p in positions
        ]
        self.on_restore_state(positions)

    def _load_state(self) -> LoadedState[Any] | None:
        assert self._hub is not None
        data = self._hub.durable.get(self._key(STATE_KEY))
        if data is None:
            return None
        return self._codec.decode(self._redis_key(STATE_KEY), data)

    # ------------------------------------------------------------------------------------------------------
    # Recovery sequence (a task on the node's loop)

    async def _recover(self) -> None:
        hub = self._hub
        assert hub is not None and self._journal is not None and self._protective is not None
        try:
            await self.state_durable()
            hub.strategy_phase(self._sid, "state_restored", {"strategy": self._sid, **self._state_detail})
            result = await self._restore_protective()
            missed = await self._deliver_missed()
            hub.strategy_phase(
                self._sid,
                "orders_restored",
                {
                    "strategy": self._sid,
                    "actions": result.actions,
                    "closed_positions": result.closed,
                    "stale_in_cache": result.stale,
                    "missed_fills": missed["fills"],
                    "balances": missed["balances"],
                },
            )
            await await_warmup(
                self._warmup.done,
                limit_s=self._config.warmup_timeout_secs,
                is_initialized=self._warmup.initialized,
                pending=self._warmup.pending,
            )
            hub.strategy_phase(
                self._sid, "warmed", {"strategy": self._sid, "requests": self._warmup.requests}
            )
            await self.state_durable()
            # Trading opens when the node goes ACTIVE (every strategy ready), seen on `events.risk`.
            self._phase = _Phase.RECOVERED
            hub.strategy_ready(self._sid)
            self.log.info(f"{self._sid}: recovered; waiting for the node to go ACTIVE")
        except asyncio.CancelledError:
            raise
        except StrategyRecoveryError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug or a subclass hook: fail loudly, never trade on a half recovery
            self._fail(StrategyRecoveryError(f"{type(exc).__name__} during recovery: {exc}"))

    async def _restore_protective(self) -> ExecutionResult:
        assert self._hub is not None and self._protective is not None
        venue_orders = [o for rec in self._hub.reconciliation.values() for o in venue_open_orders(rec)]
        plan = plan_protective(
            self._owner(),
            self._intended_orders(),
            venue_orders,
            self._protective.ledger,
            self._cached_protective_statuses(),
        )
        if plan.changes_venue:
            # HALTED denies our own stops too; REDUCING lets reduce-only orders opposite a position through.
            self._hub.request_trading_state(self._sid, "REDUCING")
        try:
            result = await self._protective.execute(plan)
            if result.closed and not result.failures:
                # Positions closed at market leave protective orders without a position: one more pass,
                # from the cache (which now knows more than the venue's list taken at reconciliation).
                again = await self._protective.execute(self._plan_from_cache())
                result.actions.extend(again.actions)
                result.failures.extend(again.failures)
                result.closed.extend(again.closed)
        finally:
            if plan.changes_venue:
                self._hub.request_trading_state(self._sid, "HALTED")
        at_venue = {o.client_order_id for o in venue_orders}
        result.stale = sorted(
            o.client_order_id.value
            for o in self.cache.orders_open(strategy_id=self.id)
            if o.client_order_id.value not in at_venue
            and owned_protective_id(o.client_order_id.value, self._owner(), o.instrument_id.value) is not None
            and o.client_order_id.value not in {p.client_order_id for p in plan.places}
        )
        if result.stale:
            self.log.warning(
                f"{self._sid}: cache holds protective orders the venue does not list: {result.stale}"
            )
        if result.failures:
            raise ProtectiveOrderError(
                "protective orders not restored: " + "; ".join(result.failures),
                detail={"actions": result.actions, "failures": result.failures},
            )
        return result

    async def _deliver_missed(self) -> dict[str, Any]:
        records = fill_records(self.cache.orders(strategy_id=self.id))
        pending = pending_missed(records, self._delivered)
        touched = {r.instrument_id for r in pending}
        realized, incomplete = replay_from_cache(
            self.cache, self.id, [r for r in records if r.instrument_id in touched]
        )
        effects: list[FillEffect] = []
        delivered: list[dict[str, Any]] = []
        for record in pending:
            event, order = record.payload
            parsed = owned_protective_id(order.client_order_id.value, self._owner(), record.instrument_id)
            missed = MissedFill(
                fill=event,
                order=order,
                protective_kind=None if parsed is None else parsed.kind,
                realized_pnl=realized.get(record.key),
            )
            # Whatever state the hook sets and the delivered marker go out in one write: a crash before it
            # redelivers the fill to a state without its effect, a crash after it never redelivers.
            self._delivering = True
            try:
                self.on_missed_fill(missed)
            finally:
                self._delivering = False
            self._delivered = self._delivered | {record.key}
            await self._persist_state()
            effects.append(fill_effect(record, self.cache.instrument(event.instrument_id)))
            delivered.append(
                {
                    "instrument": record.instrument_id,
                    "client_order_id": order.client_order_id.value,
                    "trade_id": record.trade_id,
                    "side": "BUY" if event.is_buy else "SELL",
                    "quantity": str(event.last_qty),
                    "price": str(event.last_px),
                    "ts_event": record.ts_event,
                    "protective": None if parsed is None else parsed.kind.value,
                }
            )
        pruned = prune_delivered(self._delivered, records)
        if pruned != self._delivered:
            self._delivered = pruned
            await self._persist_state()
        balances: list[BalanceChange] = []
        assert self._hub is not None
        for name, rec in sorted(self._hub.reconciliation.items()):
            venue_effects = [e for e in effects if self._venue_of(e.instrument_id) == name]
            balances.extend(
                explain_balances(
                    name,
                    rec.balances_before,
                    rec.balances_after,
                    venue_effects,
                    realized,
                    incomplete=[i for i in incomplete if self._venue_of(i) == name],
                )
            )
        return {"fills": delivered, "balances": balances}

    def _on_risk_event(self, event: object) -> None:
        state = getattr(event, "state", None)
        name = getattr(state, "name", None) or (TradingState(state).name if isinstance(state, int) else None)
        if name == "ACTIVE" and self._phase is _Phase.RECOVERED:
            self._phase = _Phase.READY
            self.log.info(f"{self._sid}: node ACTIVE; trading allowed")
            try:
                self.on_ready()
            except Exception as exc:
                self._fail(StrategyRecoveryError(f"{type(exc).__name__} in on_ready: {exc}"))
                return
            self._request_protective_sync()  # anything that changed while recovering

    # ------------------------------------------------------------------------------------------------------
    # Protective orders while trading

    def _on_position_event(self, event: object) -> None:
        self._request_protective_sync()

    def _request_protective_sync(self) -> None:
        if self._phase is not _Phase.READY:
            return
        self._sync_dirty = True
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = self._spawn(self._sync_protective(), "protective-sync")

    async def _sync_protective(self) -> None:
        assert self._protective is not None
        try:
            while self._sync_dirty and self._phase is _Phase.READY:
                self._sync_dirty = False
                plan = self._plan_from_cache()
                if not plan.changes_venue and dict(plan.ledger) == self._protective.ledger:
                    continue
                result = await self._protective.execute(plan)
                for action in result.actions:
                    self.log.info(f"protective: {action}")
                for failure in result.failures:
                    self.on_protective_failed(failure)
        except asyncio.CancelledError:
            raise
        except StateWriteError:
            return  # the journal has reported it: the strategy failed
        except StrategyRecoveryError as exc:
            self._fail(exc)
        except (
            Exception
        ) as exc:  # e.g. protective_orders() raised: positions may be unprotected, stop trading
            self._fail(StrategyRecoveryError(f"{type(exc).__name__} keeping protective orders: {exc}"))

    def _plan_from_cache(self) -> ProtectivePlan:
        """The plan against what the cache holds open or in flight (while trading, the cache is current)."""
        assert self._protective is not None
        open_orders: list[OpenOrder] = [
            order_view(o)
            for o in (
                *self.cache.orders_open(strategy_id=self.id),
                *self.cache.orders_inflight(strategy_id=self.id),
            )
        ]
        return plan_protective(
            self._owner(),
            self._intended_orders(),
            open_orders,
            self._protective.ledger,
            self._cached_protective_statuses(),
        )

    def _intended_orders(self) -> list[IntendedOrder]:
        intents: list[IntendedOrder] = []
        for position in self.cache.positions_open(strategy_id=self.id):
            instrument = self.cache.instrument(position.instrument_id)
            if instrument is None:
                raise ProtectiveOrderError(f"no instrument {position.instrument_id} in the cache")
            seen: set[ProtectiveKind] = set()
            for intent in self.protective_orders(position):
                if intent.kind in seen:
                    raise ProtectiveOrderError(
                        f"protective_orders gave two {intent.kind.name} for {position.id}"
                    )
                seen.add(intent.kind)
                intents.append(
                    IntendedOrder(
                        instrument_id=position.instrument_id.value,
                        kind=intent.kind,
                        side="SELL" if position.is_long else "BUY",
                        quantity=position.quantity.as_decimal(),
                        trigger_price=_to_tick(intent.trigger_price, instrument.price_increment.as_decimal()),
                        trigger_type=intent.trigger_type,
                    )
                )
        return intents

    def _cached_protective_statuses(self) -> dict[str, str]:
        """Status of every protective order of ours the cache knows (ids only are scanned: with a long order
        history this runs on every position or state change)."""
        owner = self._owner()
        statuses: dict[str, str] = {}
        for client_order_id in self.cache.client_order_ids(strategy_id=self.id):
            value = client_order_id.value
            if not value.startswith(_PROTECTIVE_PREFIXES):
                continue
            order = self.cache.order(client_order_id)
            if order is not None and owned_protective_id(value, owner, order.instrument_id.value) is not None:
                statuses[value] = str(order.status_string())
        return statuses

    def submit_internal(self, order: Order, position_id: Any = None) -> None:
        """Submit one of recovery's own orders (protective orders, a market close): past the gate."""
        self._internal_submit = True
        try:
            self.submit_order(order, position_id=position_id)
        finally:
            self._internal_submit = False

    # ------------------------------------------------------------------------------------------------------
    # The gate: the subclass's own orders are denied until recovery is complete

    def submit_order(
        self,
        order: Order,
        position_id: Any = None,
        client_id: Any = None,
        params: dict[str, object] | None = None,
    ) -> None:
        if self._internal_submit:
            Strategy.submit_order(self, order, position_id, client_id, params)
            return
        if self._off_loop():
            # From a timer thread: decide on the loop, in order with the state writes queued before it.
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.submit_order, order, position_id, client_id, params)
            return
        refusal = self._refusal()
        if refusal is not None:
            self._deny(order, refusal)
            return
        if self.cache.order_exists(order.client_order_id):
            # nautilus would deny it onto the existing record and corrupt it (research 0.4).
            self.log.error(f"{self._sid}: not submitting {order.client_order_id}: the cache already has it")
            return
        assert self._journal is not None
        self._awaiting_state[order.client_order_id.value] = order
        self._journal.after_writes(
            lambda: self._submit_when_durable(order, position_id, client_id, params),
            lambda exc: self._deny(order, f"STATE_NOT_DURABLE: {exc}"),
        )

    def _submit_when_durable(
        self, order: Order, position_id: Any, client_id: Any, params: dict[str, object] | None
    ) -> None:
        self._awaiting_state.pop(order.client_order_id.value, None)
        refusal = self._refusal()
        if refusal is not None:
            self._deny(order, refusal)
            return
        Strategy.submit_order(self, order, position_id, client_id, params)

    def submit_order_list(
        self,
        order_list: Any,
        position_id: Any = None,
        client_id: Any = None,
        params: dict[str, object] | None = None,
    ) -> None:
        if self._off_loop():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(
                self.submit_order_list, order_list, position_id, client_id, params
            )
            return
        refusal = self._refusal()
        if refusal is not None:
            for order in order_list.orders:
                self._deny(order, refusal)
            return
        assert self._journal is not None

        def abandon(exc: BaseException) -> None:
            for order in order_list.orders:
                self._deny(order, f"STATE_NOT_DURABLE: {exc}")

        self._journal.after_writes(
            lambda: Strategy.submit_order_list(self, order_list, position_id, client_id, params), abandon
        )

    def modify_order(self, order: Order, *args: Any, **kwargs: Any) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self.log.warning(f"{self._sid}: modify of {order.client_order_id} refused: {refusal}")
            return
        Strategy.modify_order(self, order, *args, **kwargs)

    def _refusal(self) -> str | None:
        if self._phase is _Phase.READY:
            return None
        if self._phase is _Phase.FAILED:
            return (
                self._failure
                if self._failure and self._failure.startswith(REFUSED_NO_HUB)
                else (f"{REFUSED_FAILED}: {self._failure}")
            )
        if self._hub is None:
            return f"{REFUSED_NO_HUB}: no recovery hub bound"
        return f"{REFUSED_RECOVERING}: positions, protective orders, state and indicators are being restored"

    def _deny(self, order: Order, reason: str) -> None:
        self._awaiting_state.pop(order.client_order_id.value, None)
        self._port.deny(order, reason)

    # ------------------------------------------------------------------------------------------------------
    # Warm-up

    def register_indicator_for_bars(self, bar_type: BarType, indicator: Indicator) -> None:
        Strategy.register_indicator_for_bars(self, bar_type, indicator)
        self._warmup.register(str(bar_type.standard()), bar_type.standard(), indicator)

    def subscribe_bars(self, bar_type: BarType, *args: Any, **kwargs: Any) -> None:
        if self._in_setup:  # held until the bar type's history is in
            self._warmup.hold(
                str(bar_type.standard()), lambda: Strategy.subscribe_bars(self, bar_type, *args, **kwargs)
            )
            return
        Strategy.subscribe_bars(self, bar_type, *args, **kwargs)

    def _start_warmup(self) -> None:
        self._warmup.start(
            self.clock.utc_now(),
            self._config.warmup_bars,
            interval_of=lambda bar_type: bar_type.spec.timedelta,
            request=lambda bar_type, start: self.request_bars(
                bar_type, start=start, callback=self._warmup.answered
            ),
        )

    # ------------------------------------------------------------------------------------------------------
    # Plumbing

    def _persist_state(self) -> asyncio.Future[None]:
        """Queue the current state for a durable write (on the loop thread; see `_on_loop`)."""
        assert self._journal is not None
        self._state_seq += 1
        data = self._codec.encode(self._state, seq=self._state_seq, delivered=self._delivered)
        return self._journal.write(self._key(STATE_KEY), data)

    def _on_loop(self, action: Callable[[], object]) -> bool:
        """Run `action` now when on the node's loop thread, else hand it to the loop: nautilus may run timer
        callbacks on other threads, and the journal and the tasks belong to the loop. True if run now."""
        if not self._off_loop():
            action()
            return True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(action)
        return False

    def _off_loop(self) -> bool:
        return self._loop is not None and threading.get_ident() != self._loop_thread

    def _fail(self, exc: StrategyRecoveryError) -> None:
        if self._phase is _Phase.FAILED:
            return
        self._phase = _Phase.FAILED
        self._failure = str(exc)
        self.log.error(f"{self._sid}: recovery failed ({'fatal' if exc.fatal else 'retryable'}): {exc}")
        if self._hub is not None:
            self._hub.strategy_failed(
                self._sid, str(exc), {"strategy": self._sid, **exc.detail}, fatal=exc.fatal
            )

    def _on_journal_failure(self, error: StateWriteError) -> None:
        self._fail(error)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=f"recovery.strategy[{self._sid}].{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _owner(self) -> Owner:
        return Owner(self.trader_id.value, self._sid)

    def _key(self, template: str) -> str:
        return template.format(strategy_id=self._sid)

    def _redis_key(self, template: str) -> str:
        # Where the hub's durable store (and nautilus' cache.add) put general keys.
        return f"trader-{self.trader_id.value}:general:{self._key(template)}"

    def _venue_of(self, instrument_id: str) -> str:
        assert self._hub is not None
        venues = self._hub.reconciliation
        if len(venues) == 1:
            return next(iter(venues))
        for name, rec in sorted(venues.items()):
            if any(str(o.instrument_id) == instrument_id for o in rec.open_orders) or any(
                str(getattr(p, "instrument_id", "")) == instrument_id for p in rec.positions
            ):
                return name
        return next(iter(sorted(venues)), "unknown")

    def _hub_lost_cache(self) -> bool:
        return bool(self._hub is not None and self._hub.lost_cache)

    def _migration(self) -> Callable[[int, dict[str, Any]], Mapping[str, Any]] | None:
        if type(self).migrate_state is RecoverableStrategy.migrate_state:
            return None
        return self.migrate_state


def _to_tick(price: Decimal, increment: Decimal) -> Decimal:
    """The nearest multiple of the instrument's tick: the venue rejects anything else, and the fingerprint
    must not change with digits the venue would never keep."""
    rounded = ((price / increment).to_integral_value() * increment).normalize()
    return Decimal(format(rounded, "f"))  # 65100, not 6.51E+4 (reports and logs are read by people)
