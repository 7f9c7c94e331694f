"""Real nodes on one rate group share the venue's request weight through Redis (issue 8).

Two `python -m recovery.node` processes, two venue accounts behind one address (the emulator counts weight
per address, as Binance does), started at the same moment. The venue's limit is set so low (200 weight per
3-second window, announced in exchangeInfo) that either node alone needs more than one window: unpaced, or
paced per process, they would be refused. Together they must come up without one refusal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from supervisor import rate_budget
from tests.recovery.conftest import NodeLauncher, node_spec, probe_strategy

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

ACCOUNTS = [
    AccountSpec(name="alpha", api_key="key-alpha", api_secret="secret-alpha"),
    AccountSpec(name="beta", api_key="key-beta", api_secret="secret-beta"),
]
SYMBOLS = 6
LIMIT, WINDOW_S = 200, 3
RECOVERY_BUDGET = 180  # coordination.recovery_share 0.9 of the limit


@pytest.fixture
async def venue() -> AsyncIterator[EmulatorProcess]:
    async with running_emulator(seed=21, symbols=SYMBOLS, accounts=ACCOUNTS) as emulator:
        prices = (await emulator.admin.state())["prices"]
        for account in ACCOUNTS:  # a position on every symbol: the history of each is fetched
            for symbol in sorted(prices):
                await emulator.admin.set_position(symbol, "1", prices[symbol]["last"], account=account.name)
        yield emulator


@pytest.fixture
async def traders(redis_client: aioredis.Redis) -> AsyncIterator[list[str]]:
    ids = [f"RB{uuid.uuid4().hex[:8].upper()}-00{i}" for i in (1, 2)]
    try:
        yield ids
    finally:
        for tid in ids:
            for pattern in (f"trader-{tid}:*", f"positions:{tid}:*"):
                keys = [k async for k in redis_client.scan_iter(match=pattern)]
                if keys:
                    await redis_client.delete(*keys)


def account_node_spec(
    venue: EmulatorProcess, trader_id: str, account: AccountSpec, instruments: list[str]
) -> dict[str, Any]:
    strategy = probe_strategy(instruments[0])
    strategy["instruments"] = instruments
    spec = node_spec(venue, trader_id, [strategy], ready_timeout="90s")
    entry = spec["venues"]["emu"]
    entry["account"] = account.name
    entry["api_key"] = {"env": f"KEY_{account.name.upper()}"}
    entry["api_secret"] = {"env": f"SECRET_{account.name.upper()}"}
    return spec


async def test_two_nodes_on_one_rate_group_never_exceed_the_venue_limit_together(
    venue: EmulatorProcess,
    traders: list[str],
    workdir: Path,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for account in ACCOUNTS:  # the nodes inherit the environment their secrets are referenced in
        monkeypatch.setenv(f"KEY_{account.name.upper()}", account.api_key)
        monkeypatch.setenv(f"SECRET_{account.name.upper()}", account.api_secret)
    symbols = sorted((await venue.admin.state())["prices"])
    instruments = [f"{s}-PERP.BINANCE" for s in symbols]
    await venue.admin.set_ratelimit(
        weight_per_minute=LIMIT, weight_window_s=WINDOW_S, ban_after=0, reset=True
    )
    await venue.admin.clear_requests()
    group = rate_budget.default_rate_group(venue.http_url, rate_budget.host_egress())

    launcher = NodeLauncher(venue, workdir)
    try:
        started = [
            await launcher.start(account_node_spec(venue, tid, account, instruments))
            for tid, account in zip(traders, ACCOUNTS, strict=True)
        ]
        await asyncio.gather(*(node.wait_ready(timeout_s=80) for node in started))
        budgets = [node.detail("reconciled")["rate_budget"] for node in started]
        usage = await rate_budget.read_group_usage(redis_client, group, timeout_s=2.0)  # as the gate reads it
        assert (usage.limit, usage.window_ms, usage.recovery_budget) == (
            LIMIT,
            WINDOW_S * 1000,
            RECOVERY_BUDGET,
        )
        assert [await node.terminate() for node in started] == [0, 0]
    finally:
        await launcher.close()
        keys = [k async for k in redis_client.scan_iter(match=f"{rate_budget.KEY_PREFIX}:*{group}*")]
        if keys:
            await redis_client.delete(*keys)

    log = [e for e in await venue.admin.requests() if e["method"] != "WS"]
    refused = [(e["path"], e["status"]) for e in log if e["status"] in (418, 429)]
    assert refused == [], f"the venue refused {refused}"
    per_window: dict[int, int] = defaultdict(int)
    for entry in log:
        per_window[entry["time"] // (WINDOW_S * 1000)] += entry["weight"]
    assert max(per_window.values()) <= LIMIT, dict(per_window)
    spent = [sum(e["weight"] for e in log if e["account"] == a.name) for a in ACCOUNTS]
    assert all(s > LIMIT for s in spent), f"each node alone needs more than a window: {spent}"

    for budget in budgets:
        assert budget["scope"] == "fleet" and budget["group"] == group and budget["reason"] is None
        assert (
            budget["window_s"] == WINDOW_S and budget["budget"] == RECOVERY_BUDGET
        )  # learnt from exchangeInfo
    assert sorted(b["account"].rsplit("/", 1)[1] for b in budgets) == ["alpha", "beta"]
    assert sum(b["waited_s"] for b in budgets) > 0, "the shared budget never held a request back"
    assert sum(b["weight"] for b in budgets) >= sum(spent) - 2  # the nodes' own count of what they sent
