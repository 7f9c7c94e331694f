"""Every endpoint answers malformed input with the venue's error JSON and a 4xx status, never a 500."""

from __future__ import annotations

import pytest

from emulator.routes import ENDPOINTS, NONE
from emulator.testing import EmulatorProcess, VenueClient

pytestmark = pytest.mark.asyncio

BAD_VALUES = [
    "",
    "-1",
    "1e309",
    "NaN",
    "99999999999999999999999",
    "0.0000000000000000000001",
    "ñ",
    "[1,2",
    "{}",
    "true",
    "BTCUSDT" * 40,
]
PARAMS = [
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "timeInForce",
    "orderId",
    "origClientOrderId",
    "newClientOrderId",
    "startTime",
    "endTime",
    "limit",
    "fromId",
    "algoId",
    "clientAlgoId",
    "triggerPrice",
    "algoType",
    "reduceOnly",
    "closePosition",
    "workingType",
    "interval",
    "leverage",
    "marginType",
    "batchOrders",
    "orderIdList",
    "origClientOrderIdList",
    "incomeType",
    "page",
    "dualSidePosition",
    "callbackRate",
    "activatePrice",
    "goodTillDate",
    "newOrderRespType",
    "positionSide",
    "recvWindow",
]


async def test_no_endpoint_answers_garbage_with_a_server_error(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    await venue.admin.set_ratelimit(weight_per_minute=1_000_000, orders_per_minute=1_000_000)
    answered = 0
    codes: set[int] = set()
    for endpoint in ENDPOINTS:
        for index, value in enumerate(BAD_VALUES):
            # A few parameters at a time, all set to the same bad value, with a valid symbol half of the time.
            names = PARAMS[index % 4 :: 4]
            params = {name: value for name in names}
            if index % 2:
                params.setdefault("symbol", "BTCUSDT")
            reply = await client.request(
                endpoint.method, endpoint.path, params, sign=endpoint.security != NONE
            )
            assert reply.status < 500, (endpoint.path, params, reply.body)
            if reply.status >= 400:
                assert set(reply.body) == {"code", "msg"}, (endpoint.path, reply.body)
                assert isinstance(reply.body["code"], int) and reply.body["code"] < 0
                codes.add(reply.body["code"])
            answered += 1
    assert answered == len(ENDPOINTS) * len(BAD_VALUES)
    assert -1003 not in codes  # the handlers themselves answered, not the rate limiter
    assert {-1100, -1102, -1121} <= codes
    errors = [r for r in await venue.admin.requests() if r["status"] >= 500]
    assert errors == []
