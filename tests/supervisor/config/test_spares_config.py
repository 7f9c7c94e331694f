"""`spares:` in fleet.yaml: per fleet, per node (or in defaults), bounded, strategy nodes only."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import ConfigError, load_fleet

VENUES = "venues: {emu: {base_url_http: http://127.0.0.1:8900}}\n"
STRATEGY_NODE = """\
  - name: alpha
    trader_id: A-001
    venues: [emu]
    strategies: [{path: "recovery.examples.hold_many:HoldMany", instruments: [BTCUSDT-PERP.BINANCE]}]
"""
COMMAND_NODE = """\
  - name: beta
    trader_id: B-001
    command: [run]
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return load_fleet(path, {})


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [line.replace(str(tmp_path) + "/", "") for line in str(caught.value).splitlines()]


def test_the_fleet_shares_one_spare_and_nodes_keep_none_of_their_own_by_default(tmp_path: Path) -> None:
    fleet = load(tmp_path, "fleet: f\n" + VENUES + "nodes:\n" + STRATEGY_NODE)
    assert fleet.spares == 1  # type: ignore[attr-defined]
    assert fleet.nodes[0].spares == 0  # type: ignore[attr-defined]


def test_defaults_give_every_node_spares_and_a_command_node_ignores_them(tmp_path: Path) -> None:
    fleet = load(
        tmp_path,
        "fleet: f\n" + VENUES + "spares: 0\ndefaults: {spares: 2}\nnodes:\n" + STRATEGY_NODE + COMMAND_NODE,
    )
    assert fleet.spares == 0  # type: ignore[attr-defined]
    assert [n.spares for n in fleet.nodes] == [2, 2]  # type: ignore[attr-defined]


def test_out_of_range_counts_are_errors_at_their_position(tmp_path: Path) -> None:
    text = "fleet: f\n" + VENUES + "spares: 9\nnodes:\n" + STRATEGY_NODE + "    spares: -1\n"
    assert errors(tmp_path, text) == [
        "fleet.yaml:3:9 spares: expected an integer from 0 to 4, got 9",
        "fleet.yaml:9:13 nodes[0].spares: expected an integer from 0 to 4, got -1",
    ]


def test_spares_written_on_a_command_node_are_an_error(tmp_path: Path) -> None:
    text = "fleet: f\nnodes:\n" + COMMAND_NODE + "    spares: 1\n"
    assert errors(tmp_path, text) == [
        "fleet.yaml:6:13 nodes[0].spares: expected 0 for a command node (warm spares are for strategy nodes, "
        "which run recovery.node), got 1"
    ]
