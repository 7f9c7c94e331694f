"""`fleet check --deep`: a dry run of a strategy node's build, without trading, so that a typo in a strategy
config is found before a restart instead of during one.

Checks: the node can run as a strategy node (one venue, credentials resolvable), each strategy imports and is
a nautilus Strategy, its config validates as the node would pass it (with the defaults the node adds), and
every instrument the strategies trade exists and is trading on the venue (exchangeInfo, unsigned).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from recovery.errors import SpecError
from recovery.spec import NodeRun, from_fleet, node_instruments
from supervisor.config.schema import FleetSpec, NodeSpec, StrategySpec
from supervisor.secrets import SecretUnavailableError, resolve_secret

log = logging.getLogger(__name__)

EXCHANGE_INFO_TIMEOUT_S = 10.0


def check_node(fleet: FleetSpec, node: NodeSpec, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem found, as a sentence naming the node; [] when the node would build. Secrets resolve
    from `environ` (default: this process' environment), as the node's would."""
    try:
        run = from_fleet(fleet, node)
    except SpecError as exc:
        return [exc.message]
    problems = [f"node {node.name}: {p}" for p in _credentials(run, environ)]
    for index, strategy in enumerate(run.strategies):
        problems += [
            f"node {node.name}: strategy {index} ({strategy.path}): {p}" for p in _strategy(strategy)
        ]
    problems += [f"node {node.name}: {p}" for p in _instruments(run)]
    return problems


def _credentials(run: NodeRun, environ: Mapping[str, str] | None) -> list[str]:
    env = dict(os.environ if environ is None else environ)
    problems = []
    for name, ref in (("api_key", run.venue.api_key), ("api_secret", run.venue.api_secret)):
        if ref is None:
            problems.append(f"venue {run.venue_name} has no {name}")
            continue
        try:
            resolve_secret(ref, env)
        except SecretUnavailableError as exc:
            problems.append(f"venue {run.venue_name} {name}: {exc}")
    return problems


def _strategy(spec: StrategySpec) -> list[str]:
    import msgspec
    from nautilus_trader.common.config import resolve_config_path, resolve_path
    from nautilus_trader.trading.strategy import Strategy

    from recovery.build import strategy_config

    try:
        importable = strategy_config(spec)
    except SpecError as exc:
        return [exc.message]
    try:
        cls = resolve_path(importable.strategy_path)
    except Exception as exc:  # ImportError, AttributeError, ValueError for a malformed path
        return [f"does not import: {type(exc).__name__}: {exc}"]
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        return [f"{importable.strategy_path} is not a nautilus Strategy"]
    try:
        config_cls = resolve_config_path(importable.config_path)
    except Exception as exc:
        return [f"config class {importable.config_path} does not import: {type(exc).__name__}: {exc}"]
    try:
        config_cls.parse(msgspec.json.encode(importable.config))
    except (
        Exception
    ) as exc:  # msgspec.ValidationError names the field: "Expected `str`, got `int` - at `$.x`"
        return [f"config does not validate against {importable.config_path}: {exc}"]
    return []


def _instruments(run: NodeRun) -> list[str]:
    from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
    from nautilus_trader.model.identifiers import InstrumentId

    wanted: dict[str, str] = {}
    problems = []
    for instrument in node_instruments(run):
        try:
            wanted[instrument] = str(BinanceSymbol(InstrumentId.from_str(instrument).symbol.value))
        except Exception as exc:  # a malformed id
            problems.append(f"instrument {instrument!r} is not a nautilus instrument id: {exc}")
    if not wanted:
        return problems
    url = _base_url(run) + "/fapi/v1/exchangeInfo"
    try:
        with urllib.request.urlopen(url, timeout=EXCHANGE_INFO_TIMEOUT_S) as reply:  # noqa: S310 - the venue's URL
            info: dict[str, Any] = json.load(reply)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return [*problems, f"venue {run.venue_name}: cannot read {url}: {exc}"]
    status = {row.get("symbol"): row.get("status") for row in info.get("symbols", [])}
    for instrument, symbol in wanted.items():
        if symbol not in status:
            problems.append(f"instrument {instrument} ({symbol}) does not exist on venue {run.venue_name}")
        elif status[symbol] != "TRADING":
            problems.append(
                f"instrument {instrument} ({symbol}) is {status[symbol]} on venue {run.venue_name}"
            )
    return problems


def _base_url(run: NodeRun) -> str:
    if run.venue.base_url_http:
        return run.venue.base_url_http.rstrip("/")
    from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
    from nautilus_trader.adapters.binance.common.urls import get_http_base_url

    environment = BinanceEnvironment.TESTNET if run.venue.testnet else BinanceEnvironment.LIVE
    return str(get_http_base_url(BinanceAccountType.USDT_FUTURES, environment, is_us=False)).rstrip("/")
