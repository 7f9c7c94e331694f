"""Rate groups and account keys (pure), `rate_group` in fleet.yaml, and the supervisor's reader of a group's
usage on a real Redis (the same keys the node's limiter writes)."""

# ruff: noqa: E501 - the expected message is kept whole, as a user reads it

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from supervisor import rate_budget
from supervisor.config.errors import ConfigError
from supervisor.config.render import fleet_json_schema
from supervisor.config.schema import VenueSpec
from tests.supervisor.config._util import messages, parse


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://fapi.binance.com", "https://fapi.binance.com"),
        ("HTTPS://FAPI.Binance.com:443/", "https://fapi.binance.com"),
        ("https://fapi.binance.com/fapi/v1", "https://fapi.binance.com"),
        ("http://127.0.0.1:8900", "http://127.0.0.1:8900"),
        ("http://localhost:80", "http://localhost"),
        ("http://[::1]:8900", "http://[::1]:8900"),
    ],
)
def test_the_endpoint_of_a_base_url(url: str, endpoint: str) -> None:
    assert rate_budget.venue_endpoint(url) == endpoint


def test_the_endpoint_needs_an_absolute_url() -> None:
    with pytest.raises(ValueError, match="not an absolute URL"):
        rate_budget.venue_endpoint("fapi.binance.com")


def test_default_group_is_the_endpoint_from_this_host_and_an_explicit_group_wins() -> None:
    live = VenueSpec()
    assert rate_budget.rate_group(live, "host-a") == "https://fapi.binance.com@host-a"
    assert rate_budget.rate_group(VenueSpec(testnet=True), "host-a") == "https://demo-fapi.binance.com@host-a"
    local = VenueSpec(base_url_http="http://127.0.0.1:8900/")
    assert rate_budget.rate_group(local, "host-b") == "http://127.0.0.1:8900@host-b"
    behind_nat = VenueSpec(rate_group="binance-nat-1")
    assert rate_budget.rate_group(behind_nat, "host-a") == rate_budget.rate_group(behind_nat, "host-b")
    assert rate_budget.host_egress()  # the host name, never empty


def test_the_order_budget_is_per_account_at_its_endpoint() -> None:
    assert rate_budget.account_key("btc", VenueSpec()) == "https://fapi.binance.com/btc"
    shared = VenueSpec(account="sub-7")
    assert rate_budget.account_key("btc", shared) == rate_budget.account_key("eth", shared)


FLEET_WITH_GROUP = """
    fleet: demo
    venues:
      binance:
        rate_group: {value}
    """


def test_rate_group_in_fleet_yaml() -> None:
    spec = parse(FLEET_WITH_GROUP.format(value="binance-nat-1"))
    assert spec.venues["binance"].rate_group == "binance-nat-1"
    assert parse("fleet: demo\nvenues:\n  binance: {}\n").venues["binance"].rate_group is None


RULE = 'a rate group name of 1 to 200 letters, digits or "._:@/[]-", starting with a letter or digit, like "binance-nat-1" or null'


@pytest.mark.parametrize(
    ("bad", "found"),
    [
        ('"has space"', '"has space"'),
        ('"*glob"', '"*glob"'),
        ('""', '""'),
        ("42", '42; quote it if it is meant as text: "42"'),
    ],
)
def test_a_bad_rate_group_is_refused_with_the_rule(bad: str, found: str) -> None:
    assert messages(FLEET_WITH_GROUP.format(value=bad)) == [
        f"fleet.yaml:4:17 venues.binance.rate_group: expected {RULE}, got {found}"
    ]


def test_rate_group_in_the_json_schema() -> None:
    prop = fleet_json_schema()["$defs"]["VenueSpec"]["properties"]["rate_group"]
    patterns = [m.get("pattern") for m in prop["anyOf"] if m.get("type") == "string"]
    assert patterns == [r"^[A-Za-z0-9][A-Za-z0-9._:@/\[\]-]{0,199}$"]
    assert prop["default"] is None


def test_a_parse_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse(FLEET_WITH_GROUP.format(value='"a b"'))


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(socket_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.asyncio
@pytest.mark.redis
async def test_the_supervisor_reads_a_groups_usage(redis: aioredis.Redis) -> None:
    group = f"test-read-{uuid.uuid4().hex[:8]}"
    try:
        empty = await rate_budget.read_group_usage(redis, group, timeout_s=1.0)
        assert (empty.used, empty.limit, empty.window_ms) == (0, None, 60_000)
        await redis.hset(
            rate_budget.limits_key(group),
            mapping={"weight": 2400, "window_ms": 60_000, "recovery_budget": 1200},
        )
        admitted, used, _, start = await redis.eval(
            rate_budget.ACQUIRE_SCRIPT,
            0,
            rate_budget.weight_key_base(group),
            "",
            40,
            0,
            1200,
            1,
            1,
            60_000,
            rate_budget.pause_key(group),
        )
        assert (admitted, used) == (1, 40)
        usage = await rate_budget.read_group_usage(redis, group, timeout_s=1.0)
        assert (usage.used, usage.limit, usage.recovery_budget) == (40, 2400, 1200)
        assert usage.window_start_ms == start and 0 < usage.resets_in_ms <= 60_000 and usage.paused_ms == 0
        ttl = await redis.pttl(f"{rate_budget.weight_key_base(group)}:{start}")
        assert 60_000 < ttl <= 120_000  # two windows
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{rate_budget.KEY_PREFIX}:*{group}*")]
        if keys:
            await redis.delete(*keys)
