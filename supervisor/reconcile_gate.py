"""The reconciliation gate: after a host reboot or a daemon restart, strategy nodes of one rate group start
reconciling in an order and at a pace the venue's request budget allows.

Every strategy node is enqueued when it is spawned. It imports nautilus and loads its cache meanwhile (the
slow, local part), then waits, before its first venue request, until the supervisor admits it: the supervisor
pushes to the Redis list `fleet:gate:{trader_id}` (the node blocks on it, see `recovery/gate.py`). Nodes
holding positions go first (a node with exposure and no stops is the risk), then the one down longest.

Each admission books the node's expected request weight (from the symbols it holds or trades) against its
rate group's recovery budget: into what is left of the current window, and what does not fit there into the
next one (the node's own limiter holds those requests until the next window starts). So every window's
budget is used to its end, and a node admitted waits at most one window boundary. The window's real use comes
from the shared counters in Redis (`supervisor/rate_budget.py`): it counts whatever is more, the bookings or
the weight spent; bookings that admitted nodes have not spent by the window's end move on to the next one.

The decisions are pure (`admission_order`, `admissible`, `expected_weight`); `ReconcileGate` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from supervisor.config.resolve import instruments_of
from supervisor.config.schema import FleetSpec, NodeSpec
from supervisor.rate_budget import rate_group, read_group_usage

log = logging.getLogger(__name__)

GATE_KEY = "fleet:gate:{trader_id}"
# Names the key to a node; `recovery/gate.py` waits on it.
ENV_GATE_KEY = "FLEET_GATE_KEY"
# Recovery phases the supervisor publishes for a node that had to wait.
QUEUED = "queued"
ADMITTED = "admitted"
# The admission a node waits for outlives a lost supervisor by at most this (a new one clears it).
ADMISSION_TTL_S = 600
# Measured with bench/restart_weight.py (emulator request log, nautilus 1.231): connecting costs 53, the
# reconciliation's fixed requests 85, and each symbol the cache or the venue holds 15 (trades, orders, algos).
CONNECT_WEIGHT = 53
RECONCILE_WEIGHT = 85
SYMBOL_WEIGHT = 15
# Between admissions the gate looks again this often (a window rolls over, another host spent weight).
POLL_S = 1.0


def expected_weight(symbols: int) -> int:
    """The request weight one recovery of a node holding or trading `symbols` symbols costs."""
    return CONNECT_WEIGHT + RECONCILE_WEIGHT + SYMBOL_WEIGHT * max(0, symbols)


@dataclasses.dataclass(frozen=True)
class Waiting:
    """A node waiting to reconcile, as the ordering sees it."""

    node: str
    has_positions: bool
    down_since: float  # epoch seconds the node was detected down (or enqueued, for a first start)
    weight: int


def admission_order(waiting: Iterable[Waiting]) -> list[Waiting]:
    """Nodes with open positions first, then the one down longest; the node name breaks ties."""
    return sorted(waiting, key=lambda w: (not w.has_positions, w.down_since, w.node))


@dataclasses.dataclass(frozen=True)
class Admission:
    """A node let through, and where its expected weight is booked."""

    waiting: Waiting
    now: int  # in the current window
    later: int  # in the next (more only for a node heavier than two windows' room, which goes alone)


def admissible(
    ordered: list[Waiting], *, room_now: int, room_next: int, nothing_in_flight: bool
) -> list[Admission]:
    """The longest prefix of `ordered` whose weights fit in what is left of the current window's recovery
    budget (`room_now`) and of the next window's (`room_next`): a node may straddle the two. Strictly in
    order (a small node does not overtake a big one with positions). A node heavier than both goes alone when
    nothing else is reconciling (its limiter spreads it over several windows). Into a spent window nobody
    goes: whoever is admitted sends at once."""
    admitted: list[Admission] = []
    for entry in ordered:
        if room_now <= 0:
            break
        if entry.weight > room_now + room_next and (admitted or not nothing_in_flight):
            break
        now = min(entry.weight, room_now)
        admitted.append(Admission(entry, now, entry.weight - now))
        room_now -= now
        room_next -= entry.weight - now
    return admitted


@dataclasses.dataclass
class Ledger:
    """One rate group's bookings, per admitted node, in the current window and the next, carried along as
    windows pass. Per node, so that a node released gives back exactly what it still held, including what it
    carried from an earlier window."""

    window_start_ms: int = -1
    used: int = 0  # the current window's weight as last read
    now_by: dict[str, int] = dataclasses.field(default_factory=dict)
    next_by: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def now(self) -> int:
        return sum(self.now_by.values())

    @property
    def next(self) -> int:
        return sum(self.next_by.values())

    def follow(self, window_start_ms: int, window_ms: int, used: int) -> None:
        """Move to the window Redis reports. What the nodes still admitted booked in the window that ended and
        did not spend there they spend in this one, on top of what they booked for it."""
        if window_start_ms != self.window_start_ms:
            if self.window_start_ms >= 0 and window_start_ms == self.window_start_ms + window_ms:
                carried = self._unspent_by_node()
                nodes = set(self.next_by) | set(carried)
                now_by = {n: self.next_by.get(n, 0) + carried.get(n, 0) for n in sorted(nodes)}
                self.now_by = {n: w for n, w in now_by.items() if w > 0}
            else:  # the first look, or a window went by unseen: old bookings say nothing any more
                self.now_by = {}
            self.next_by = {}
            self.window_start_ms = window_start_ms
        self.used = used

    def _unspent_by_node(self) -> dict[str, int]:
        """The ended window's unspent bookings, shared in proportion to what each node booked there (the
        window's use is known for the group only). Rounded up: a booking errs on the side of the venue."""
        booked = self.now
        unspent = min(max(0, booked - self.used), booked)
        if unspent == 0:
            return {}
        return {n: -(-unspent * w // booked) for n, w in self.now_by.items()}

    def book(self, node: str, admission: Admission) -> None:
        self.now_by[node] = self.now_by.get(node, 0) + admission.now
        self.next_by[node] = self.next_by.get(node, 0) + admission.later

    def cancel(self, node: str) -> None:
        """The node released: whatever it still has booked no longer holds (what it spent, Redis counts)."""
        self.now_by.pop(node, None)
        self.next_by.pop(node, None)


class GateObserver(Protocol):
    def reconcile_queue_depth(self, group: str, depth: int) -> None: ...


@dataclasses.dataclass
class Ticket:
    """One node's place at the gate, from its spawn to the end of its reconciliation."""

    node: str
    trader_id: str
    group: str
    waiting: Waiting
    enqueued_mono: float
    admitted: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    admitted_mono: float | None = None
    released: bool = False

    @property
    def waited_s(self) -> float:
        end = self.admitted_mono if self.admitted_mono is not None else time.monotonic()
        return max(0.0, end - self.enqueued_mono)


class ReconcileGate:
    """Admits queued nodes per rate group, in `admission_order`, within each group's recovery budget. One
    instance per daemon; `run` is its task. Redis failing never stops it: it then admits one node at a time
    (each node's own limiter still keeps the venue's limit)."""

    def __init__(
        self,
        *,
        redis: Callable[[], Any],  # the daemon's redis.asyncio client (decode_responses=False)
        observer: GateObserver,
        call_timeout_s: float = 2.0,
    ) -> None:
        self._redis = redis
        self._observer = observer
        self._timeout = call_timeout_s
        self._tickets: dict[str, Ticket] = {}  # by node
        self._ledgers: dict[str, Ledger] = {}  # by rate group
        self._admitting: dict[str, asyncio.Lock] = {}  # by rate group
        self._budgets: dict[str, int] = {}  # each group's recovery budget per window, as last read
        self._changed = asyncio.Event()  # set (and replaced) whenever a queue moves
        self._wake = asyncio.Event()

    # ---- what the runners call -------------------------------------------------------------------------

    async def enqueue(self, *, node: str, trader_id: str, group: str, waiting: Waiting) -> Ticket:
        """Place a node in its group's queue (replacing any ticket it had) and try to admit at once. A stale
        admission from an earlier start is cleared first, so that only this start's lets the node through."""
        self.release(node)
        try:
            await self._call(self._redis().delete(gate_key(trader_id)))
        except Exception as exc:  # the node fails on Redis itself; the gate must not
            log.warning("reconciliation gate: cannot clear %s: %s", gate_key(trader_id), exc)
        ticket = Ticket(
            node=node, trader_id=trader_id, group=group, waiting=waiting, enqueued_mono=time.monotonic()
        )
        self._tickets[node] = ticket
        await self._admit_safely(group)
        self._publish_depth(group)
        self._moved()
        return ticket

    def place(self, ticket: Ticket) -> tuple[int, int]:
        """(1-based place in its group's queue, queue length) while it waits."""
        names = [w.node for w in admission_order(t.waiting for t in self._queue(ticket.group))]
        return (names.index(ticket.node) + 1 if ticket.node in names else 0, len(names))

    def release(self, node: str) -> None:
        """The node reconciled, failed or exited: its reservation ends."""
        ticket = self._tickets.pop(node, None)
        if ticket is not None:
            ticket.released = True
            if ticket.group in self._ledgers:
                self._ledgers[ticket.group].cancel(node)
            self._publish_depth(ticket.group)
            self._wake.set()
            self._moved()

    def may_spawn(self, ticket: Ticket) -> bool:
        """Whether a node's process should start now: it is admitted, or the queue ahead of it weighs less
        than one window's recovery budget (it will be admitted within about a window, and imports and loads
        its cache while it waits). Nodes further back start later: a host's cold starts compete for its
        cores, and those go first to the nodes that reconcile first."""
        if ticket.admitted.is_set() or ticket.released:
            return True
        budget = self._budgets.get(ticket.group)
        if budget is None:
            return True  # the budget is not known yet: nothing to pace by
        return self.weight_ahead(ticket) < budget

    def weight_ahead(self, ticket: Ticket) -> int:
        """The expected weight of the nodes queued before this one."""
        ahead = 0
        for waiting in admission_order(t.waiting for t in self._queue(ticket.group)):
            if waiting.node == ticket.node:
                break
            ahead += waiting.weight
        return ahead

    def next_move(self) -> asyncio.Event:
        """An event set at the next change of any queue (an admission, a release, a new node, a budget read).
        Take it before looking at the queue: a change after the look then sets it."""
        return self._changed

    def _moved(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def booked(self, group: str) -> tuple[int, int]:
        """The group's weight booked for admitted nodes in the current window and in the next."""
        ledger = self._ledgers.get(group)
        return (ledger.now, ledger.next) if ledger is not None else (0, 0)

    def reconciling(self, group: str) -> bool:
        """Whether nodes of the group wait at the gate or reconcile now (the venue audit waits for them)."""
        return any(t.group == group for t in self._tickets.values())

    # ---- the loop --------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            for group in sorted({t.group for t in self._tickets.values() if not t.admitted.is_set()}):
                await self._admit_safely(group)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def _admit_safely(self, group: str) -> None:
        # One admission round per group at a time: every enqueue runs one, and two rounds that both read the
        # rooms before either booked would admit (and book) the same nodes twice.
        async with self._admitting.setdefault(group, asyncio.Lock()):
            await self._admit_round(group)

    async def _admit_round(self, group: str) -> None:
        try:
            rooms = await self._rooms(group)
            if rooms is None:
                return  # the venue holds the group back: nobody starts now
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "reconciliation gate, rate group %s: budget unknown (%s); one node at a time", group, exc
            )
            rooms = self._one_at_a_time(group)
        try:
            await self._admit(group, *rooms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("reconciliation gate, rate group %s: cannot admit (%s); retrying", group, exc)

    async def _rooms(self, group: str) -> tuple[int, int] | None:
        """Weight the group may still book for recoveries in the current window and in the next: its budget,
        less what the window has used or has booked (whichever is more); None while the venue holds the group
        back (a 429/418's Retry-After)."""
        usage = await read_group_usage(self._redis(), group, timeout_s=self._timeout)
        if usage.paused_ms > 0:
            return None
        if usage.recovery_budget is None:
            # No node of the group has learned the venue's limits yet (they come with its first answer).
            return self._one_at_a_time(group)
        ledger = self._ledgers.setdefault(group, Ledger())
        ledger.follow(usage.window_start_ms, usage.window_ms, usage.used)
        budget = usage.recovery_budget
        if self._budgets.get(group) != budget:
            self._budgets[group] = budget
            self._moved()
        return budget - max(usage.used, ledger.now), budget - ledger.next

    def _one_at_a_time(self, group: str) -> tuple[int, int]:
        return (0 if self._in_flight(group) else 1), 0

    async def _admit(self, group: str, room_now: int, room_next: int) -> None:
        queue = self._queue(group)
        if not queue:
            return
        ordered = admission_order(t.waiting for t in queue)
        chosen = admissible(
            ordered, room_now=room_now, room_next=room_next, nothing_in_flight=not self._in_flight(group)
        )
        by_node = {t.node: t for t in queue}
        ledger = self._ledgers.get(group)
        for admission in chosen:
            entry = admission.waiting
            ticket = by_node[entry.node]
            key = gate_key(ticket.trader_id)
            await self._call(self._redis().rpush(key, "admitted"))
            await self._call(self._redis().expire(key, ADMISSION_TTL_S))
            if ledger is not None:
                ledger.book(entry.node, admission)
            ticket.admitted_mono = time.monotonic()
            ticket.admitted.set()
            log.info(
                "reconciliation gate: %s admitted after %.1fs (rate group %s, %d weight expected, %d of it "
                "in the next window)",
                entry.node,
                ticket.waited_s,
                group,
                entry.weight,
                admission.later,
            )
        if chosen:
            self._publish_depth(group)
            self._moved()

    def _in_flight(self, group: str) -> list[Ticket]:
        return [t for t in self._tickets.values() if t.group == group and t.admitted.is_set()]

    def _queue(self, group: str) -> list[Ticket]:
        return [t for t in self._tickets.values() if t.group == group and not t.admitted.is_set()]

    def _publish_depth(self, group: str) -> None:
        self._observer.reconcile_queue_depth(group, len(self._queue(group)))

    async def _call(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, self._timeout)


def gate_key(trader_id: str) -> str:
    return GATE_KEY.format(trader_id=trader_id)


class NodeGate:
    """What a node's runner uses: which rate group and how much weight its recovery needs (from fleet.yaml and
    the node's readable positions in Redis), its queue entry, and its release."""

    def __init__(
        self,
        *,
        gate: ReconcileGate,
        redis: Callable[[], Any],
        fleet: Callable[[], FleetSpec],
        host: str,
        call_timeout_s: float = 2.0,
    ) -> None:
        self.gate = gate
        self._redis = redis
        self._fleet = fleet
        self._host = host
        self._timeout = call_timeout_s

    async def enqueue(self, node: NodeSpec, *, down_since: float) -> Ticket | None:
        """The node's ticket, or None when it does not pass the gate (not a strategy node, coordination
        off)."""
        fleet = self._fleet()
        if not fleet.coordination.enabled or node.strategies is None or len(node.venues) != 1:
            return None
        venue_name = node.venues[0]
        venue = fleet.venues.get(venue_name)
        if venue is None:
            return None
        held = await self._held(node.trader_id, venue_name)
        symbols = max(len(held), len(instruments_of(node)))
        waiting = Waiting(
            node=node.name, has_positions=bool(held), down_since=down_since, weight=expected_weight(symbols)
        )
        group = rate_group(venue, self._host)
        return await self.gate.enqueue(node=node.name, trader_id=node.trader_id, group=group, waiting=waiting)

    async def _held(self, trader_id: str, venue: str) -> list[bytes]:
        """Instruments the node holds positions in, from its readable positions keys (none if Redis fails)."""
        pattern = f"positions:{trader_id}:{venue}:*"
        try:
            async with asyncio.timeout(self._timeout):
                return [key async for key in self._redis().scan_iter(match=pattern, count=1000)]
        except Exception as exc:
            log.warning("reconciliation gate: cannot read %s (%s); taking the node as flat", pattern, exc)
            return []
