"""plan_reload: which nodes a new fleet.yaml starts, stops, restarts or updates in place (pure)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from supervisor.config.schema import (
    Duration,
    FleetSpec,
    MqttSpec,
    NodeSpec,
    RedisSpec,
    RestartSpec,
    StrategySpec,
    VenueSpec,
)
from supervisor.reload import ReloadPlan, plan_reload


def _node(name: str, **kw: Any) -> NodeSpec:
    fields: dict[str, Any] = {
        "name": name,
        "trader_id": f"T-{name}",
        "command": ["prog", name],
        "venues": ["v1"],
    }
    fields.update(kw)
    return NodeSpec(**fields)


def _fleet(*nodes: NodeSpec, **kw: Any) -> FleetSpec:
    fields: dict[str, Any] = {
        "fleet": "f",
        "venues": {"v1": VenueSpec(base_url_http="http://a"), "v2": VenueSpec(base_url_http="http://b")},
        "nodes": list(nodes),
    }
    fields.update(kw)
    return FleetSpec(**fields)


BASE = _fleet(_node("a"), _node("b"), _node("c"))
STRATEGY = StrategySpec(path="m:S")


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (BASE, ReloadPlan(unchanged=("a", "b", "c"))),
        (_fleet(_node("a"), _node("b")), ReloadPlan(stop=("c",), unchanged=("a", "b"))),
        (
            _fleet(_node("a"), _node("b"), _node("c"), _node("d")),
            ReloadPlan(start=("d",), unchanged=("a", "b", "c")),
        ),
        (
            _fleet(_node("a", command=["prog", "other"]), _node("b"), _node("c")),
            ReloadPlan(restart=("a",), unchanged=("b", "c")),
        ),
        (
            _fleet(_node("a", env={"X": "1"}), _node("b"), _node("c")),
            ReloadPlan(restart=("a",), unchanged=("b", "c")),
        ),
        # Supervision settings only: applied in place, the process is left alone.
        (
            _fleet(_node("a", restart=RestartSpec(backoff_max=Duration(99))), _node("b"), _node("c")),
            ReloadPlan(update=("a",), unchanged=("b", "c")),
        ),
        (
            _fleet(_node("a", ready_timeout=Duration(5)), _node("b"), _node("c")),
            ReloadPlan(update=("a",), unchanged=("b", "c")),
        ),
        # How many warm spares a node keeps: the pool is resized, the node left running.
        (
            _fleet(_node("a", spares=2), _node("b"), _node("c")),
            ReloadPlan(update=("a",), unchanged=("b", "c")),
        ),
        # Disabling stops, enabling starts.
        (
            _fleet(_node("a", enabled=False), _node("b"), _node("c")),
            ReloadPlan(stop=("a",), unchanged=("b", "c")),
        ),
        # Daemon-level settings are reported, nodes untouched.
        (
            _fleet(_node("a"), _node("b"), _node("c"), mqtt=MqttSpec(port=1884)),
            ReloadPlan(unchanged=("a", "b", "c"), needs_daemon_restart=("mqtt",)),
        ),
    ],
)
def test_plan(new: FleetSpec, expected: ReloadPlan) -> None:
    assert plan_reload(BASE, new) == expected


def test_venue_change_restarts_only_nodes_using_it() -> None:
    old = _fleet(_node("a"), _node("b", venues=["v2"]))
    venues = {"v1": VenueSpec(base_url_http="http://changed"), "v2": VenueSpec(base_url_http="http://b")}
    new = msgspec.structs.replace(old, venues=venues)
    plan = plan_reload(old, new)
    assert plan.restart == ("a",)
    assert plan.unchanged == ("b",)


def test_redis_change_restarts_strategy_nodes_only() -> None:
    old = _fleet(_node("cmd"), _node("strat", command=None, strategies=[STRATEGY]))
    new = msgspec.structs.replace(old, redis=RedisSpec(url="redis://other:6379/0"))
    plan = plan_reload(old, new)
    assert plan.restart == ("strat",)
    assert plan.unchanged == ("cmd",)


def test_enabling_a_disabled_node_starts_it() -> None:
    old = _fleet(_node("a", enabled=False))
    plan = plan_reload(old, _fleet(_node("a")))
    assert plan.start == ("a",)


def test_describe_names_every_action() -> None:
    plan = ReloadPlan(
        start=("d",), stop=("c",), restart=("a",), update=("b",), needs_daemon_restart=("mqtt",)
    )
    text = plan.describe()
    for word in ("start d", "stop c", "restart a", "update b", "mqtt"):
        assert word in text
    assert ReloadPlan().describe() == "no changes"
