"""The venue's rate-limit scopes, seen by a real client: request weight per client address (all accounts
behind it share it), orders per account, 429 escalating to a 418 ban of the address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from emulator.admin import AdminApiError
from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, VenueClient, running_emulator
from tests.emulator.conftest import window_with_room

pytestmark = pytest.mark.asyncio

MAIN = AccountSpec(name="main", api_key="key-main", api_secret="secret-main")
SUB = AccountSpec(name="sub", api_key="key-sub", api_secret="secret-sub")
RESTING = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "timeInForce": "GTC"}


@pytest.fixture
async def two_accounts() -> AsyncIterator[EmulatorProcess]:
    async with running_emulator(seed=3, symbols=["BTCUSDT"], accounts=[MAIN, SUB]) as emulator:
        await emulator.admin.set_price("BTCUSDT", "60000.0")
        yield emulator


def _client(venue: EmulatorProcess, account: AccountSpec, address: str | None = None) -> VenueClient:
    return VenueClient(venue.http_url, account.api_key, account.api_secret, local_address=address)


async def test_accounts_behind_one_address_share_its_request_weight(two_accounts: EmulatorProcess) -> None:
    venue = two_accounts
    await venue.admin.set_ratelimit(weight_per_minute=20, ban_after=5, reset=True)
    await window_with_room(60)
    async with _client(venue, MAIN) as main, _client(venue, SUB) as sub:
        seen = []
        for rest in (main, sub, main, sub):  # 5 weight each, alternating accounts
            reply = await rest.get("/fapi/v2/account")
            assert reply.status == 200
            seen.append(int(reply.headers["X-MBX-USED-WEIGHT-1M"]))
        assert seen == [5, 10, 15, 20]
        limited = await sub.get("/fapi/v2/account")
        assert (limited.status, limited.code) == (429, -1003)
        public = await main.get("/fapi/v1/time", sign=False, api_key="")  # unsigned: the same address
        assert public.status == 429
    usage = (await venue.admin.ratelimit())["usage"]
    assert usage["addresses"]["127.0.0.1"]["used"] == 20
    assert usage["addresses"]["127.0.0.1"]["rejected"] == 2


async def test_another_address_has_a_budget_and_a_ban_of_its_own(two_accounts: EmulatorProcess) -> None:
    venue = two_accounts
    await venue.admin.set_ratelimit(weight_per_minute=10, ban_after=1, ban_seconds=30, reset=True)
    await window_with_room(60)
    async with _client(venue, MAIN) as here, _client(venue, MAIN, "127.0.0.2") as there:
        for _ in range(2):
            assert (await here.get("/fapi/v2/account")).status == 200
        assert (await here.get("/fapi/v2/account")).status == 429
        banned = await here.get("/fapi/v1/time", sign=False)  # the second 429 of the window: a ban
        assert (banned.status, banned.code) == (418, -1003)
        assert 25 <= int(banned.headers["Retry-After"]) <= 30
        assert "127.0.0.1" in banned.body["msg"]
        elsewhere = await there.get("/fapi/v2/account")  # the same account from another address
        assert elsewhere.status == 200
        assert elsewhere.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    log = await venue.admin.requests(path="/fapi/v2/account")
    assert {e["address"] for e in log} == {"127.0.0.1", "127.0.0.2"}


async def test_orders_are_counted_per_account_in_ten_seconds_and_a_minute(
    two_accounts: EmulatorProcess,
) -> None:
    venue = two_accounts
    await venue.admin.set_ratelimit(orders_per_10s=2, orders_per_minute=3, ban_after=10, reset=True)
    await window_with_room(10)
    async with _client(venue, MAIN) as main, _client(venue, SUB) as sub:
        counts = []
        for i in range(2):
            reply = await main.post(
                "/fapi/v1/order", {**RESTING, "price": "59000.0", "newClientOrderId": f"m{i}"}
            )
            assert reply.status == 200, reply.body
            counts.append((reply.headers["X-MBX-ORDER-COUNT-10S"], reply.headers["X-MBX-ORDER-COUNT-1M"]))
        assert counts == [("1", "1"), ("2", "2")]
        refused = await main.post("/fapi/v1/order", {**RESTING, "price": "59000.0", "newClientOrderId": "m2"})
        assert (refused.status, refused.code) == (429, -1015)
        assert "TEN_SECONDS" in refused.body["msg"]
        other = await sub.post("/fapi/v1/order", {**RESTING, "price": "59000.0", "newClientOrderId": "s0"})
        assert other.status == 200  # another account behind the same address has its own order count
        assert other.headers["X-MBX-ORDER-COUNT-10S"] == "1"
        read = await main.get("/fapi/v1/openOrders")
        assert "X-MBX-ORDER-COUNT-10S" not in read.headers  # only order answers carry order counts
    usage = (await venue.admin.ratelimit())["usage"]
    assert usage["accounts"] == {
        "main": {"orders_10s": 2, "orders_1m": 2},
        "sub": {"orders_10s": 1, "orders_1m": 1},
    }


async def test_a_shorter_weight_window_is_announced_in_headers_and_exchange_info(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    settings = await venue.admin.set_ratelimit(weight_per_minute=7, weight_window_s=2)
    await window_with_room(2, need_s=1.0)
    assert settings["weight_header"] == "X-MBX-USED-WEIGHT-2S"
    info = (await client.get("/fapi/v1/exchangeInfo", sign=False)).body
    weight = next(r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT")
    assert (weight["interval"], weight["intervalNum"], weight["limit"]) == ("SECOND", 2, 7)
    first = await client.get("/fapi/v2/account")
    assert first.headers["X-MBX-USED-WEIGHT-2S"] == "6"  # exchangeInfo 1 + account 5
    assert "X-MBX-USED-WEIGHT-1M" not in first.headers
    limited = await client.get("/fapi/v2/account")
    assert limited.status == 429 and int(limited.headers["Retry-After"]) <= 2
    await asyncio.sleep(float(limited.headers["Retry-After"]) + 0.1)
    again = await client.get("/fapi/v2/account")
    assert (again.status, again.headers["X-MBX-USED-WEIGHT-2S"]) == (200, "5")


async def test_limits_are_checked(venue: EmulatorProcess) -> None:
    with pytest.raises(AdminApiError) as bad:
        await venue.admin.set_ratelimit(weight_window_s=0)
    assert bad.value.status == 400 and "weight_window_s" in bad.value.message
    assert (await venue.admin.ratelimit())["weight_window_s"] == 60
