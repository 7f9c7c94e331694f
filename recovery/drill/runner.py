"""`run_drill`: the user's strategy nodes under the real daemon against an emulator the drill started, killed
with SIGKILL at planned moments, the venue moved while they are down, and every recovery checked.

The sequence: refuse what is not safe (`fleet_copy.refusals`), plan from the seed (`plan.py`), start the
emulator with one generated account per node, write the run's fleet file (`fleet_copy.derive`), follow the
recovery reports on MQTT, start the daemon and wait for the cold start; then per planned action: move the
market, kill, move the venue, wait for the recovery report, check (`invariants.py`); at the end check every
node once more, stop everything, delete the run's Redis keys and retained topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml
from redis.exceptions import RedisError

from emulator.admin import AdminApiError, AdminClient
from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from recovery.drill.cache_reader import RedisLocation
from recovery.drill.fleet_copy import (
    INSTRUMENT_SUFFIX,
    DrillFleet,
    DrillNode,
    DrillRefused,
    derive,
    fleet_document,
    refusals,
    symbol_of,
)
from recovery.drill.invariants import (
    READY,
    Violation,
    book_violations,
    ready_violations,
    restored_states,
    state_violations,
)
from recovery.drill.market import BarMarket, Market
from recovery.drill.observe import Observer
from recovery.drill.plan import Moment, PlannedKill, VenueMove, plan_drill
from recovery.drill.report import ActionRecord, DrillReport
from supervisor.config import instruments_of, load_fleet, parse_fleet, resolve_paths, venue_account
from supervisor.config.schema import FleetSpec, NodeSpec
from supervisor.emulated_fleet import FleetDaemon, RecoveryReports, forget_keys, forget_traders
from supervisor.rate_budget import KEY_PREFIX as RATE_BUDGET_PREFIX
from supervisor.secrets import resolve_secret

KILLED_BY_US = "signal: killed by SIGKILL"  # the report of an attempt the drill killed while it recovered
ORDER_STEPS = 12  # market steps an `after_order` kill waits for an order of the node's before it falls back
ORDER_WAIT_S = 0.6  # after each of those steps (a strategy answers a bar within milliseconds)
SETTLE_QUIET_S = 0.5  # the venue unchanged this long: the strategies have reacted to the last move
SETTLE_WITHIN_S = 10.0
CHECK_WITHIN_S = 10.0  # venue and cache must agree within this after READY (a replacement stop comes first)
STATE_READ_DELAY_S = 0.1  # after the freeze: a state write already on the wire reaches Redis first
# A `recovering` kill lands as the restarted process reports one of these phases (`pick` chooses).
RECOVERING_PHASES = ("spawned", "cache_loaded", "reconciled")


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, kw_only=True)
class DrillOptions:
    config: Path
    kills: int = 5
    seed: int | None = None  # None: drawn now (and reported)
    market: Callable[[DrillFleet], Market] | None = None  # default: BarMarket over the fleet's symbols
    # The emulator's request weight per minute and address (Binance: 2,400). The drill restarts nodes every
    # few seconds, far more often than any fleet crashes: at Binance's limit the fleet's request budget, not
    # recovery, would decide how long a recovery takes (and time it out).
    weight_limit: int = 50_000
    keep_work: bool = False
    progress: Callable[[str], None] = say
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def load_for_drill(path: Path) -> FleetSpec:
    """The user's file, validated without host checks: the drill replaces the venue credentials, and the
    daemon checks the rest (Redis, MQTT secrets) on the run's own file."""
    spec = parse_fleet(path.read_text(encoding="utf-8"), str(path), base_dir=path.resolve().parent)
    reasons = refusals(spec)
    if reasons:
        raise DrillRefused(str(path), reasons)
    return spec


async def run_drill(options: DrillOptions) -> DrillReport:
    spec = load_for_drill(options.config)
    seed = options.seed if options.seed is not None else secrets.randbelow(1_000_000)
    names = [n.name for n in spec.nodes if n.enabled and n.strategies is not None]
    plan = plan_drill(seed, names, options.kills)
    run_id = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="nf-drill-"))
    started = time.monotonic()
    try:
        report = await _Drill(options, spec, plan=plan, seed=seed, run_id=run_id, work=work).run()
    finally:
        if options.keep_work:
            options.progress(f"drill: work directory kept (logs, the run's fleet.yaml): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.duration_s = time.monotonic() - started
    return report


class _Drill:
    def __init__(
        self,
        options: DrillOptions,
        spec: FleetSpec,
        *,
        plan: tuple[PlannedKill, ...],
        seed: int,
        run_id: str,
        work: Path,
    ) -> None:
        self.options = options
        self.say = options.progress
        self.spec = spec
        self.plan = plan
        self.seed = seed
        self.run_id = run_id
        self.work = work
        self.market_rng = random.Random(f"{seed}:market")

    async def run(self) -> DrillReport:
        accounts = {
            account: AccountSpec(
                name=account, api_key=secrets.token_hex(16), api_secret=secrets.token_hex(32)
            )
            for account in dict.fromkeys(self._accounts())
        }
        symbols = sorted({i.removesuffix("-PERP.BINANCE") for n in self.spec.nodes for i in _instruments(n)})
        self.say(
            f"drill: {self.options.config}, seed {self.seed}, {len(self.plan)} kill actions; "
            f"starting the emulator ({', '.join(symbols)}) ..."
        )
        async with running_emulator(
            seed=self.seed,
            symbols=symbols,
            accounts=list(accounts.values()),
            workdir=self._dir("emulator"),
            extra_args=["--weight-limit", str(self.options.weight_limit)],
        ) as venue:
            fleet = derive(
                self.spec,
                run_id=self.run_id,
                work=self.work,
                http_url=venue.http_url,
                ws_url=venue.ws_url,
                kills=len(self.plan),
            )
            report = DrillReport(
                seed=self.seed,
                config=str(self.options.config),
                fleet=self.spec.fleet,
                run_id=self.run_id,
                nodes={n.name: n.trader_id for n in fleet.nodes},
                left_out=list(fleet.left_out),
            )
            env = self._environment(fleet, accounts)
            try:
                await self._run_fleet(fleet, venue, env, report)
            finally:
                try:
                    await forget_traders(fleet.spec.redis, [n.trader_id for n in fleet.nodes], env)
                    # The run's request budget (its rate group and order scopes name the emulator's URL).
                    budget = f"{RATE_BUDGET_PREFIX}:*{venue.http_url}[@/]*"
                    await forget_keys(fleet.spec.redis, budget, environ=env)
                except (OSError, RedisError) as exc:  # said, not raised over the drill's own outcome
                    traders = ", ".join(report.nodes.values())
                    self.say(f"drill: could not delete the Redis keys of {traders}: {exc}")
        return report

    def _accounts(self) -> list[str]:
        return [
            venue_account(self.spec, n.venues[0])
            for n in self.spec.nodes
            if n.enabled and n.strategies is not None
        ]

    def _dir(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _environment(self, fleet: DrillFleet, accounts: dict[str, AccountSpec]) -> dict[str, str]:
        env = dict(self.options.environ)
        for account, (key_env, secret_env) in fleet.credentials.items():
            env[key_env] = accounts[account].api_key
            env[secret_env] = accounts[account].api_secret
        # The nodes run with this interpreter (`python -m recovery.node`), as `fleet run` from its venv would.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        # The daemon announces itself under $XDG_RUNTIME_DIR (supervisor.discovery): in the run's directory,
        # so that `fleet status` in the user's shell never finds the drill's daemon instead of theirs.
        env["XDG_RUNTIME_DIR"] = str(self._dir("xdg"))
        return env

    async def _run_fleet(
        self, fleet: DrillFleet, venue: EmulatorProcess, env: dict[str, str], report: DrillReport
    ) -> None:
        config = self.work / "fleet.yaml"
        config.write_text(yaml.safe_dump(fleet_document(fleet.spec), sort_keys=False))
        load_fleet(config, env)  # the run's file must load as the daemon will load it (secrets present)
        paths = resolve_paths(fleet.spec, env)
        market = (self.options.market or (lambda f: BarMarket(f.symbols)))(fleet)
        await market.prepare(venue.admin)
        reports = RecoveryReports(fleet.prefix)
        follower = asyncio.create_task(
            reports.run(fleet.spec.mqtt, env, client_id=f"fleet-drill-{self.run_id}-watch"), name="drill.mqtt"
        )
        daemon = FleetDaemon(
            config=config,
            control_socket=paths.control_socket,
            work=self.work,
            env=env,
            log=self.work / "fleet.log",
        )
        redis = _redis(fleet.spec, env)
        observer = Observer(venue.admin, redis, _location(fleet.spec, env))
        try:
            await _first(reports.subscribed(), follower, f"the MQTT broker {fleet.spec.mqtt.host}")
            self.say(
                f"drill: fleet run on the run's copy ({config}); cold start of {len(fleet.nodes)} nodes ..."
            )
            await daemon.start()
            await self._cold_start(fleet, daemon, reports)
            run = _Run(
                self,
                fleet,
                admin=venue.admin,
                daemon=daemon,
                reports=reports,
                observer=observer,
                market=market,
            )
            await run.actions(report)
            if not report.aborted:
                await run.final_check(report)
        finally:
            code = await daemon.stop()
            self.say(f"drill: fleet stopped (daemon exit {code})")
            with contextlib.suppress(Exception):
                await reports.clear_retained()
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            await redis.aclose()

    async def _cold_start(self, fleet: DrillFleet, daemon: FleetDaemon, reports: RecoveryReports) -> None:
        within = max(float(n.ready_timeout) for n in fleet.spec.nodes) + 30
        names = {n.name for n in fleet.nodes}
        try:
            await daemon.wait_nodes(
                "every node READY after its cold start",
                lambda s: all(s[n]["state"] == "ready" for n in names if n in s),
                within=within,
            )
        except TimeoutError as exc:
            errors = [f"{r['node']}: {r['error']}" for r in reports.reports if r.get("result") != "ready"]
            keep = "" if self.options.keep_work else "; --keep-work keeps the daemon's and the nodes' logs"
            raise RuntimeError(f"{exc}; {'; '.join(errors) or 'no recovery report failed'}{keep}") from None
        self.say(f"drill: all {len(names)} nodes READY")


class _Run:
    """One drill's actions on a running fleet."""

    def __init__(
        self,
        drill: _Drill,
        fleet: DrillFleet,
        *,
        admin: AdminClient,
        daemon: FleetDaemon,
        reports: RecoveryReports,
        observer: Observer,
        market: Market,
    ) -> None:
        self.drill = drill
        self.say = drill.say
        self.fleet = fleet
        self.admin = admin
        self.daemon = daemon
        self.reports = reports
        self.observer = observer
        self.market = market

    async def actions(self, report: DrillReport) -> None:
        total = len(self.drill.plan)
        for planned in self.drill.plan:
            record = ActionRecord(plan=planned)
            report.actions.append(record)
            try:
                await self.action(planned, record)
            except Exception as exc:  # the drill cannot go on: the report keeps what was done, and why
                report.aborted = f"action {planned.index}: {type(exc).__name__}: {exc}"
                record.result = "aborted"
                self.say(f"[{planned.index}/{total}] {planned.describe()}: ABORTED: {exc}")
                return
            marks = "ok" if not record.violations else f"{len(record.violations)} VIOLATIONS"
            self.say(
                f"[{planned.index}/{total}] {planned.describe()}: {record.moment_note}"
                f"{'; ' + record.move_note if record.move_note else ''}; {record.result.upper()} "
                f"(position {_ms(record.position_ms)}, full {_ms(record.full_ms)}): {marks}"
            )
            for violation in record.violations:
                self.say(f"    {violation.check}: {violation.message}")

    async def action(self, planned: PlannedKill, record: ActionRecord) -> None:
        node = self.fleet.node(planned.node)
        if planned.moment is not Moment.AFTER_ORDER:  # that one moves the market until the node trades
            for _ in range(planned.market_steps):
                await self.settle()
                record.market.append(await self.market.step(self.admin, self.drill.market_rng))
        await self.settle()
        if planned.moment is Moment.AFTER_ORDER:
            record.moment_note = await self.await_order(node, record)
        else:
            record.moment_note = "killed idle" if planned.moment is Moment.IDLE else ""
        mark = self.reports.mark()
        recovering = planned.moment is Moment.RECOVERING
        pid = await self.kill(node, record, "ready", freeze=not recovering)
        frozen: int | None = pid
        if recovering:
            mark, note, frozen = await self.kill_while_recovering(node, record, pid, planned.pick)
            record.moment_note = note
        # The process is frozen, not dead yet: it does nothing more at the venue or in Redis, and the daemon
        # restarts nothing before the SIGKILL. A warm spare brings a node back in about 100 ms, faster than
        # a venue move: frozen, the node is down for the move and the state read however fast it recovers.
        try:
            await asyncio.sleep(STATE_READ_DELAY_S)
            record.move_note = await self.move_venue(node, planned)
            at_kill = await self.observer.states(node.trader_id)
        finally:  # never leave a frozen node behind, whatever failed
            if frozen is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(frozen, signal.SIGKILL)
        within = self.recovery_within(node)
        try:
            recovery = await self.reports.next_report(
                node.name, after=mark, within=within, accept=lambda r: r.get("error") != KILLED_BY_US
            )
        except TimeoutError:
            raise TimeoutError(f"no recovery report of {node.name} within {within:.0f}s") from None
        record.result = str(recovery.get("result"))
        record.attempt = recovery.get("attempt")
        record.position_ms = recovery.get("position_recovery_ms")
        record.full_ms = recovery.get("full_recovery_ms")
        record.violations += ready_violations(node.name, recovery)
        if recovery.get("result") != READY:
            recovery = await self.back_ready(node, after=self.reports.reports.index(recovery) + 1)
            record.result = f"{record.result}, then ready (attempt {recovery.get('attempt')})"
        if recovery.get("result") == READY:
            now = await self.observer.states(node.trader_id)
            record.violations += state_violations(node.name, at_kill, restored_states(recovery), now)
            record.checked["state_seq_at_kill"] = {sid: r.seq for sid, r in at_kill.items()}
            record.violations += await self.check_book(node, record.checked)

    async def back_ready(self, node: DrillNode, *, after: int) -> dict[str, Any]:
        """After a failed recovery the daemon restarts the node: its next READY report. TimeoutError (the
        drill stops) when the daemon quarantines it instead, or when none comes in time."""
        ready = asyncio.create_task(
            self.reports.next_report(
                node.name,
                after=after,
                within=self.recovery_within(node),
                accept=lambda r: r.get("result") == READY,
            ),
            name="drill.back-ready",
        )
        quarantined = asyncio.create_task(
            self.daemon.wait_nodes(
                f"{node.name} quarantined",
                lambda s: s[node.name]["state"] == "quarantined",
                within=self.recovery_within(node),
            ),
            name="drill.quarantined",
        )
        done, pending = await asyncio.wait((ready, quarantined), return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if ready in done and ready.exception() is None:
            return ready.result()
        if quarantined in done and quarantined.exception() is None:
            status = quarantined.result()[node.name]
            raise TimeoutError(
                f"{node.name} never came back READY: the daemon quarantined it "
                f"({status.get('quarantine_reason')}); last error: {self.last_error(node)}"
            )
        raise TimeoutError(f"{node.name} never came back READY; last error: {self.last_error(node)}")

    def last_error(self, node: DrillNode) -> str:
        failed = [r for r in self.reports.reports if r.get("node") == node.name and r.get("result") != READY]
        return str(failed[-1].get("error")) if failed else "none reported"

    def recovery_within(self, node: DrillNode) -> float:
        spec = next(n for n in self.fleet.spec.nodes if n.name == node.name)
        return float(spec.ready_timeout) + 60

    async def settle(self) -> None:
        """Wait until the venue has been unchanged for a moment: the strategies have reacted to the last
        move (bounded: a strategy that keeps trading does not stop the drill)."""
        last: Any = None
        quiet_since = time.monotonic()
        deadline = time.monotonic() + SETTLE_WITHIN_S
        while time.monotonic() < deadline:
            state = await self.admin.state()
            now = (state["accounts"], state["subscribers"])
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= SETTLE_QUIET_S:
                return
            await asyncio.sleep(0.05)

    async def accepted(self, account: str) -> dict[str, int]:
        return {cid: int(r["accepted"]) for cid, r in (await self.admin.attempts(account=account)).items()}

    async def await_order(self, node: DrillNode, record: ActionRecord) -> str:
        """Move the market until the venue accepts an order of the node's; return then (the kill follows)."""
        before = await self.accepted(node.account)
        for _ in range(ORDER_STEPS):
            record.market.append(await self.market.step(self.admin, self.drill.market_rng, seek_order=True))
            deadline = time.monotonic() + ORDER_WAIT_S
            while time.monotonic() < deadline:
                now = await self.accepted(node.account)
                new = sorted(cid for cid, count in now.items() if count > before.get(cid, 0))
                if new:
                    return f"killed right after the venue accepted {', '.join(new)}"
                await asyncio.sleep(0.01)
        return f"no order of the node's within {ORDER_STEPS} market moves: killed idle instead"

    async def kill(self, node: DrillNode, record: ActionRecord, expected: str, *, freeze: bool) -> int:
        """SIGKILL the node's process, or with `freeze` SIGSTOP it: the kill's moment, the SIGKILL comes
        once the venue has moved."""
        status = (await self.daemon.nodes())[node.name]
        pid = status.get("pid")
        if not pid:
            raise TimeoutError(f"{node.name} has no process to kill (state {status['state']})")
        os.kill(int(pid), signal.SIGSTOP if freeze else signal.SIGKILL)
        record.kills.append({"pid": int(pid), "state": status["state"], "expected": expected})
        return int(pid)

    async def kill_while_recovering(
        self, node: DrillNode, record: ActionRecord, old_pid: int, pick: float
    ) -> tuple[int, str, int | None]:
        """Kill the restarted process before it is READY, as soon as it reports the recovery phase `pick`
        chooses (the daemon publishes each phase on MQTT). It is frozen (SIGSTOP) at that moment; the caller
        SIGKILLs the pid returned (None: it was gone already)."""
        phases = self.reports.phase_mark()
        reports = self.reports.mark()
        target = RECOVERING_PHASES[int(pick * len(RECOVERING_PHASES))]
        states = await self.daemon.wait_nodes(
            f"{node.name} restarted",
            lambda s: s[node.name]["state"] == "recovering" and s[node.name]["pid"] not in (None, old_pid),
            within=self.recovery_within(node),
        )
        pid = int(states[node.name]["pid"])
        event = await self.reports.next_phase(
            node.name, {target}, after=phases, within=self.recovery_within(node)
        )
        mark = self.reports.mark()
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return mark, f"the restarted process {pid} was gone before the second kill", None
        ready = any(
            r.get("node") == node.name and r.get("result") == READY for r in self.reports.reports[reports:]
        )
        record.kills.append(
            {
                "pid": pid,
                "state": "ready" if ready else "recovering",
                "expected": "recovering",
                "phase": target,
            }
        )
        ms = event.get("ms_since_detection")
        since = f" ({ms:.0f} ms after the crash was detected)" if isinstance(ms, int | float) else ""
        when = "before READY" if not ready else "but it was READY already"
        return mark, f"killed again at its {target} phase{since}, {when}", pid

    async def move_venue(self, node: DrillNode, planned: PlannedKill) -> str:
        if planned.move is VenueMove.NONE:
            return ""
        state = (await self.admin.state())["accounts"][node.account]
        if planned.move is VenueMove.STOP_TRIGGERED:
            return await self.trigger_stop(node, planned, state)
        return await self.change_position(node, planned, state)

    async def trigger_stop(self, node: DrillNode, planned: PlannedKill, state: dict[str, Any]) -> str:
        """One of the node's open stop-loss/take-profit orders triggers and fills at the last price."""
        algos = sorted(
            (a for a in state["open_algo_orders"] if a["symbol"] in node.symbols),
            key=lambda a: str(a["clientAlgoId"]),
        )
        if not algos:
            return "no open stop to trigger"
        algo = algos[int(planned.pick * len(algos))]
        try:
            await self.admin.trigger(client_algo_id=algo["clientAlgoId"], account=node.account)
        except AdminApiError as exc:  # it triggered or ended on its own in between
            return f"could not trigger {algo['clientAlgoId']}: {exc.message}"
        return f"triggered {algo['clientAlgoId']} while down"

    async def change_position(self, node: DrillNode, planned: PlannedKill, state: dict[str, Any]) -> str:
        """Another client of the account trades: flattens or doubles a position, or opens one."""
        held = sorted(s for s in state["positions"] if s in node.symbols)
        params: dict[str, str] = {
            "type": "MARKET",
            "newClientOrderId": f"drill-{self.drill.run_id}-{planned.index}",
        }
        if held:
            symbol = held[int(planned.pick * len(held))]
            amount = Decimal(state["positions"][symbol]["amount"])
            quantity = abs(amount)
            if planned.pick < 0.5:  # flatten it
                side = "SELL" if amount > 0 else "BUY"
                params["reduceOnly"] = "true"
            else:  # double it
                side = "BUY" if amount > 0 else "SELL"
        else:
            symbol = node.symbols[int(planned.pick * len(node.symbols))]
            orders = (await self.admin.orders(symbol, account=node.account))["orders"]
            sizes = [Decimal(o["executedQty"]) for o in orders if o["status"] == "FILLED"]
            if not sizes:
                return "flat and never traded: no position to change"
            amount, quantity = Decimal(0), sizes[-1]  # the size of the node's last filled order
            side = "BUY" if planned.pick < 0.5 else "SELL"
        params.update(symbol=symbol, side=side, quantity=str(quantity))
        try:
            order = await self.admin.place_order(params, account=node.account)
        except AdminApiError as exc:
            return f"the venue refused the drill's {side} {quantity} {symbol}: {exc.message}"
        target = amount + (quantity if side == "BUY" else -quantity)
        return (
            f"position {symbol}{INSTRUMENT_SUFFIX} changed from {amount} to {target} while down "
            f"(a {side} {quantity} by another client of the account, {params['newClientOrderId']}: "
            f"{order.get('status')})"
        )

    async def check_book(self, node: DrillNode, checked: dict[str, Any] | None = None) -> list[Violation]:
        """Venue vs cache, until they agree or CHECK_WITHIN_S has passed (then what still differs). `checked`
        receives what was compared, for the report."""
        deadline = time.monotonic() + CHECK_WITHIN_S
        while True:
            venue = await self.observer.venue_book(node.account, node.symbols)
            cache = await self.observer.cache(node.trader_id)
            found = book_violations(node.name, node.instruments, venue, cache)
            if not found or time.monotonic() > deadline:
                if checked is not None:
                    checked.update(
                        positions={i: str(venue.positions.get(symbol_of(i), 0)) for i in node.instruments},
                        open_protective=[p.client_id for p in venue.open_protective],
                        orders_compared=len(set(venue.fills) | set(cache.orders)),
                        client_order_ids=len(venue.accepted),
                    )
                return found
            await asyncio.sleep(0.3)

    async def final_check(self, report: DrillReport) -> None:
        await self.settle()
        states = await self.daemon.nodes()
        for node in self.fleet.nodes:
            state = states.get(node.name, {}).get("state")
            if state != "ready":
                report.final_violations.append(
                    Violation(
                        check=READY,
                        node=node.name,
                        message=f"{node.name} is {state} at the end",
                        evidence={"status": states.get(node.name)},
                    )
                )
            report.final_violations += await self.check_book(node)
        self.say(
            f"drill: final check of {len(self.fleet.nodes)} nodes: {len(report.final_violations)} violations"
        )


def _instruments(node: NodeSpec) -> tuple[str, ...]:
    return instruments_of(node) if node.enabled and node.strategies is not None else ()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _redis(spec: FleetSpec, env: dict[str, str]) -> aioredis.Redis:
    password = resolve_secret(spec.redis.password, env).reveal() if spec.redis.password else None
    return aioredis.Redis.from_url(
        spec.redis.url,
        password=password,
        socket_timeout=spec.redis.timeout,
        socket_connect_timeout=spec.redis.timeout,
    )


def _location(spec: FleetSpec, env: dict[str, str]) -> RedisLocation:
    password = resolve_secret(spec.redis.password, env).reveal() if spec.redis.password else None
    return RedisLocation.from_url(spec.redis.url, password)


async def _first(waiting: Any, task: asyncio.Task[None], what: str) -> None:
    """Wait for `waiting`, unless `task` ends first (then its error, naming `what`)."""
    wait = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait((wait, task), timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if wait in done:
        return
    wait.cancel()
    await asyncio.gather(wait, return_exceptions=True)
    if task in done and task.exception() is not None:
        raise RuntimeError(f"cannot follow recovery reports on {what}: {task.exception()}")
    raise RuntimeError(f"cannot follow recovery reports on {what}: no subscription within 20 s")


__all__ = ["DrillOptions", "DrillRefused", "run_drill"]
