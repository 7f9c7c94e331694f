"""The audit end to end below the daemon: real Redis (the node's readable positions and nautilus' open-order
entries, the fleet's request budget), real ccxt, the emulator as the venue (its admin API changes a position
behind the node's back). The scheduler's waits run on a fast clock; everything else is real."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess, running_emulator
from supervisor.audit.scheduler import AuditScheduler
from supervisor.config.loader import parse_fleet
from supervisor.config.schema import FleetSpec, NodeSpec
from supervisor.events import AuditResult, NodeStatus, PhaseMark, RecoveryReport
from supervisor.rate_budget import limits_key, rate_group, weight_key_base
from supervisor.states import NodeState
from tests.recovery.scenarios import until

pytestmark = [pytest.mark.redis]

BTC = "BTCUSDT-PERP.BINANCE"
SL = "SL-BTCUSDT-PERP-abcdef-g1"
HOST = "audit-test-host"


class FastClock:
    """Real time, except that the scheduler's waits (interval, confirmation, budget) pass at once."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0.01)


@dataclass
class Recorder:
    audits: list[tuple[AuditResult, RecoveryReport | None]] = field(default_factory=list)
    phases: list[PhaseMark] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        self.phases.append(phase)
        self.changed.set()

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        self.audits.append((result, report))
        self.changed.set()

    async def next_audit(
        self, after: int, timeout: float = 20.0
    ) -> tuple[AuditResult, RecoveryReport | None]:
        async with asyncio.timeout(timeout):
            while len(self.audits) <= after:
                self.changed.clear()
                await self.changed.wait()
        return self.audits[after]


@dataclass
class Setup:
    venue: EmulatorProcess
    redis: aioredis.Redis
    fleet: FleetSpec
    trader_id: str
    recorder: Recorder
    scheduler: AuditScheduler
    busy: set[str]  # rate groups whose nodes reconcile now

    @property
    def node(self) -> NodeSpec:
        return self.fleet.node("probe")

    def status(self, state: NodeState = NodeState.READY, name: str = "probe") -> NodeStatus:
        return NodeStatus(
            name=name,
            trader_id=self.trader_id,
            venues=("emu",),
            state=state,
            pid=1,
            restarts=0,
            since=time.time(),
            started_at=time.time(),
            last_exit=None,
        )

    def report(self, *phases: PhaseMark) -> RecoveryReport:
        return RecoveryReport(
            node="probe",
            trader_id=self.trader_id,
            venues=("emu",),
            attempt=1,
            reason="signal" if phases else "cold_start",
            detected_at=phases[0].epoch_ns / 1e9 if phases else None,
            phases=(
                *phases,
                PhaseMark(
                    name="ready",
                    epoch_ns=time.time_ns(),
                    mono_ns=time.monotonic_ns(),
                    ms_since_detection=None,
                ),
            ),
            position_recovery_ms=None,
            full_recovery_ms=None,
            discrepancies=(),
            actions=(),
            result="ready",
        )

    async def hold(self, quantity: str, stop_quantity: str = "0.010") -> None:
        """The node's side: its readable position and its open stop in nautilus' cache."""
        await self.redis.hset(
            f"positions:{self.trader_id}:emu:{BTC}",
            mapping={"instrument_id": BTC, "side": "LONG", "quantity": quantity},
        )
        await self.redis.sadd(f"trader-{self.trader_id}:index:orders_open", SL)
        event = {
            "type": "OrderInitialized",
            "client_order_id": SL,
            "instrument_id": BTC,
            "order_side": "SELL",
            "order_type": "STOP_MARKET",
            "quantity": stop_quantity,
            "options": {"trigger_price": "55100.0", "trigger_type": "LAST_PRICE"},
        }
        await self.redis.rpush(f"trader-{self.trader_id}:orders:{SL}", msgspec.msgpack.encode(event))

    async def venue_holds(self, quantity: str) -> None:
        await self.venue.admin.set_position("BTCUSDT", quantity, "60000")
        await self.venue.admin.place_algo_order(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "algoType": "CONDITIONAL",
                "type": "STOP_MARKET",
                "quantity": "0.010",
                "triggerPrice": "55100.0",
                "reduceOnly": "true",
                "clientAlgoId": SL,
            }
        )

    def group(self) -> str:
        return rate_group(self.fleet.venues["emu"], HOST)


def fleet_text(venue: EmulatorProcess, trader_id: str) -> str:
    return f"""\
fleet: audit-test
audit: {{interval: 5s}}
venues:
  emu:
    base_url_http: {venue.http_url}
    api_key: {{env: EMU_KEY}}
    api_secret: {{env: EMU_SECRET}}
nodes:
  - name: probe
    trader_id: {trader_id}
    venues: [emu]
    strategies:
      - {{path: "tests.recovery.recoverable_probe:RecoverableProbe", config: {{instrument_id: {BTC}}}}}
  - name: other
    trader_id: OTHER{trader_id}
    venues: [emu]
    strategies:
      - path: tests.recovery.recoverable_probe:RecoverableProbe
        config: {{instrument_id: ETHUSDT-PERP.BINANCE}}
"""


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    trader_id = f"AUDIT{uuid.uuid4().hex[:8].upper()}-001"
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    async with running_emulator(seed=3, symbols=("BTCUSDT", "ETHUSDT")) as venue:
        await venue.admin.set_price("BTCUSDT", "60000")
        fleet = parse_fleet(fleet_text(venue, trader_id), "fleet.yaml")
        env = {"EMU_KEY": venue.api_key, "EMU_SECRET": venue.api_secret}
        recorder = Recorder()
        busy: set[str] = set()
        holder: dict[str, Setup] = {}
        scheduler = AuditScheduler(
            fleet=lambda: fleet,
            redis=lambda: redis,
            call_timeout_s=2.0,
            observer=recorder,
            status_of=lambda name: holder["setup"].status(),
            env_of=lambda node: env,
            host=HOST,
            clock=FastClock(),
            confirm_after_s=0.2,
            reconciling=lambda group: group in busy,
        )
        setup = Setup(venue, redis, fleet, trader_id, recorder, scheduler, busy)
        holder["setup"] = setup
        runner = asyncio.create_task(scheduler.run(), name="test.audit-scheduler")
        try:
            yield setup
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
            for pattern in (
                f"trader-{trader_id}:*",
                f"positions:{trader_id}:*",
                f"fleet:ratelimit:*{venue.http_url}*",
            ):
                keys = [k async for k in redis.scan_iter(match=pattern)]
                if keys:
                    await redis.delete(*keys)
            await redis.aclose()


async def test_a_matching_node_is_audited_then_a_position_changed_behind_its_back_is_the_exact_diff(
    setup: Setup,
) -> None:
    await setup.hold("0.010")
    await setup.venue_holds("0.010")
    setup.scheduler.recovery_report(setup.report())

    first, amended = await setup.recorder.next_audit(0)
    assert (first.result, first.trigger, first.differences, first.error) == ("matched", "ready", (), "")
    assert amended is not None and amended.phases[-1].name == "audited"
    assert [p.name for p in setup.recorder.phases] == ["audited"]
    assert setup.scheduler.status_of("probe")["state"] == "audited"
    # Its weight (positionRisk 5, openAlgoOrders for one symbol 1) came from the rate group's budget.
    assert first.weight == 6
    used = [
        int(v)
        for k in [k async for k in setup.redis.scan_iter(match=f"{weight_key_base(setup.group())}:*")]
        if (v := await setup.redis.get(k))
    ]
    assert sum(used) >= 6

    await setup.venue.admin.set_position("BTCUSDT", "0.025", "60000")  # silently: the node is not told
    mark = len(setup.recorder.audits)
    while True:
        result, report = await setup.recorder.next_audit(mark)
        mark += 1
        if result.result != "matched":
            break
    assert (result.result, result.trigger, report) == ("mismatch", "interval", None)
    assert list(result.differences) == [
        {
            "venue": "emu",
            "what": "position",
            "instrument": BTC,
            "kind": "quantity",
            "node": {"side": "LONG", "quantity": "0.010"},
            "venue_holds": {"side": "LONG", "quantity": "0.025"},
        }
    ]
    assert setup.scheduler.status_of("probe") | {"at": None, "last_ok_at": None} == {
        "state": "mismatch",
        "at": None,
        "last_ok_at": None,
        "differences": 1,
        "error": "",
    }

    # Leaving READY: not audited until the next audit after READY.
    setup.scheduler.node_status(setup.status(NodeState.RECOVERING))
    assert setup.scheduler.status_of("probe")["state"] == "-"


async def test_a_node_ready_without_a_report_it_saw_is_audited_too(setup: Setup) -> None:
    """A node a restarted daemon adopted READY: no recovery report reaches this daemon, only its status."""
    await setup.hold("0.010")
    await setup.venue.admin.set_position("BTCUSDT", "0.020", "60000")
    setup.scheduler.node_status(setup.status(NodeState.READY))
    result, amended = await setup.recorder.next_audit(0)
    assert (result.result, result.trigger, amended) == ("mismatch", "adopted", None)
    assert ("position", "quantity") in [(d["what"], d["kind"]) for d in result.differences]
    assert setup.recorder.phases == []  # no recovery of this daemon's to mark `audited`


async def test_a_stop_the_venue_lost_is_found(setup: Setup) -> None:
    await setup.hold("0.010")
    await setup.venue.admin.set_position("BTCUSDT", "0.010", "60000")
    setup.scheduler.recovery_report(setup.report())
    result, _ = await setup.recorder.next_audit(0)
    assert result.result == "mismatch"
    assert [(d["what"], d["kind"], d.get("client_order_id")) for d in result.differences] == [
        ("protective_order", "missing_at_venue", SL)
    ]


async def test_the_audit_at_detection_and_after_ready_give_the_downtime_changes(setup: Setup) -> None:
    await setup.hold("0.010")
    await setup.venue_holds("0.010")
    await setup.venue.admin.set_wallet("10000")
    detected = PhaseMark(
        name="detected", epoch_ns=time.time_ns(), mono_ns=time.monotonic_ns(), ms_since_detection=0.0
    )
    setup.scheduler.recovery_phase(setup.status(NodeState.STARTING), detected)

    # While the node is down: the wallet moves (funding, a transfer), the node learns nothing of it.
    async def snapshot_taken() -> bool:
        return bool(await setup.venue.admin.requests(path="/fapi/v3/account"))

    await until("the venue snapshot at detection", snapshot_taken)
    await setup.venue.admin.set_wallet("9990.5")
    setup.scheduler.recovery_report(setup.report(detected))

    result, amended = await setup.recorder.next_audit(0)
    assert result.result == "matched" and result.weight == 6 + 5  # + the balances
    assert amended is not None and amended.downtime is not None
    (venue,) = amended.downtime
    assert venue["positions"] == []
    usdt = next(b for b in venue["balances"] if b["currency"] == "USDT")
    assert [Decimal(usdt[k]) for k in ("before", "after", "change")] == [
        10000,
        Decimal("9990.5"),
        Decimal("-9.5"),
    ]
    assert amended.to_json()["downtime"] == [venue]
    assert amended.phases[-1].name == "audited" and amended.phases[-1].ms_since_detection is not None


async def test_no_room_in_the_budget_defers_then_skips_without_asking_the_venue(setup: Setup) -> None:
    await setup.hold("0.010")
    await setup.venue_holds("0.010")
    # The group's budget is smaller than one audit: it never fits.
    await setup.redis.hset(
        limits_key(setup.group()), mapping={"weight": 10, "window_ms": 60_000, "recovery_budget": 3}
    )
    await setup.venue.admin.clear_requests()
    setup.scheduler.recovery_report(setup.report())
    result, _ = await setup.recorder.next_audit(0)
    assert result.result == "skipped" and "no request budget" in result.error
    assert not await setup.venue.admin.requests(path="/fapi/v3/positionRisk")


async def test_the_event_loop_keeps_running_while_the_venue_is_slow(setup: Setup) -> None:
    await setup.hold("0.010")
    await setup.venue_holds("0.010")
    await setup.venue.admin.latency("/fapi/v3/positionRisk", 1500)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick(), name="test.ticker")
    started = time.monotonic()
    setup.scheduler.recovery_report(setup.report())
    result, _ = await setup.recorder.next_audit(0)
    ticker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticker
    assert result.result == "matched" and time.monotonic() - started >= 1.5
    # A venue call on the loop would stall it for the whole 1.5 s; the bound leaves room for a loaded machine.
    assert max(gaps) < 1.0, f"the loop stalled for {max(gaps):.3f}s during the audit"


async def test_an_audit_waits_while_nodes_of_its_rate_group_reconcile(setup: Setup) -> None:
    await setup.hold("0.010")
    await setup.venue_holds("0.010")
    await setup.venue.admin.clear_requests()
    setup.busy.add(setup.group())
    setup.scheduler.recovery_report(setup.report())

    async def deferred() -> bool:
        return bool(setup.scheduler.status_of("probe")["state"] == "deferred")

    await until("the audit defers to the recovering nodes", deferred)
    assert not setup.recorder.audits
    assert not await setup.venue.admin.requests(path="/fapi/v3/positionRisk")
    setup.busy.clear()
    result, _ = await setup.recorder.next_audit(0)
    assert result.result == "matched"


async def test_an_audit_waits_while_another_node_of_its_rate_group_recovers(setup: Setup) -> None:
    await setup.hold("0.010")
    await setup.venue_holds("0.010")
    await setup.venue.admin.clear_requests()
    setup.scheduler.node_status(setup.status(NodeState.RECOVERING, name="other"))  # warming up, say
    setup.scheduler.recovery_report(setup.report())

    async def deferred() -> bool:
        return bool(setup.scheduler.status_of("probe")["state"] == "deferred")

    await until("the audit defers to the recovering node", deferred)
    assert not await setup.venue.admin.requests(path="/fapi/v3/positionRisk")
    setup.scheduler.node_status(setup.status(NodeState.READY, name="other"))
    result, _ = await setup.recorder.next_audit(0)
    assert result.result == "matched"
