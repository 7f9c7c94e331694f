"""`fleet check --deep`: the node's build as a dry run, against the emulator's exchangeInfo."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.testing import EmulatorProcess
from recovery.deep_check import check_node
from supervisor.config.loader import parse_fleet
from tests.supervisor.conftest import run_fleet

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

FLEET = """
fleet: deep
venues:
  emu:
    base_url_http: {http}
    base_url_ws: {ws}
    api_key: {{env: DEEP_KEY}}
    api_secret: {{env: DEEP_SECRET}}
nodes:
  - name: n1
    trader_id: DEEP-001
    venues: [emu]
    strategies:
      - path: {path}
        config: {config}
"""
GOOD_CONFIG = '{instrument_id: BTCUSDT-PERP.BINANCE, order_id_tag: "001"}'
EXAMPLE = "recovery.examples.ema_cross:EmaCross"
GOOD_EXAMPLE = '{instrument_id: BTCUSDT-PERP.BINANCE, order_id_tag: "001", fast_period: 5, slow_period: 12}'
ENV = {"DEEP_KEY": "k", "DEEP_SECRET": "s"}


def problems(
    venue: EmulatorProcess,
    *,
    path: str = "tests.recovery.strategies:HubProbe",
    config: str = GOOD_CONFIG,
    env: dict[str, str] | None = None,
) -> list[str]:
    text = FLEET.format(http=venue.http_url, ws=venue.ws_url, path=path, config=config)
    fleet = parse_fleet(text, "fleet.yaml")
    return check_node(fleet, fleet.node("n1"), ENV if env is None else env)


async def test_a_node_that_would_build_has_no_problems(venue: EmulatorProcess) -> None:
    assert problems(venue) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"path": "tests.recovery.strategies:HubProbeTypo"}, "does not import"),
        ({"path": "tests.recovery.cache_reader:CachedState"}, "cannot tell its config class"),
        (
            {"config": '{instrument_id: BTCUSDT-PERP.BINANCE, report_ready: "yes"}'},
            "config does not validate",
        ),
        ({"config": "{instrument_id: DOGEUSDT-PERP.BINANCE}"}, "DOGEUSDT) does not exist on venue emu"),
        ({"config": "{instrument_id: BTCUSDT-PERP.BINANCE, strategy_id: X}"}, "set order_id_tag"),
        ({"env": {}}, "venue emu api_key: environment variable DEEP_KEY is not set"),
    ],
)
async def test_problems_are_found_before_a_restart(
    venue: EmulatorProcess, kwargs: dict[str, str], expected: str
) -> None:
    found = problems(venue, **kwargs)  # type: ignore[arg-type]
    assert any(expected in p and p.startswith("node n1: ") for p in found), found


async def test_fleet_check_deep_reports_a_typo_in_a_strategy_config(
    venue: EmulatorProcess, tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(FLEET.format(http=venue.http_url, ws=venue.ws_url, path=EXAMPLE, config=GOOD_EXAMPLE))
    result = run_fleet("check", "--deep", str(good), env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith(f"{good}: OK (valid, and this host can run it)")

    typo = tmp_path / "typo.yaml"
    config = GOOD_EXAMPLE.replace("fast_period: 5", "fast_perod: 5")
    typo.write_text(FLEET.format(http=venue.http_url, ws=venue.ws_url, path=EXAMPLE, config=config))
    result = run_fleet("check", "--deep", str(typo), env=ENV)
    assert result.returncode == 2
    assert "node n1: strategy 0 (recovery.examples.ema_cross:EmaCross)" in result.stderr
    assert "fast_perod" in result.stderr
