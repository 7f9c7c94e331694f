"""What the drill refuses, and the copy of the fleet it runs (no servers)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import yaml

from recovery.drill.fleet_copy import derive, drill_trader_id, fleet_document, is_loopback_url, refusals
from supervisor.config import load_fleet, parse_fleet
from supervisor.config.schema import FleetSpec

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "fleet.yaml"


def example() -> FleetSpec:
    return parse_fleet(EXAMPLE.read_text(), str(EXAMPLE))


def with_venue(**fields: object) -> FleetSpec:
    spec = example()
    venue = msgspec.structs.replace(spec.venues["emulator-a"], **fields)
    return msgspec.structs.replace(spec, venues={**spec.venues, "emulator-a": venue})


def test_the_example_fleet_is_drillable() -> None:
    assert refusals(example()) == []


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8900", True),
        ("ws://127.9.9.9:1", True),
        ("http://localhost:8900", True),
        ("http://[::1]:8900", True),
        ("https://fapi.binance.com", False),
        ("http://10.0.0.5:8900", False),
        ("http://192.168.1.2", False),
        ("not a url", False),
    ],
)
def test_only_loopback_addresses_count_as_local(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_a_real_exchange_is_refused_with_the_reason() -> None:
    assert refusals(with_venue(base_url_http="https://fapi.binance.com")) == [
        "venue emulator-a: base_url_http https://fapi.binance.com is not a loopback address; "
        "the drill refuses any venue that is not the local emulator"
    ]
    (missing,) = refusals(with_venue(base_url_ws=None))
    assert missing.startswith(
        "venue emulator-a: no base_url_ws, so its nodes would connect to Binance itself"
    )
    (testnet,) = refusals(with_venue(testnet=True))
    assert "testnet: true is Binance's testnet, a real exchange" in testnet
    (stream,) = refusals(with_venue(base_url_ws_stream="wss://fstream.binance.com"))
    assert "base_url_ws_stream wss://fstream.binance.com is not a loopback address" in stream


def test_shared_accounts_other_instruments_and_no_strategy_node_are_refused() -> None:
    spec = example()
    shared = msgspec.structs.replace(
        spec,
        venues={
            **spec.venues,
            "emulator-b": msgspec.structs.replace(spec.venues["emulator-b"], account="emulator-a"),
        },
    )
    assert any("share venue account emulator-a" in r for r in refusals(shared))
    node = spec.nodes[0]
    assert node.strategies is not None
    first = node.strategies[0]
    strategy = msgspec.structs.replace(first, config={**first.config, "instrument_id": "BTCUSDT.BINANCE"})
    spot = msgspec.structs.replace(spec, nodes=[msgspec.structs.replace(node, strategies=[strategy])])
    assert any("BTCUSDT.BINANCE is not a Binance USD-M perpetual" in r for r in refusals(spot))
    none = msgspec.structs.replace(
        spec, nodes=[msgspec.structs.replace(n, enabled=False) for n in spec.nodes]
    )
    assert refusals(none) == [
        "no enabled strategy node (`strategies:`): the drill kills and checks strategy nodes"
    ]


def test_a_drill_trader_id_keeps_the_tag_that_client_order_ids_carry() -> None:
    assert drill_trader_id("EMA-001", "3f9a1c") == "EMA.DRILL3F9A1C-001"
    assert drill_trader_id("MY-DESK-007", "abc") == "MY-DESK.DRILLABC-007"


def test_the_copy_changes_the_infrastructure_and_keeps_the_strategies(tmp_path: Path) -> None:
    spec = example()
    fleet = derive(
        spec,
        run_id="abc123",
        work=tmp_path,
        http_url="http://127.0.0.1:4000",
        ws_url="ws://127.0.0.1:4000",
        kills=5,
    )
    copy = fleet.spec
    assert [n.name for n in copy.nodes] == [n.name for n in spec.nodes]
    assert [n.strategies for n in copy.nodes] == [n.strategies for n in spec.nodes]
    assert [n.trader_id for n in copy.nodes] == [
        "EMA.DRILLABC123-001",
        "EMA.DRILLABC123-002",
        "EMA.DRILLABC123-003",
    ]
    assert [(n.ready_timeout, n.watchdog, n.cache_compaction) for n in copy.nodes] == [
        (n.ready_timeout, n.watchdog, n.cache_compaction) for n in spec.nodes
    ]
    assert all(n.restart.backoff_max <= 1.0 and n.restart.start_limit.burst >= 30 for n in copy.nodes)
    assert {v.base_url_http for v in copy.venues.values()} == {"http://127.0.0.1:4000"}
    assert {v.api_key.env for v in copy.venues.values() if v.api_key} == {
        "FLEET_DRILL_0_API_KEY",
        "FLEET_DRILL_1_API_KEY",
        "FLEET_DRILL_2_API_KEY",
    }
    assert (copy.mqtt.topic_prefix, copy.mqtt.client_id) == (
        "nautilus-fleet-drill/demo/abc123",
        "fleet-drill-abc123",
    )
    assert (copy.mqtt.host, copy.mqtt.port, copy.redis) == (spec.mqtt.host, spec.mqtt.port, spec.redis)
    assert not copy.metrics.enabled
    assert copy.runtime_dir == str(tmp_path / "run") and copy.control.socket is None
    assert fleet.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def test_the_copy_written_as_yaml_loads_back_to_the_same_fleet(tmp_path: Path) -> None:
    fleet = derive(
        example(),
        run_id="abc123",
        work=tmp_path,
        http_url="http://127.0.0.1:4000",
        ws_url="ws://127.0.0.1:4000",
        kills=5,
    )
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet_document(fleet.spec), sort_keys=False))
    env = {name: "x" for pair in fleet.credentials.values() for name in pair}
    assert load_fleet(path, env) == fleet.spec
