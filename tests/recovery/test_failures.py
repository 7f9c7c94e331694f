"""Recovery that must fail, and how: never READY, the reason and the diff reported, a non-zero exit, and the
cached state left exactly as it was."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from tests.recovery.conftest import BTC, NodeLauncher, NodeProcess, node_spec, probe_strategy
from tests.recovery.scenarios import open_position_with_stop, redis_dump
from tests.recovery.test_restart import CLIENTS

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]


async def cached_state_keys(redis_client: aioredis.Redis, trader_id: str) -> dict[bytes, bytes | None]:
    """The keys holding orders, positions and strategy state (connect appends the venue's account state to
    the account list, which is the venue's truth; everything else must not change)."""
    found: dict[bytes, bytes | None] = {}
    for kind in ("orders", "positions", "strategies", "general", "index"):
        found.update(await redis_dump(redis_client, f"trader-{trader_id}:{kind}:*"))
    return found


async def ready_or_exit(node: NodeProcess) -> None:
    await node.wait_until("READY or exit", lambda: node.ready or node.process.returncode is not None)


@pytest.mark.parametrize("client", CLIENTS)
async def test_venue_error_fails_recovery_and_touches_nothing(
    client: str, venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Defect 5: userTrades answers 503. The stock client reads that as "no trades" and starts trading."""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    await first.kill()
    before = await cached_state_keys(redis_client, trader_id)
    await venue.admin.http_error("/fapi/v1/userTrades", 503, count=None)

    node = await nodes.start(spec, "--exec-client", client)
    await ready_or_exit(node)
    assert not node.ready
    assert await node.wait_exit() == 1
    failed = node.detail("recovery_failed")
    assert "userTrades BTCUSDT" in failed["reason"]
    # The exact diff: what the cache holds and what the venue holds (positionRisk still answered).
    assert failed["diff"] == [{"instrument": BTC, "cached_qty": "0.010", "venue_qty": "0.010"}]
    assert "reconciled" not in node.phases()
    assert await cached_state_keys(redis_client, trader_id) == before


async def test_reconciliation_that_hangs_times_out(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """nautilus never enforces its reconciliation timeout; ours ends it (the request, then the step)."""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    await first.kill()
    before = await cached_state_keys(redis_client, trader_id)
    await venue.admin.hang("/fapi/v1/allOrders", hang_ms=120_000, count=None)

    # Our reconcile bound (5 s) ends after the supervisor's ready deadline (6 s from spawn, ~2 s of which
    # are spent importing): the node extends it first, so that its own timeout fires and reports.
    spec["node"]["ready_timeout"] = "6s"
    node = await nodes.start(spec, "--reconcile-timeout", "5")
    assert await node.wait_exit() == 1
    assert not node.ready
    assert any("EXTEND_TIMEOUT_USEC" in m for m in node.messages)
    failed = node.detail("recovery_failed")
    assert failed["stage"] == "reconciling"
    assert "allOrders BTCUSDT" in failed["reason"] and "no answer within 2.5s" in failed["reason"]
    assert failed["diff"] == [{"instrument": BTC, "cached_qty": "0.010", "venue_qty": "0.010"}]
    assert await cached_state_keys(redis_client, trader_id) == before


async def test_connect_that_hangs_times_out(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    """exchangeInfo never answers: nautilus would spin until its own connect timeout and then report RUNNING
    with strategies that never start; ours stops at its own bound and says which client is not connected."""
    await venue.admin.hang("/fapi/v1/exchangeInfo", hang_ms=120_000, count=None)
    node = await nodes.start(node_spec(venue, trader_id, [probe_strategy()]), "--connect-timeout", "2")
    assert await node.wait_exit() == 1
    assert not node.ready
    failed = node.detail("recovery_failed")
    assert failed["step"] == "connect" and failed["stage"] == "connecting"
    assert failed["data_connected"] is False and failed["exec_connected"] is False


async def test_post_check_refuses_a_reconciliation_nautilus_calls_a_success(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """With nautilus' stock client a plain restart duplicates the fills and leaves the strategy's long plus an
    invented EXTERNAL short; nautilus logs "Reconciliation for BINANCE succeeded". The node's own check
    compares the cached net with the venue, refuses to start the trader and reports the exact diff."""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    await first.kill()
    node = await nodes.start(spec, "--exec-client", "stock")
    assert await node.wait_exit() == 1
    assert not node.ready
    assert node.phases() == ["cache_loaded", "reconcile_failed"]
    failed = node.detail("reconcile_failed")
    assert failed["mismatches"] == [{"instrument": BTC, "cached_qty": "0", "venue_qty": "0.01"}]
    [discrepancy] = failed["discrepancies"]
    assert discrepancy["resolved"] is False and discrepancy["resolution"] == "diverged_in_reconciliation"
    log = node.log_path.read_text(errors="replace")
    assert "Reconciliation for BINANCE succeeded" in log  # what nautilus believed
    assert f"{BTC}: cached 0, venue 0.01" in log  # what the node says instead


async def test_redis_down_fails_the_start_without_touching_nautilus(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    spec = node_spec(venue, trader_id, [probe_strategy()], redis_url="redis://127.0.0.1:1/0")
    node = await nodes.start(spec)
    assert await node.wait_exit() == 1  # not fatal: Redis may come back, the supervisor retries
    failed = node.detail("recovery_failed")
    assert "did not answer" in failed["reason"] and failed["stage"] == "loading"
    assert "cache_loaded" not in node.phases()


async def test_a_ban_fails_recovery_at_once(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """418 (banned) during reconciliation: no retry (that would extend the ban), recovery fails naming it.
    (A 429 is waited out until the venue's next one-minute window, within the reconcile bound: see
    test_fetch.py for that rule.)"""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    await first.kill()
    since = max((int(e["seq"]) for e in await venue.admin.requests()), default=0)
    await venue.admin.rate_limit("/fapi/v1/userTrades", status=418, retry_after_s=1, count=1)

    node = await nodes.start(spec)
    assert await node.wait_exit() == 1
    assert not node.ready
    statuses = [e["status"] for e in await venue.admin.requests(since=since, path="/fapi/v1/userTrades")]
    assert statuses == [418]
    assert "banned the client (HTTP 418)" in node.detail("recovery_failed")["reason"]
