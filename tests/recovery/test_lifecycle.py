"""The node process around recovery: the gate, strategy outcomes, the corrupt cache, saved state, the seed
position hash and the watchdog."""

from __future__ import annotations

import msgspec
import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from tests.recovery.cache_reader import read_cache
from tests.recovery.conftest import BTC, NodeLauncher, node_spec, probe_strategy
from tests.recovery.scenarios import open_position_with_stop, redis_dump, stop_probe, until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

STATE_KEY = "strategies:HubProbe-001:state"


async def test_orders_are_denied_until_recovery_ends(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    """The RiskEngine is HALTED from TradingNode() until every strategy is ready: a strategy's submit during
    recovery is denied by nautilus and never reaches the venue."""
    node = await nodes.start(node_spec(venue, trader_id, [probe_strategy(submit_during_recovery="GATE-1")]))
    await node.wait_ready()
    assert await node.terminate() == 0
    assert read_cache(trader_id).orders["GATE-1"].status == "DENIED"
    assert await venue.admin.attempts("GATE-1") == {}  # the venue never saw it


@pytest.mark.parametrize(("fatal", "code"), [(True, 78), (False, 1)])
async def test_a_strategy_that_fails_recovery_stops_the_node(
    fatal: bool, code: int, venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    strategy = probe_strategy(fail_reason="state key probe:v1 does not decode", fail_fatal=fatal)
    node = await nodes.start(node_spec(venue, trader_id, [strategy]))
    assert await node.wait_exit() == code
    assert not node.ready
    if fatal:
        assert node.fatal is not None and "state key probe:v1 does not decode" in node.fatal["X_FATAL"]
    else:
        assert node.detail("recovery_failed")["strategy"] == "HubProbe-001"


@pytest.mark.parametrize(("fatal", "code"), [(True, 78), (False, 1)])
async def test_a_strategy_that_fails_while_trading_stops_the_node(
    fatal: bool, code: int, venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    strategy = probe_strategy(fail_when_active="lost track of its stop", fail_fatal=fatal)
    node = await nodes.start(node_spec(venue, trader_id, [strategy]))
    await node.wait_ready()
    assert await node.wait_exit() == code
    if fatal:
        assert node.fatal is not None and "lost track of its stop" in node.fatal["X_FATAL"]
    else:
        assert "failed while trading" in [m["STATUS"] for m in node.messages if "STATUS" in m][-1]


async def test_strategies_not_ready_in_time_fail_with_what_they_wait_for(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    spec = node_spec(venue, trader_id, [probe_strategy(report_ready=False)], ready_timeout="8s")
    node = await nodes.start(spec)
    assert await node.wait_exit() == 1
    failed = node.detail("recovery_failed")
    assert failed["step"] == "strategies ready"
    assert failed["waiting_for"] == {"HubProbe-001": "warmed"}
    assert node.phases()[:5] == ["cache_loaded", "reconciled", "state_restored", "orders_restored", "warmed"]


async def test_corrupt_cache_entry_is_named_fatal_and_nothing_is_deleted(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    assert await first.terminate() == 0
    key = f"trader-{trader_id}:positions:{BTC}-HubProbe-001"
    await redis_client.lset(key, 0, b"\xc1 not msgpack")  # type: ignore[arg-type]  # bytes are fine
    before = await redis_dump(redis_client, f"trader-{trader_id}:*")

    node = await nodes.start(spec)
    assert await node.wait_exit() == 78
    assert node.fatal is not None
    assert key in node.fatal["X_FATAL"]
    assert not node.ready and "cache_loaded" not in node.phases()
    assert await redis_dump(redis_client, f"trader-{trader_id}:*") == before


async def test_state_is_saved_on_a_clean_stop_and_never_by_a_failed_start(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec = node_spec(venue, trader_id, [probe_strategy()])
    node = await nodes.start(spec)
    await node.wait_ready()
    assert await node.terminate() == 0
    key = f"trader-{trader_id}:{STATE_KEY}"
    state = await redis_client.get(key)
    assert isinstance(state, bytes)
    assert msgspec.msgpack.decode(state) == {"probe": b"saved-on-clean-stop"}
    # State from "an earlier run" that differs from what on_save would write now: a failed start that
    # saved would overwrite it.
    await redis_client.set(key, msgspec.msgpack.encode({"probe": b"from-an-earlier-run"}))
    saved = await redis_client.dump(key)
    await venue.admin.http_error("/fapi/v3/positionRisk", 503, count=None)
    failed = await nodes.start(spec)
    assert await failed.wait_exit() == 1
    assert await redis_client.dump(key) == saved


async def test_seed_position_hash_follows_the_position(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """positions:{trader_id}:{venue}:{instrument} is written on position events, re-synced after
    reconciliation (events can be lost in a crash) and deleted when the position closes."""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    key = f"positions:{trader_id}:emu:{BTC}"

    async def hash_is_long() -> bool:
        fields = await redis_client.hgetall(key)
        return fields.get(b"side") == b"LONG" and fields.get(b"quantity") == b"0.010"

    await until("the hash shows the long", hash_is_long)
    fields = await redis_client.hgetall(key)
    assert fields[b"avg_entry_price"] == b"60000.00" and fields[b"instrument_id"] == BTC.encode()
    assert int(fields[b"ts_opened"]) > 0 and int(fields[b"ts_last_updated"]) >= int(fields[b"ts_opened"])

    await first.kill()
    await redis_client.delete(key)  # as if the last write was lost in the crash
    node = await nodes.start(spec)
    await node.wait_ready()
    await until("the hash is re-synced after reconciliation", hash_is_long)

    await venue.admin.set_price("BTCUSDT", "54900.0")  # the stop fills while the node runs

    async def hash_gone() -> bool:
        return int(await redis_client.exists(key)) == 0

    await until("the hash is deleted when the position closes", hash_gone)
    assert await node.terminate() == 0


async def test_watchdog_pings_come_from_the_node_loop(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    node = await nodes.start(node_spec(venue, trader_id, [stop_probe()]), watchdog_usec=400_000)
    await node.wait_ready()
    start = sum(1 for m in node.messages if m.get("WATCHDOG") == "1")
    await node.wait_until(
        "three more pings", lambda: sum(m.get("WATCHDOG") == "1" for m in node.messages) >= start + 3
    )
    assert await node.terminate() == 0


async def test_a_failed_resync_after_a_user_stream_reconnect_stops_the_node(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The stock client swallows a failed re-sync after a listen key expires; ours retries, then halts
    trading and stops the node non-zero, so the supervisor restarts it into a full recovery."""
    _, node = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    since = max((int(e["seq"]) for e in await venue.admin.requests()), default=0)
    await venue.admin.expire_listen_key()

    async def resynced() -> bool:
        return any(e["path"] == "/fapi/v1/userTrades" for e in await venue.admin.requests(since=since))

    await until("a re-sync after the reconnect", resynced)
    assert node.process.returncode is None  # a good re-sync changes nothing
    await venue.admin.http_error("/fapi/v1/userTrades", 503, count=None)
    await venue.admin.expire_listen_key()
    assert await node.wait_exit() == 1
    statuses = [m["STATUS"] for m in node.messages if "STATUS" in m]
    assert "re-sync with the venue after a user stream reconnect failed" in statuses[-1]


@pytest.mark.parametrize("problem", ["missing secret", "two venues", "strategy raises at import"])
async def test_a_spec_the_node_cannot_run_is_fatal(
    problem: str, venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    spec = node_spec(venue, trader_id, [probe_strategy()])
    if problem == "missing secret":
        spec["venues"]["emu"]["api_secret"] = {"env": "RN_TEST_UNSET_SECRET"}
        expected = "RN_TEST_UNSET_SECRET is not set"
    elif problem == "strategy raises at import":
        # Without config_path the node imports the module to find its config class (recovery.build).
        spec["node"]["strategies"] = [{"path": "tests.recovery.broken_strategy:Broken", "config": {}}]
        expected = "strategy tests.recovery.broken_strategy:Broken does not import: TypeError: unsupported"
    else:
        spec["node"]["venues"] = ["emu", "emu2"]
        spec["venues"]["emu2"] = spec["venues"]["emu"]
        expected = "a strategy node trades exactly one"
    node = await nodes.start(spec)
    assert await node.wait_exit() == 78
    assert node.fatal is not None and expected in node.fatal["X_FATAL"]
