"""Re-attach with a real strategy node: a killed daemon's successor adopts the trading node (no restart, no
second set of stops), and still recovers it exactly when it is killed later."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.lease import epoch_key, lease_key
from tests.e2e.conftest import ENTRY, Fleet
from tests.e2e.test_fleet_recovery import enter_and_protect, kill_node, open_algos
from tests.recovery.scenarios import until
from tests.supervisor.daemon_harness import DaemonUnderTest
from tests.supervisor.test_adopt import _alive

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]


async def test_a_trading_node_is_adopted_then_recovered_by_the_new_daemon(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    sl, tp = await enter_and_protect(fleet)
    before = await fleet.node()
    first = fleet.daemon
    assert first.process is not None
    first.process.kill()
    await first.wait_exit()

    second = DaemonUnderTest(first.base, first.config, env=first.extra_env)
    fleet.daemon = second
    try:
        await second.start()
        node = await fleet.node()
        assert (node["state"], node["pid"], node["restarts"]) == ("ready", before["pid"], 0)
        assert any("adopted node probe" in line for line in second.output)

        # The adopted node's death is seen through its pidfd and recovered like any crash.
        mark = len(fleet.mqtt.messages)
        await kill_node(fleet)
        report = await fleet.report(reason="signal", after=mark)
        assert report["result"] == "ready", report["error"]
        assert not [a for a in report["actions"] if a["action"] == "protective_placed"]
        attempts = await fleet.venue.admin.attempts()
        assert {cid: attempts[cid]["attempts"] for cid in (sl, tp)} == {sl: 1, tp: 1}
        assert set(await open_algos(fleet)) == {sl, tp}
        node = await fleet.node()
        assert node["restarts"] == 1 and node["last_exit"]["detail"].startswith("exit status unknown")
    finally:
        await second.close()


async def test_a_node_whose_lease_moved_on_during_the_gap_is_fenced_not_adopted(fleet_factory: Any) -> None:
    """The lease changed hands while no supervisor ran (it expired, another host took it): the running node
    may no longer trade, so the new daemon kills it instead of adopting it, and waits in standby."""
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    await enter_and_protect(fleet)
    before = await fleet.node()
    first = fleet.daemon
    assert first.process is not None
    first.process.kill()
    await first.wait_exit()
    epoch = await fleet.redis.incr(epoch_key(fleet.trader_id))
    await fleet.redis.set(lease_key(fleet.trader_id), f"{epoch} host-elsewhere/s1", px=60_000)

    second = DaemonUnderTest(first.base, first.config, env=first.extra_env)
    fleet.daemon = second
    try:
        await second.start()

        async def fenced() -> bool:
            node = await fleet.node()
            return node["state"] == "standby" and (node["last_exit"] or {}).get("reason") == "fenced"

        await until("the adopted node fenced", fenced, timeout_s=20)
        assert not _alive(before["pid"])
    finally:
        await fleet.redis.delete(lease_key(fleet.trader_id))
        await second.close()
