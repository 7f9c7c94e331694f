"""Many positions at once: every protective order gets placed (paced under nautilus' RiskEngine submit rate,
which denies beyond 100 per second), and a restart re-links all of them without sending any again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulator.testing import EmulatorProcess, order_quantities, running_emulator
from tests.recovery.conftest import NodeLauncher, node_spec
from tests.recovery.scenarios import until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

COUNT = 40  # 40 entries + 80 protective orders, well over nautilus' 100 submits per second if sent at once


@pytest.fixture
async def basket_venue() -> AsyncIterator[EmulatorProcess]:
    async with running_emulator(seed=3, symbols=COUNT) as emulator:
        yield emulator


@pytest.fixture
async def basket_nodes(basket_venue: EmulatorProcess, workdir: Path) -> AsyncIterator[NodeLauncher]:
    launcher = NodeLauncher(basket_venue, workdir)
    try:
        yield launcher
    finally:
        await launcher.close()


async def test_a_basket_opened_at_once_is_fully_protected_and_recovered(
    basket_nodes: NodeLauncher, basket_venue: EmulatorProcess, trader_id: str
) -> None:
    venue = basket_venue
    symbols = sorted((await venue.admin.state())["prices"])
    spec = node_spec(
        venue,
        trader_id,
        [
            {
                "path": "recovery.examples.hold_many:HoldMany",
                "config": {
                    "instrument_ids": [f"{s}-PERP.BINANCE" for s in symbols],
                    "quantities": await order_quantities(venue, symbols),
                    "order_id_tag": "001",
                },
            }
        ],
    )
    first = await basket_nodes.start(spec)
    await first.wait_ready()

    async def protected() -> bool:
        account = next(iter((await venue.admin.state())["accounts"].values()))
        return len(account["positions"]) == COUNT and len(account["open_algo_orders"]) == 2 * COUNT

    await until("every position has its stop-loss and take-profit at the venue", protected, timeout_s=60)
    log = first.log_path.read_text()
    assert "Exceeded MAX_ORDER_SUBMIT_RATE" not in log
    await first.kill()

    again = await basket_nodes.start(spec)
    await again.wait_ready()
    actions = again.detail("orders_restored").get("actions", [])
    assert sum(a["action"] == "protective_relinked" for a in actions) == 2 * COUNT
    assert not [a for a in actions if a["action"] == "protective_placed"]
    attempts = await venue.admin.attempts()
    protective = {cid: row for cid, row in attempts.items() if cid.startswith(("SL-", "TP-"))}
    assert len(protective) == 2 * COUNT
    assert {(row["attempts"], row["accepted"]) for row in protective.values()} == {(1, 1)}
