"""Emulator configuration: listen address, seed, listed symbols, accounts (from a file or the environment).

Accounts file (YAML or JSON):

    accounts:
      - name: main
        api_key: my-key
        api_secret: my-secret
        balance: "100000"          # USDT wallet, deposited at start (an income TRANSFER row explains it)
        fee_tier: 0                # 0..4 (maker/taker 0.02%/0.05% at tier 0)
        leverage: 20               # default leverage for every symbol
        positions:                 # optional starting positions (no trades behind them)
          - {symbol: BTCUSDT, amount: "0.010", entry_price: "65000"}

Without a file, `EMULATOR_API_KEY` / `EMULATOR_API_SECRET` define one account named `main`; without those,
the documented test credentials below are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec
import yaml

from emulator.ratelimit import RateLimitConfig
from emulator.symbols import SymbolSpec, resolve_symbols

DEFAULT_API_KEY = "emulator-test-api-key"
DEFAULT_API_SECRET = "emulator-test-api-secret"  # noqa: S105 - a published test credential, not a secret
DEFAULT_BALANCE = Decimal(100_000)
LISTEN_KEY_TTL_MS = 60 * 60 * 1000


class ConfigError(ValueError):
    """The accounts file (or another setting) is unusable; the message says where and why."""


class PositionSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    symbol: str
    amount: Decimal
    entry_price: Decimal


class AccountSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    api_key: str
    api_secret: str
    name: str = "main"
    balance: Decimal = DEFAULT_BALANCE
    fee_tier: int = 0
    leverage: int = 20
    positions: tuple[PositionSpec, ...] = ()

    def __repr__(self) -> str:  # never print the secret
        return f"AccountSpec(name={self.name!r}, api_key={self.api_key[:4]}..., balance={self.balance})"


class AccountsFile(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    accounts: tuple[AccountSpec, ...]


def default_account() -> AccountSpec:
    return AccountSpec(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET)


def load_accounts(path: Path | None, environ: dict[str, str] | None = None) -> tuple[AccountSpec, ...]:
    env = os.environ if environ is None else environ
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text())
            parsed = msgspec.convert(raw, AccountsFile, strict=False)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read accounts file: {exc.strerror}") from exc
        except (yaml.YAMLError, msgspec.ValidationError) as exc:
            raise ConfigError(f"{path}: invalid accounts file: {exc}") from exc
        _check_unique(path, parsed.accounts)
        return parsed.accounts
    key, secret = env.get("EMULATOR_API_KEY"), env.get("EMULATOR_API_SECRET")
    if key and secret:
        return (AccountSpec(api_key=key, api_secret=secret),)
    return (default_account(),)


def _check_unique(path: Path, accounts: tuple[AccountSpec, ...]) -> None:
    if not accounts:
        raise ConfigError(f"{path}: accounts: at least one account is needed")
    for attr in ("name", "api_key"):
        values = [getattr(a, attr) for a in accounts]
        if len(set(values)) != len(values):
            raise ConfigError(f"{path}: accounts: every account needs a distinct {attr}")


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    symbols: tuple[SymbolSpec, ...] = field(default_factory=lambda: tuple(resolve_symbols(None)))
    accounts: tuple[AccountSpec, ...] = field(default_factory=lambda: (default_account(),))
    price_mode: str = "walk"
    tick_ms: int = 1000
    state_file: Path | None = None
    price_script: Path | None = None
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    admin_allow_remote: bool = False
    listen_key_ttl_ms: int = LISTEN_KEY_TTL_MS
    algo_finish_delay_ms: int = 50
    auto_funding: bool = True  # settle funding at 00:00, 08:00 and 16:00 UTC
