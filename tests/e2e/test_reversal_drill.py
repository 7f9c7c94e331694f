"""A kill drill of reversing strategies (issue 12 was found by one), run by `fleet drill`'s engine.

Two nodes, one emulator account each, run the reversing probe on ETHUSDT: every market step
(`ReversalMarket`) flips or flattens both positions with one market order, which the venue fills in one trade
or sweeps through several levels. The drill's seeded plan kills a node with SIGKILL right after an order
reached the venue, again while it recovers (before READY), or while idle, and moves the venue while it is
down; after every recovery the drill's checks (the ones `fleet drill` runs for users) must hold: READY, the
venue equal to the cache (net position, every order's fills, one stop-loss and one take-profit per position
and none when flat, nothing invented, no client order id accepted twice), the strategy state the last
acknowledged write.
`FLEET_DRILL_KILLS` makes it longer (the CI run is short), `FLEET_DRILL_SEED` another sequence.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from recovery.drill.fleet_copy import DrillFleet
from recovery.drill.market import Market
from recovery.drill.report import render_table
from recovery.drill.runner import DrillOptions, run_drill
from tests.recovery.reversal_checks import ReversalMarket, reverser
from tests.supervisor.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]

KILLS = int(os.environ.get("FLEET_DRILL_KILLS", "8"))
SEED = int(os.environ.get("FLEET_DRILL_SEED", "1207"))
NAMES = ("rev-a", "rev-b")


def reversal_fleet() -> str:
    """Two reversing nodes on accounts of their own; the drill points the venues at its own emulator."""
    venues = "".join(
        f"""
          emu-{name}:
            base_url_http: http://127.0.0.1:8900
            base_url_ws: ws://127.0.0.1:8900
            api_key: {{env: UNUSED_KEY}}
            api_secret: {{env: UNUSED_SECRET}}"""
        for name in NAMES
    )
    nodes = "".join(
        f"""
          - name: {name}
            trader_id: REV-00{i}
            venues: [emu-{name}]
            strategies: [{json.dumps(reverser())}]"""
        for i, name in enumerate(NAMES, start=1)
    )
    return textwrap.dedent(
        f"""\
        fleet: reversal-drill
        mqtt: {{host: 127.0.0.1, port: 1883}}
        venues:{venues}
        defaults:
          stop: {{grace: 5s}}
          watchdog: {{timeout: 10s}}
          ready_timeout: 40s
        nodes:{nodes}
        """
    )


def market(fleet: DrillFleet) -> Market:
    return ReversalMarket(nodes=len(fleet.nodes))


@pytest.mark.timeout(300)
async def test_kill_drill_of_reversing_nodes(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(reversal_fleet())
    lines: list[str] = []
    options = DrillOptions(
        config=config,
        kills=KILLS,
        seed=SEED,
        market=market,
        progress=lines.append,
        environ={**os.environ, "PYTHONPATH": str(REPO)},  # the nodes import the probe from tests/
    )
    report = await run_drill(options)
    detail = "\n".join([*lines, render_table(report)])
    assert report.ok, detail
    assert len(report.actions) == KILLS and report.kills >= KILLS, detail
    assert {a.result for a in report.actions} == {"ready"}, detail
    # The moments happened as planned: an order right before a kill, a second kill at a recovery phase.
    assert any("right after the venue accepted" in a.moment_note for a in report.actions), detail
    assert any(k.get("phase") for a in report.actions for k in a.kills), detail
    assert all(a.checked["client_order_ids"] > 0 for a in report.actions), detail
