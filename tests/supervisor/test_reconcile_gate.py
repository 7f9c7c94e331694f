"""The reconciliation gate: its order and admission rule (pure, table tests), and the gate itself on a real
Redis (admissions pushed where the node waits, the group's budget read from the shared counters)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis.asyncio as aioredis

from supervisor import rate_budget
from supervisor.config.loader import parse_fleet
from supervisor.reconcile_gate import (
    Admission,
    Ledger,
    NodeGate,
    ReconcileGate,
    Waiting,
    admissible,
    admission_order,
    expected_weight,
    gate_key,
)
from supervisor.states import NodeState
from tests.supervisor.conftest import REPO, TEST_NODE, RecordingObserver, RunnerFactory


def w(node: str, *, positions: bool = False, down: float = 0.0, weight: int = 100) -> Waiting:
    return Waiting(node=node, has_positions=positions, down_since=down, weight=weight)


@pytest.mark.parametrize(
    ("waiting", "order"),
    [
        ([w("a", down=3), w("b", down=1), w("c", down=2)], ["b", "c", "a"]),  # down longest first
        ([w("a", down=1), w("b", positions=True, down=5)], ["b", "a"]),  # exposure before time
        (
            [w("a", positions=True, down=2), w("b", positions=True, down=1), w("c", down=0)],
            ["b", "a", "c"],
        ),
        ([w("b", down=1), w("a", down=1)], ["a", "b"]),  # a tie: by name, so that the order is stable
        ([], []),
    ],
)
def test_admission_order(waiting: list[Waiting], order: list[str]) -> None:
    assert [x.node for x in admission_order(waiting)] == order


@pytest.mark.parametrize(
    ("weights", "room_now", "room_next", "nothing_in_flight", "admitted"),
    [
        ([100, 100, 100], 250, 0, True, 2),  # the next window is fully booked: no straddling
        ([100, 100, 100], 250, 100, False, 3),  # the third straddles: 50 now, 50 in the next window
        ([300, 300, 300], 400, 400, True, 2),  # the second takes the rest of this window: the third waits
        ([100, 50], 120, 0, True, 1),  # strictly in order: the 50 does not overtake
        ([900], 100, 100, True, 1),  # too big for two windows: alone, when nothing else reconciles
        ([900], 100, 100, False, 0),  # ... but not beside others
        ([100], 0, 400, False, 0),  # the window is spent: nobody starts into it
        ([100], -40, 400, True, 0),  # the window is over-spent (by another host): wait for the next
        ([100], 0, 400, True, 0),
    ],
)
def test_admissible(
    weights: list[int], room_now: int, room_next: int, nothing_in_flight: bool, admitted: int
) -> None:
    ordered = [w(f"n{i}", down=i, weight=x) for i, x in enumerate(weights)]
    chosen = admissible(ordered, room_now=room_now, room_next=room_next, nothing_in_flight=nothing_in_flight)
    assert [c.waiting.node for c in chosen] == [f"n{i}" for i in range(admitted)]
    assert all(c.now + c.later == c.waiting.weight for c in chosen)


def test_a_node_straddling_two_windows_books_the_rest_in_the_next() -> None:
    chosen = admissible([w("a", weight=300), w("b", weight=300)], room_now=400, room_next=400,
                        nothing_in_flight=True)  # fmt: skip
    assert [(c.now, c.later) for c in chosen] == [(300, 0), (100, 200)]


def test_the_ledger_carries_unspent_bookings_into_the_next_window() -> None:
    ledger = Ledger()
    ledger.follow(60_000, 60_000, used=0)
    ledger.book("a", Admission(w("a", weight=900), now=800, later=100))
    ledger.follow(60_000, 60_000, used=500)  # a spent 500 of its 800 so far
    ledger.follow(120_000, 60_000, used=0)
    assert (ledger.now, ledger.next) == (100 + 300, 0)  # its later part, and the 300 it did not get to
    # A window nobody looked at: the bookings are history.
    ledger.follow(240_000, 60_000, used=7)
    assert (ledger.now, ledger.next, ledger.used) == (0, 0, 7)


def test_unspent_bookings_are_shared_by_what_each_node_booked() -> None:
    ledger = Ledger()
    ledger.follow(0, 60_000, used=0)
    ledger.book("a", Admission(w("a", weight=600), now=600, later=0))
    ledger.book("b", Admission(w("b", weight=500), now=300, later=200))
    ledger.follow(0, 60_000, used=600)  # 300 of the 900 booked not spent: a's 200, b's 100 (rounded up)
    ledger.follow(60_000, 60_000, used=0)
    assert (ledger.now_by, ledger.next) == ({"a": 200, "b": 200 + 100}, 0)


@pytest.mark.parametrize(
    ("release_after_windows", "left_now", "left_next"),
    [
        (0, 0, 0),  # released in the window it was admitted in
        (1, 0, 0),  # a window later: its later part and what it carried over both go
        (2, 0, 0),  # two windows later: what it still carried goes
    ],
)
def test_a_released_node_gives_back_all_it_still_booked(
    release_after_windows: int, left_now: int, left_next: int
) -> None:
    ledger = Ledger()
    ledger.follow(0, 60_000, used=0)
    ledger.book("a", Admission(w("a", weight=500), now=300, later=200))
    for window in range(1, release_after_windows + 1):
        ledger.follow(window * 60_000, 60_000, used=0)  # nothing spent: everything carried
    assert ledger.now > 0 or release_after_windows == 0
    ledger.cancel("a")
    assert (ledger.now, ledger.next) == (left_now, left_next)


def test_a_released_node_leaves_the_others_bookings_as_they_were() -> None:
    """The defect this replaced: a node released a window after its admission took back only its later
    part, so what it carried held the window's room for nobody (a daemon restart's second minute ran at a
    third of the budget)."""
    ledger = Ledger()
    ledger.follow(0, 60_000, used=0)
    ledger.book("a", Admission(w("a", weight=888), now=888, later=0))
    ledger.book("b", Admission(w("b", weight=888), now=888, later=0))
    ledger.book("c", Admission(w("c", weight=888), now=384, later=504))
    ledger.follow(0, 60_000, used=1979)
    ledger.follow(60_000, 60_000, used=0)
    carried = dict(ledger.now_by)
    # c's later part, and the 181 unspent shared 888:888:384 (75, 75, 33: each rounded up).
    assert carried == {"a": 75, "b": 75, "c": 504 + 33}
    ledger.cancel("a")
    ledger.cancel("b")
    assert ledger.now_by == {"c": 537}  # before: 685 stayed booked until the window ended
    ledger.cancel("c")
    assert (ledger.now, ledger.next) == (0, 0)


def test_expected_weight_follows_the_measured_restart_cost() -> None:
    # bench/restart_weight.py: 1 symbol 153, 50 symbols 888 (restart with cache).
    assert (expected_weight(1), expected_weight(50), expected_weight(0)) == (153, 888, 138)


class Depths:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        self.seen.append((group, depth))


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def budgeted_gate(
    redis: aioredis.Redis, traders: dict[str, str], *, running: bool = True
) -> AsyncIterator[tuple[ReconcileGate, str, Depths]]:
    """A gate (its loop running, or not) on a fresh rate group whose budget a node published: 400 weight per
    window for recoveries. Its keys go afterwards."""
    group = f"test-gate-{uuid.uuid4().hex[:8]}"
    await redis.hset(
        rate_budget.limits_key(group), mapping={"weight": 500, "window_ms": 60_000, "recovery_budget": 400}
    )
    depths = Depths()
    gate = ReconcileGate(redis=lambda: redis, observer=depths, call_timeout_s=2)
    task = asyncio.create_task(gate.run(), name="test.gate") if running else None
    try:
        yield gate, group, depths
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await redis.delete(rate_budget.limits_key(group), *(gate_key(t) for t in traders.values()))


@pytest.mark.redis
async def test_the_gate_admits_in_order_within_the_group_budget(redis: aioredis.Redis) -> None:
    traders = {name: f"GATE{uuid.uuid4().hex[:6].upper()}-{name}" for name in ("a", "b", "c")}
    async with budgeted_gate(redis, traders) as (gate, group, depths):
        # A node heavier than the window: alone, at once, booking all of this window and 300 of the next.
        flat = await gate.enqueue(
            node="a", trader_id=traders["a"], group=group, waiting=w("a", down=1, weight=700)
        )
        assert flat.admitted.is_set()
        held = await gate.enqueue(
            node="b", trader_id=traders["b"], group=group, waiting=w("b", positions=True, down=5, weight=300)
        )
        late = await gate.enqueue(
            node="c", trader_id=traders["c"], group=group, waiting=w("c", down=0, weight=50)
        )
        # This window is booked by a: b (positions) is next, and c (small) may not overtake it.
        assert not held.admitted.is_set() and not late.admitted.is_set()
        assert gate.place(held) == (1, 2) and gate.place(late) == (2, 2)
        assert depths.seen[-1] == (group, 2)
        assert await redis.lrange(gate_key(traders["a"]), 0, -1) == [b"admitted"]
        assert await redis.llen(gate_key(traders["b"])) == 0

        gate.release("a")  # a reconciled
        async with asyncio.timeout(5):
            await held.admitted.wait()
            await late.admitted.wait()  # 300 + 50 fit in 400
        assert await redis.lrange(gate_key(traders["b"]), 0, -1) == [b"admitted"]
        assert depths.seen[-1] == (group, 0)


@pytest.mark.redis
async def test_nodes_enqueued_together_are_each_admitted_and_booked_once(redis: aioredis.Redis) -> None:
    """A daemon restart enqueues every node at once. Each enqueue runs an admission round: rounds that read
    the rooms before another booked admitted the same nodes again (a node booked 13 times in a storm)."""
    traders = {f"n{i:02d}": f"GATE{uuid.uuid4().hex[:6].upper()}-{i}" for i in range(12)}
    async with budgeted_gate(redis, traders, running=False) as (gate, group, _):
        tickets = await asyncio.gather(
            *(
                gate.enqueue(node=name, trader_id=trader, group=group, waiting=w(name, down=i, weight=150))
                for i, (name, trader) in enumerate(traders.items())
            )
        )
        admitted = [t.node for t in tickets if t.admitted.is_set()]
        # 400 now and 400 next: two whole nodes and one straddling, then the next would not fit the window.
        assert admitted == ["n00", "n01", "n02"]
        for name in admitted:
            assert await redis.lrange(gate_key(traders[name]), 0, -1) == [b"admitted"]
        assert gate.booked(group) == (400, 50)


@pytest.mark.redis
async def test_a_node_far_back_in_the_queue_starts_its_process_when_its_turn_nears(
    redis: aioredis.Redis,
) -> None:
    """Cold starts compete for the host's cores: a node is started when the queue ahead of it weighs less
    than a window's budget, so the nodes that reconcile first get the cores first."""
    traders = {f"n{i}": f"GATE{uuid.uuid4().hex[:6].upper()}-{i}" for i in range(6)}
    async with budgeted_gate(redis, traders) as (gate, group, _):
        tickets = {}
        for i, (name, trader) in enumerate(traders.items()):
            waiting = w(name, down=i, weight=300)
            tickets[name] = await gate.enqueue(node=name, trader_id=trader, group=group, waiting=waiting)
        # n0 and n1 (straddling) are admitted; of the queue n2..n5, 0, 300 and 600 weigh ahead of n2, n3, n4.
        assert [n for n, t in tickets.items() if t.admitted.is_set()] == ["n0", "n1"]
        assert [n for n, t in tickets.items() if gate.may_spawn(t)] == ["n0", "n1", "n2", "n3"]
        assert gate.weight_ahead(tickets["n5"]) == 900
        moved = gate.next_move()
        gate.release("n0")  # n0 reconciled: its booking goes, n2 fits what is left of the next window
        assert moved.is_set()
        async with asyncio.timeout(5):
            await tickets["n2"].admitted.wait()
        assert gate.may_spawn(tickets["n4"]) and not gate.may_spawn(tickets["n5"])


@pytest.mark.redis
@pytest.mark.slow
async def test_a_node_stopped_while_it_waits_for_its_turn_never_starts(
    redis: aioredis.Redis, runners: RunnerFactory, observer: RecordingObserver
) -> None:
    """The runner of a node far back in the queue holds no process; a stop (the daemon shutting down) ends its
    wait at once; a node whose turn comes is started."""
    fleet = parse_fleet((REPO / "fleet.yaml").read_text(), str(REPO / "fleet.yaml"))
    suffix = uuid.uuid4().hex[:6].upper()
    specs = [msgspec.structs.replace(fleet.nodes[i], trader_id=f"GATE{suffix}-{i}") for i in (0, 1)]
    venue = fleet.venues[specs[0].venues[0]]
    group = rate_budget.rate_group(venue, "test-host")
    await redis.hset(
        rate_budget.limits_key(group), mapping={"weight": 500, "window_ms": 60_000, "recovery_budget": 400}
    )
    await rate_budget_spent(redis, group)
    gate = ReconcileGate(redis=lambda: redis, observer=Depths(), call_timeout_s=2)
    node_gate = NodeGate(gate=gate, redis=lambda: redis, fleet=lambda: fleet, host="test-host")
    ahead = await gate.enqueue(
        node="ahead", trader_id=f"GATE{suffix}-x", group=group, waiting=w("ahead", positions=True, weight=500)
    )
    try:
        assert not ahead.admitted.is_set()  # the window is spent
        waiting = runners(specs[0], argv=[sys.executable, str(TEST_NODE)], gate=node_gate)
        await observer.wait_for(lambda: any(p.name == "queued" for _, p in observer.phases))
        assert (waiting.state, waiting.status().pid) == (NodeState.STARTING, None)
        async with asyncio.timeout(5):
            await waiting.stop()
        assert (waiting.state, waiting.status().pid) == (NodeState.STOPPED, None)
        assert not any(p.name == "spawned" for _, p in observer.phases)
        assert [(r.result, r.error) for r in observer.reports] == [
            ("stopped", "stopped while queued, never started")
        ]

        started = runners(specs[1], argv=[sys.executable, str(TEST_NODE)], gate=node_gate)
        await observer.wait_for(lambda: sum(p.name == "queued" for _, p in observer.phases) == 2)
        assert started.status().pid is None
        gate.release("ahead")  # its turn: nothing weighs ahead of it any more
        await observer.wait_for(lambda: started.status().pid is not None, timeout=10)
    finally:
        await redis.delete(
            rate_budget.limits_key(group),
            *(gate_key(t) for t in [ahead.trader_id, *(s.trader_id for s in specs)]),
            *[k async for k in redis.scan_iter(match=f"{rate_budget.weight_key_base(group)}*")],
        )


async def rate_budget_spent(redis: aioredis.Redis, group: str) -> None:
    """The group's current window is spent (as if another host used it)."""
    seconds, micros = await redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    start = now_ms - now_ms % 60_000
    await redis.set(f"{rate_budget.weight_key_base(group)}:{start}", 500, px=120_000)


@pytest.mark.redis
async def test_a_venue_refusal_holds_the_queue_until_its_retry_after(redis: aioredis.Redis) -> None:
    group = f"test-gate-{uuid.uuid4().hex[:8]}"
    trader = f"GATE{uuid.uuid4().hex[:6].upper()}-x"
    await redis.set(rate_budget.pause_key(group), 0)
    # The group is paused (a 429's Retry-After) for 1.5 s: nobody is admitted, not even alone.
    now_ms = int((await redis.time())[0]) * 1000
    await redis.set(rate_budget.pause_key(group), now_ms + 1500, px=1500)
    gate = ReconcileGate(redis=lambda: redis, observer=Depths(), call_timeout_s=2)
    task = asyncio.create_task(gate.run(), name="test.gate")
    try:
        ticket = await gate.enqueue(node="x", trader_id=trader, group=group, waiting=w("x", weight=10))
        assert not ticket.admitted.is_set()
        async with asyncio.timeout(5):
            await ticket.admitted.wait()
        assert ticket.waited_s >= 0.5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.delete(rate_budget.pause_key(group), gate_key(trader))
