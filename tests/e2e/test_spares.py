"""Warm spares end to end: the real daemon, real strategy nodes and real spares (`python -m recovery.spare`,
which imports nautilus), against the venue emulator.

What is checked is what an operator sees: the recovery report on MQTT (its `spawned` phase says how the
node started), `fleet status` (node pids, spares with their memory), the venue's orders and the cache.
"""

from __future__ import annotations

import json
import os
import signal
from decimal import Decimal
from typing import Any

import pytest

from supervisor.cli import render_spares
from tests.e2e.conftest import Fleet
from tests.e2e.test_fleet_recovery import enter_and_protect, kill_node, open_algos, seed_hash, venue_position
from tests.recovery.scenarios import until
from tests.supervisor.daemon_harness import write_atomically

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]

ENTRY = "60100.0"
SPARE_READY_S = 60.0  # a spare imports nautilus: ~1.3 s alone, several on a loaded 2-core machine


async def spares(fleet: Fleet) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await fleet.daemon.request({"cmd": "status"}))["spares"]
    return found


async def ready_spare(fleet: Fleet, pool: str, *, other_than: tuple[int, ...] = ()) -> dict[str, Any]:
    """The first ready spare of `pool` whose pid is not in `other_than`, once there is one."""
    found: list[dict[str, Any]] = []

    async def ready() -> bool:
        found[:] = [
            s for s in await spares(fleet) if s["pool"] == pool and s["state"] == "ready"
            and s["pid"] not in other_than
        ]  # fmt: skip
        return bool(found)

    await until(f"a ready spare of {pool}", ready, timeout_s=SPARE_READY_S)
    return found[0]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def spawned(report: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = next(p for p in report["phases"] if p["phase"] == "spawned")["detail"]
    return detail


async def reload_with(fleet: Fleet, old: str, new: str) -> None:
    text = fleet.daemon.config.read_text()
    assert old in text
    write_atomically(fleet.daemon.config, text.replace(old, new))
    reply = await fleet.daemon.request({"cmd": "reload"})
    assert reply["ok"] and reply["reload"]["result"] == "applied", reply


async def test_a_crashed_node_recovers_through_the_fleets_spare(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY, spares="1")
    # The cold start was just reported READY: the fleet's spare (started after it) is not ready yet, so a
    # crash now starts the node cold, as without spares.
    assert not [s for s in await spares(fleet) if s["state"] == "ready"]
    mark = len(fleet.mqtt.messages)
    await kill_node(fleet)
    report = await fleet.report(reason="signal", after=mark)
    assert report["result"] == "ready" and spawned(report)["via"] == "cold"

    sl, tp = await enter_and_protect(fleet)
    spare = await ready_spare(fleet, "fleet")
    assert spare["rss_bytes"] > 100 * 2**20 and 0 < spare["private_bytes"] < spare["rss_bytes"]
    assert f"fleet  {spare['pid']}  ready" in render_spares(await spares(fleet))
    # A reload of supervision settings keeps the spare; the spec it is handed at the crash is the new one.
    await reload_with(fleet, "ready_timeout: 40s", "ready_timeout: 45s")
    assert spare["pid"] in [s["pid"] for s in await spares(fleet)]

    mark = len(fleet.mqtt.messages)
    await kill_node(fleet)
    report = await fleet.report(reason="signal", after=mark)
    assert report["result"] == "ready", report["error"]
    assert spawned(report)["via"] == "spare" and spawned(report)["pool"] == "fleet"
    node = await fleet.node()
    assert node["pid"] == spare["pid"] and node["state"] == "ready"
    handed = json.loads((fleet.daemon.base / "run" / "specs" / "probe.json").read_text())
    assert handed["node"]["ready_timeout"] == "45s"
    # The node is the one a cold start would give: position, stops (relinked, not placed again), state.
    relinked = {a["client_order_id"] for a in report["actions"] if a["action"] == "protective_relinked"}
    assert relinked == {sl, tp}
    assert not [a for a in report["actions"] if a["action"] == "protective_placed"]
    assert set(await open_algos(fleet)) == {sl, tp}
    venue, cached = await venue_position(fleet), await seed_hash(fleet)
    assert (cached["side"], Decimal(cached["quantity"])) == ("LONG", Decimal(venue["amount"]))

    # The next spare starts once the node is READY; one that dies is replaced.
    second = await ready_spare(fleet, "fleet", other_than=(spare["pid"],))
    os.kill(second["pid"], signal.SIGKILL)
    third = await ready_spare(fleet, "fleet", other_than=(spare["pid"], second["pid"]))
    assert alive(third["pid"]) and not alive(second["pid"])


async def test_a_reload_that_changes_a_nodes_environment_retires_its_spares(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    assert await spares(fleet) == []  # `spares: 0` for the fleet, none of the node's own yet
    await reload_with(fleet, "venues: [emu]\n", "venues: [emu]\n    spares: 1\n")
    own = await ready_spare(fleet, "probe")
    node_pid = (await fleet.node())["pid"]

    # The reload answers once applied: the node's runner (and its spares) replaced, the new one starting.
    await reload_with(fleet, "venues: [emu]\n", "venues: [emu]\n    env: {PROBE_SETTING: changed}\n")
    assert not alive(own["pid"])
    assert own["pid"] not in [s["pid"] for s in await spares(fleet)]
    assert not alive(node_pid)
