"""Reading the node spec, the Redis URL and the timeouts (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recovery.errors import SpecError
from recovery.spec import load_handed_spec, parse_redis_url, strategy_instruments, timeouts_for
from supervisor.config.duration import parse_duration
from supervisor.config.schema import NodeSpec, RedisSpec, StrategySpec


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    return path


NODE = {"name": "n1", "trader_id": "T-001", "venues": ["v"], "strategies": [{"path": "m:S"}]}
VENUES = {"v": {"api_key": {"env": "K"}, "api_secret": {"env": "S"}}}


def test_handed_spec_decodes_like_fleet_yaml(tmp_path: Path) -> None:
    run = load_handed_spec(
        write(tmp_path, {"fleet": "f", "node": {**NODE, "ready_timeout": "90s"}, "venues": VENUES})
    )
    assert (run.trader_id, run.venue_name, run.fleet) == ("T-001", "v", "f")
    assert float(run.node.ready_timeout) == 90.0
    assert run.redis == RedisSpec()


@pytest.mark.parametrize(
    ("node", "venues", "message"),
    [
        ({**NODE, "venues": []}, VENUES, "trades exactly one"),
        ({**NODE, "venues": ["v", "w"]}, VENUES, "trades exactly one"),
        ({**NODE, "venues": ["w"]}, VENUES, "not defined"),
        ({**NODE, "strategies": None, "command": ["x"]}, VENUES, "no strategies"),
        ({**NODE, "surprise": 1}, VENUES, "does not decode"),
    ],
)
def test_specs_a_node_cannot_run(tmp_path: Path, node: object, venues: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_handed_spec(write(tmp_path, {"fleet": "f", "node": node, "venues": venues}))


def test_unreadable_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_handed_spec(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("url", "password", "expected"),
    [
        ("redis://127.0.0.1:6379/0", None, ("127.0.0.1", 6379, None, None, False)),
        ("redis://localhost", None, ("localhost", 6379, None, None, False)),
        ("rediss://u:p%40ss@h:7000", None, ("h", 7000, "u", "p@ss", True)),
        ("redis://:old@h:1/0", "fromref", ("h", 1, None, "fromref", False)),
    ],
)
def test_redis_url(url: str, password: str | None, expected: tuple[object, ...]) -> None:
    endpoint = parse_redis_url(url, password)
    assert (endpoint.host, endpoint.port, endpoint.username, endpoint.password, endpoint.ssl) == expected
    assert "p@ss" not in repr(endpoint) and "fromref" not in repr(endpoint)


@pytest.mark.parametrize("url", ["http://h", "redis://h/3", "redis://h/x"])
def test_redis_urls_nautilus_cannot_use(url: str) -> None:
    with pytest.raises(SpecError):
        parse_redis_url(url)


def node(ready: str = "60s", **env: str) -> NodeSpec:
    return NodeSpec(name="n", trader_id="T-001", ready_timeout=parse_duration(ready), env=env)


@pytest.mark.parametrize(
    ("ready", "env", "overrides", "expected"),
    [
        ("60s", {}, {}, (15.0, 21.0, 6.0)),
        ("1h", {}, {}, (20.0, 30.0, 10.0)),  # capped
        ("10s", {}, {}, (2.5, 3.5, 1.0)),
        ("60s", {"FLEET_RECOVERY_RECONCILE_TIMEOUT": "45s"}, {}, (15.0, 45.0, 6.0)),
        (
            "60s",
            {"FLEET_RECOVERY_CONNECT_TIMEOUT": "5s"},
            {"connect": 2.0, "reconcile": None},
            (2.0, 21.0, 6.0),
        ),
    ],
)
def test_timeouts(
    ready: str, env: dict[str, str], overrides: dict[str, float | None], expected: tuple[float, ...]
) -> None:
    t = timeouts_for(node(ready), RedisSpec(), env, overrides)
    assert (t.connect, t.reconcile, t.portfolio) == pytest.approx(expected)
    assert t.redis == 2.0 and t.ready == float(parse_duration(ready))


def test_bad_timeout_values() -> None:
    with pytest.raises(SpecError, match="FLEET_RECOVERY_CONNECT_TIMEOUT"):
        timeouts_for(node(), RedisSpec(), {"FLEET_RECOVERY_CONNECT_TIMEOUT": "soon"})
    with pytest.raises(SpecError, match="positive"):
        timeouts_for(node(), RedisSpec(), {}, {"reconcile": 0.0})


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (StrategySpec(path="m:S", config={"instrument_id": "A.X"}), ["A.X"]),
        (StrategySpec(path="m:S", config={"instrument_ids": ["A.X", "B.X", "A.X"]}), ["A.X", "B.X"]),
        (StrategySpec(path="m:S", config={"instrument_id": "A.X"}, instruments=["C.X"]), ["C.X"]),
        (StrategySpec(path="m:S", config={"instrument_id": 3}), []),
    ],
)
def test_strategy_instruments(strategy: StrategySpec, expected: list[str]) -> None:
    assert strategy_instruments(strategy) == expected


def test_standalone_from_fleet_yaml(tmp_path: Path) -> None:
    from recovery.spec import load_from_fleet

    path = tmp_path / "fleet.yaml"
    path.write_text(
        "fleet: f\n"
        "venues:\n  v: {api_key: {env: K}, api_secret: {env: S}}\n"
        "nodes:\n"
        "  - {name: n1, trader_id: T-001, venues: [v], strategies: [{path: 'm:S'}]}\n"
        "  - {name: n2, trader_id: T-002, command: [x]}\n"
    )
    run = load_from_fleet(path, "n1", {"K": "k", "S": "s"})
    assert (run.fleet, run.trader_id, run.venue_name) == ("f", "T-001", "v")
    with pytest.raises(SpecError, match="no node named 'n3'"):
        load_from_fleet(path, "n3", {"K": "k", "S": "s"})
    with pytest.raises(SpecError, match="no strategies"):
        load_from_fleet(path, "n2", {"K": "k", "S": "s"})
