"""Identifier rules, and that the trader_id rule agrees with nautilus_trader (which aborts on a bad one)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from supervisor.config.identifiers import (
    instrument_id_problem,
    is_env_name,
    is_import_path,
    nautilus_trader_id_problem,
    trader_id_problem,
)

# (value, nautilus accepts it, the fleet accepts it)
TRADER_IDS: list[tuple[str, bool, bool]] = [
    ("TESTER-001", True, True),
    ("a-b", True, True),
    ("A-B-C", True, True),
    ("A--1", True, True),
    ("MM_BTC.v2-7", True, True),
    ("A-1 ", True, False),
    (" -1", True, False),
    ("A/B-1", True, False),
    ("A:B-1", True, False),
    ("A-\t1", True, False),
    ("TESTER", False, False),
    ("-001", False, False),
    ("TRADER-", False, False),
    ("-", False, False),
    ("--", False, False),
    ("", False, False),
    ("   ", False, False),
    ("ÄB-1", False, False),
    ("A-ÄB", False, False),
]


@pytest.mark.parametrize(("value", "nautilus_ok", "fleet_ok"), TRADER_IDS)
def test_trader_id_rules(value: str, nautilus_ok: bool, fleet_ok: bool) -> None:
    assert (nautilus_trader_id_problem(value) is None) == nautilus_ok
    assert (trader_id_problem(value) is None) == fleet_ok


# Imports nautilus once, then tries each value in a forked child: a rejected TraderId is a Rust panic that
# aborts the process, so each attempt needs a process of its own.
_PROBE = """
import json, os, sys
from nautilus_trader.model.identifiers import TraderId
results = {}
for value in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        TraderId(value)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    results[value] = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
print(json.dumps(results))
"""


@pytest.mark.slow
def test_trader_id_rule_agrees_with_nautilus() -> None:
    values = [value for value, _, _ in TRADER_IDS]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(values)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    accepted = json.loads(done.stdout)
    assert accepted == {value: nautilus_trader_id_problem(value) is None for value in values}
    # The table is not one-sided: nautilus really rejects some of these.
    assert sorted(set(accepted.values())) == [False, True]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("BTCUSDT-PERP.BINANCE", None),
        ("A.B.C", None),
        ("BTCUSDT", 'it has no "." between symbol and venue'),
        (".BINANCE", "the symbol is empty"),
        ("BTC.", "the venue is empty"),
    ],
)
def test_instrument_ids(value: str, problem: str | None) -> None:
    assert instrument_id_problem(value) == problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [("API_KEY", True), ("_x1", True), ("1X", False), ("A-B", False), ("", False), ("A B", False)],
)
def test_env_names(value: str, ok: bool) -> None:
    assert is_env_name(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("pkg.mod:Strategy", True),
        ("mod:S", True),
        ("pkg.mod.Strategy", False),
        ("pkg.mod:", False),
        (":S", False),
        ("pkg..mod:S", False),
        ("pkg.mod:S.x", False),
    ],
)
def test_import_paths(value: str, ok: bool) -> None:
    assert is_import_path(value) is ok
