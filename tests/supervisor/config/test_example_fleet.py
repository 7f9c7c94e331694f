"""The example fleet.yaml at the top of the repository is valid and means what its comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config.errors import ConfigError
from supervisor.config.loader import load_fleet
from supervisor.config.render import render_fleet
from supervisor.config.resolve import topic_prefix

EXAMPLE = Path(__file__).parents[3] / "fleet.yaml"
ENV = {"EMULATOR_API_KEY": "k", "EMULATOR_API_SECRET": "s", "HOME": "/h"}


def test_example_fleet_loads() -> None:
    spec = load_fleet(EXAMPLE, ENV)
    assert spec.fleet == "demo"
    assert topic_prefix(spec) == "nautilus-fleet/demo"
    assert spec.redis.url == "redis://127.0.0.1:6379/0"
    assert (spec.mqtt.host, spec.mqtt.port) == ("127.0.0.1", 1883)
    venue = spec.venues["emulator"]
    assert (venue.type, venue.base_url_http, venue.base_url_ws) == (
        "binance_usdm",
        "http://127.0.0.1:8900",
        "ws://127.0.0.1:8900",
    )
    assert [n.name for n in spec.nodes] == ["alpha", "beta", "gamma"]
    for node in spec.nodes:
        assert node.command is not None
        assert node.command[:3] == ["python", "-m", "supervisor.demo_node"]
        assert node.strategies is None
    beta = spec.node("beta")
    assert (beta.restart.backoff_initial, beta.restart.backoff_max, beta.stop.grace) == (0.5, 5.0, 3.0)
    assert spec.node("gamma").watchdog is None
    assert "***" in render_fleet(spec)


def test_example_fleet_needs_its_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        load_fleet(EXAMPLE, {"HOME": "/h"})
    assert [e.field for e in info.value.errors] == [
        "venues.emulator.api_key.env",
        "venues.emulator.api_secret.env",
    ]
