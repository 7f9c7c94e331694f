"""Fault injection and rate limits through the admin API, seen by a real client."""

from __future__ import annotations

import time

import aiohttp
import pytest

from emulator.admin import AdminApiError
from emulator.testing import EmulatorProcess, VenueClient

pytestmark = pytest.mark.asyncio

RESTING = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.010",
    "price": "59000.0",
    "timeInForce": "GTC",
    "newClientOrderId": "retry-1",
}


async def test_latency_with_jitter_applies_to_the_matched_endpoint_only(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    await venue.admin.latency("/fapi/v2/account", 300, jitter_ms=100, count=2)
    started = time.monotonic()
    assert (await client.get("/fapi/v2/account")).status == 200
    assert time.monotonic() - started >= 0.3
    await client.get("/fapi/v1/time", sign=False)  # another path: the rule does not apply (nor count)
    rules = await venue.admin.faults()
    assert rules[0]["applied"] == 1 and rules[0]["count"] == 1


async def test_http_errors_for_a_number_of_requests(venue: EmulatorProcess, client: VenueClient) -> None:
    await venue.admin.http_error("/fapi/v3/positionRisk", 503, count=2)
    first = await client.get("/fapi/v3/positionRisk")
    assert (first.status, first.code) == (503, -1001)
    assert (await client.get("/fapi/v3/positionRisk")).status == 503
    assert (await client.get("/fapi/v3/positionRisk")).status == 200
    await venue.admin.http_error("/fapi/v1/*", 500, code=-1000, msg="An unknown error occured", count=1)
    wildcard = await client.get("/fapi/v1/openOrders")
    assert (wildcard.status, wildcard.code) == (500, -1000)


async def test_executed_but_unanswered_order_then_a_retry_is_a_duplicate(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    """The venue accepts the order but the answer never arrives; the client's retry must not double it."""
    await venue.admin.hang("/fapi/v1/order", method="POST", execute=True, hang_ms=5000)
    with pytest.raises(TimeoutError):
        await client.post("/fapi/v1/order", RESTING, timeout_s=0.5)
    retry = await client.post("/fapi/v1/order", RESTING)
    assert (retry.status, retry.code) == (400, -4116)
    counts = await venue.admin.attempts("retry-1")
    assert counts["retry-1"]["attempts"] == 2
    assert counts["retry-1"]["accepted"] == 1 and counts["retry-1"]["rejected"] == 1
    assert counts["retry-1"]["last_error"] == -4116
    assert len((await client.get("/fapi/v1/openOrders", {"symbol": "BTCUSDT"})).body) == 1


async def test_error_after_execution_and_rejections(venue: EmulatorProcess, client: VenueClient) -> None:
    await venue.admin.http_error("/fapi/v1/order", 503, method="POST", execute=True, count=1)
    unknown = await client.post("/fapi/v1/order", RESTING)
    assert unknown.status == 503
    assert len((await client.get("/fapi/v1/openOrders")).body) == 1  # it was placed all the same
    await venue.admin.reject_orders(-2019, count=1)
    rejected = await client.post("/fapi/v1/order", {**RESTING, "newClientOrderId": "r-2"})
    assert (rejected.status, rejected.code, rejected.body["msg"]) == (400, -2019, "Margin is insufficient.")
    assert (await venue.admin.attempts("r-2"))["r-2"]["rejected"] == 1
    accepted = await client.post("/fapi/v1/order", {**RESTING, "newClientOrderId": "r-2"})
    assert accepted.status == 200


async def test_rate_limit_fault(venue: EmulatorProcess, client: VenueClient) -> None:
    await venue.admin.rate_limit("/fapi/v1/openOrders", status=418, retry_after_s=7)
    reply = await client.get("/fapi/v1/openOrders")
    assert (reply.status, reply.code, reply.headers["Retry-After"]) == (418, -1003, "7")


async def test_request_weight_429_then_418(venue: EmulatorProcess, client: VenueClient) -> None:
    await venue.admin.set_ratelimit(weight_per_minute=20, ban_after=1, ban_seconds=30, reset=True)
    used = []
    for _ in range(4):  # 5 weight each
        reply = await client.get("/fapi/v2/account")
        assert reply.status == 200
        used.append(int(reply.headers["X-MBX-USED-WEIGHT-1M"]))
    assert used == [5, 10, 15, 20]
    limited = await client.get("/fapi/v2/account")
    assert (limited.status, limited.code) == (429, -1003)
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    banned = await client.get("/fapi/v1/time", sign=True)
    assert (banned.status, banned.code) == (418, -1003)
    assert 25 <= int(banned.headers["Retry-After"]) <= 30
    public = await client.get("/fapi/v1/time", sign=False, api_key="")  # the ban is the address'
    assert public.status == 418


async def test_admin_is_strict_about_its_input(venue: EmulatorProcess) -> None:
    with pytest.raises(AdminApiError) as bad:
        await venue.admin.add_fault("explode")
    assert bad.value.status == 400
    with pytest.raises(AdminApiError) as missing:
        await venue.admin.fill("BTCUSDT", order_id=1)
    assert missing.value.status == 404
    with pytest.raises(AdminApiError):
        await venue.admin.call("POST", "/price", {"symbol": "BTCUSDT", "colour": "red"})


async def test_request_log(venue: EmulatorProcess, client: VenueClient, http: aiohttp.ClientSession) -> None:
    await venue.admin.clear_requests()
    await client.get("/fapi/v2/account", {"recvWindow": "5000"})
    await client.get("/fapi/v2/account", secret="wrong")
    log = await venue.admin.requests(path="/fapi/v2/account")
    assert [(e["status"], e["code"], e["signed"]) for e in log] == [(200, None, True), (400, -1022, True)]
    assert "signature" not in log[0]["params"] and log[0]["params"]["recvWindow"] == "5000"
    assert log[0]["account"] == "main" and log[0]["weight"] == 5
