"""The example fleet.yaml at the top of the repository is valid and means what its comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config.errors import ConfigError
from supervisor.config.loader import load_fleet
from supervisor.config.render import render_fleet
from supervisor.config.resolve import topic_prefix

EXAMPLE = Path(__file__).parents[3] / "fleet.yaml"
ENV = {f"DEMO_{x}_API_{kind}": f"{x}-{kind}" for x in "ABC" for kind in ("KEY", "SECRET")} | {"HOME": "/h"}


def test_example_fleet_loads() -> None:
    spec = load_fleet(EXAMPLE, ENV)
    assert spec.fleet == "demo"
    assert topic_prefix(spec) == "nautilus-fleet/demo"
    assert spec.redis.url == "redis://127.0.0.1:6379/0"
    assert (spec.mqtt.host, spec.mqtt.port) == ("127.0.0.1", 1883)
    # One venue account per node, all served by the emulator on port 8900.
    assert sorted(spec.venues) == ["emulator-a", "emulator-b", "emulator-c"]
    for venue in spec.venues.values():
        assert (venue.type, venue.base_url_http, venue.base_url_ws) == (
            "binance_usdm",
            "http://127.0.0.1:8900",
            "ws://127.0.0.1:8900",
        )
    assert [n.name for n in spec.nodes] == ["ema-btc", "ema-eth", "ema-sol"]
    instruments = []
    for node in spec.nodes:
        assert node.command is None and node.strategies is not None
        assert [s.path for s in node.strategies] == ["recovery.examples.ema_cross:EmaCross"]
        instruments.append(node.strategies[0].config["instrument_id"])
    assert instruments == ["BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE", "SOLUSDT-PERP.BINANCE"]
    eth = spec.node("ema-eth")
    assert (eth.restart.backoff_initial, eth.restart.backoff_max, eth.stop.grace) == (0.5, 10.0, 10.0)
    assert spec.node("ema-btc").ready_timeout == 120.0
    assert spec.node("ema-sol").cache_compaction.keep_closed == 50
    assert "***" in render_fleet(spec)


def test_example_fleet_needs_its_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        load_fleet(EXAMPLE, {"HOME": "/h"})
    assert [e.field for e in info.value.errors] == [
        f"venues.emulator-{x}.api_{kind}.env" for x in "abc" for kind in ("key", "secret")
    ]
