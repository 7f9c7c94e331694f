"""Smoke: a cold start reaches READY and stops cleanly on SIGTERM."""

from __future__ import annotations

import pytest

from emulator.testing import EmulatorProcess
from tests.recovery.conftest import NodeLauncher, node_spec, probe_strategy

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]


async def test_cold_start_ready_then_sigterm(
    venue: EmulatorProcess, nodes: NodeLauncher, trader_id: str
) -> None:
    node = await nodes.start(node_spec(venue, trader_id, [probe_strategy()]))
    await node.wait_ready()
    assert node.phases()[:2] == ["cache_loaded", "reconciled"]
    assert await node.terminate() == 0
    assert any(m.get("STOPPING") == "1" for m in node.messages)
    log = node.log_path.read_text(errors="replace")
    assert venue.api_secret not in log and venue.api_key not in log  # credentials never reach the log
