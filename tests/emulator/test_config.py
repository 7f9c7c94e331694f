"""Accounts from a file, from the environment, or the documented test account; bad files are reported."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from emulator import __main__ as cli
from emulator.config import DEFAULT_API_KEY, DEFAULT_API_SECRET, ConfigError, load_accounts
from emulator.symbols import resolve_symbols


def test_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(
        "accounts:\n"
        "  - {name: main, api_key: k1, api_secret: s1, balance: '2500.5', leverage: 10,\n"
        "     positions: [{symbol: BTCUSDT, amount: '-0.002', entry_price: '61000'}]}\n"
        "  - {name: other, api_key: k2, api_secret: s2}\n"
    )
    main, other = load_accounts(path)
    assert (main.name, main.api_key, main.balance, main.leverage) == ("main", "k1", Decimal("2500.5"), 10)
    assert main.positions[0].amount == Decimal("-0.002")
    assert other.balance == Decimal(100_000)
    assert "s1" not in repr(main)


def test_accounts_from_environment_or_default() -> None:
    (env,) = load_accounts(None, {"EMULATOR_API_KEY": "ek", "EMULATOR_API_SECRET": "es"})
    assert (env.api_key, env.api_secret) == ("ek", "es")
    (default,) = load_accounts(None, {})
    assert (default.api_key, default.api_secret) == (DEFAULT_API_KEY, DEFAULT_API_SECRET)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts:\n  - {api_key: k}\n", "api_secret"),
        ("accounts:\n  - {api_key: k, api_secret: s, colour: red}\n", "colour"),
        ("accounts:\n  - {api_key: k, api_secret: s}\n  - {api_key: k2, api_secret: s}\n", "distinct name"),
        ("accounts: []\n", "at least one"),
        ("accounts: [\n", "invalid accounts file"),
    ],
)
def test_bad_accounts_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_accounts(path)
    assert str(path) in str(info.value)


@pytest.fixture
def keep_root_logging() -> Iterator[None]:
    """`main()` configures the root logger as a process entry point does; undo that after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("keep_root_logging")
def test_cli_exits_2_on_a_bad_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts: []\n")
    assert cli.main(["--accounts", str(path), "--port", "0"]) == 2
    assert cli.main(["--accounts", str(tmp_path / "missing.yaml")]) == 2


def test_symbol_selection() -> None:
    assert [s.symbol for s in resolve_symbols(["btcusdt", " ETHUSDT"])] == ["BTCUSDT", "ETHUSDT"]
    fifty = resolve_symbols(None, 50)
    assert len(fifty) == 50 and len({s.symbol for s in fifty}) == 50
    assert fifty[-1].symbol == "S040USDT"
    assert resolve_symbols(["ZZZUSDT"])[0].tick_size > 0
