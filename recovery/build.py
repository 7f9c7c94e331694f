"""The nautilus TradingNodeConfig a recovering node runs with, built from its spec.

Every setting that recovery depends on is made here, explicitly, with the reason next to it; a test asserts
the ones the issue names.
"""

from __future__ import annotations

import importlib
import inspect
import math
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nautilus_trader.adapters.binance import BINANCE
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
from nautilus_trader.adapters.binance.config import (
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceInstrumentProviderConfig,
)
from nautilus_trader.config import (
    CacheConfig,
    DatabaseConfig,
    ImportableStrategyConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.identifiers import InstrumentId

from recovery.errors import SpecError
from recovery.spec import NodeRun, RedisEndpoint, Timeouts, node_instruments, strategy_instruments
from supervisor.config.schema import StrategySpec
from supervisor.secrets import Secret

# Client name the factories are registered under; see recovery/binance/factory.py for why it must be this.
CLIENT_NAME = BINANCE
_INSTANCE_NAMESPACE = uuid.UUID("6f1c2f43-8f5e-4c4e-9a59-5d1e2b0a7c11")


@dataclass(frozen=True, kw_only=True)
class Credentials:
    api_key: Secret
    api_secret: Secret


def exec_engine_config(*, reconciliation_lookback_mins: int | None = None) -> LiveExecEngineConfig:
    """Reconcile at every start, over everything the venue still has.

    - lookback None: a window would hide open stops older than it (and our client ignores it anyway);
    - generate_missing_orders: nautilus must align positions it cannot explain by fills (the difference is
      then reported as a synthetic fill, never left silently);
    - filter_position_reports False: position reports are the check that the result equals the venue.
    The lookback argument exists only to reproduce upstream defect 4 in tests; production passes None.
    """
    return LiveExecEngineConfig(
        reconciliation=True,
        reconciliation_lookback_mins=reconciliation_lookback_mins,
        generate_missing_orders=True,
        filter_position_reports=False,
    )


def cache_config(redis: RedisEndpoint, timeout_s: float) -> CacheConfig:
    seconds = max(1, math.ceil(timeout_s))
    return CacheConfig(
        database=DatabaseConfig(
            type="redis",
            host=redis.host,
            port=redis.port,
            username=redis.username,
            password=redis.password,
            ssl=redis.ssl,
            connection_timeout=seconds,
            response_timeout=seconds,
        ),
        encoding="msgpack",
        # Write-through: a buffered write was lost on kill -9 (DESIGN.md, crash semantics).
        buffer_interval_ms=None,
        # Balances at restart (FR-003) need the account events; without them accounts are never written.
        persist_account_events=True,
        # Keys `trader-{trader_id}:...`, independent of the instance id, so a restarted node finds its own
        # (with use_instance_id=True nautilus cannot read its general keys back after a restart).
        use_trader_prefix=True,
        use_instance_id=False,
        # FLUSHDB of the whole database (other traders, fleet keys): never.
        flush_on_start=False,
    )


def instance_id_for(trader_id: str) -> UUID4:
    """The same instance id on every start of a trader (log and message-bus correlation). nautilus accepts
    only version-4 UUIDs, so a name-based UUID is given version-4 bits."""
    raw = bytearray(uuid.uuid5(_INSTANCE_NAMESPACE, f"nautilus-fleet/{trader_id}").bytes)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return UUID4.from_str(str(uuid.UUID(bytes=bytes(raw))))


def strategy_config(spec: StrategySpec) -> ImportableStrategyConfig:
    """The strategy by import path. Defaults that recovery needs, unless the config sets them:
    - oms_type NETTING: one net position per instrument (HEDGING leaves two after a synthetic fill);
    - external_order_claims: the strategy's instruments, so that orders and positions reconciliation finds
      for them (a lost cache, a stop placed before the crash but never acknowledged) come back as the
      strategy's own, not as an EXTERNAL strategy's."""
    config: dict[str, Any] = dict(spec.config)
    if "strategy_id" in config:
        raise SpecError(
            f"{spec.path}: config key strategy_id is not supported by nautilus' importable configs; "
            "set order_id_tag (the strategy id becomes ClassName-TAG)"
        )
    config.setdefault("oms_type", "NETTING")
    instruments = strategy_instruments(spec)
    if instruments:
        config.setdefault("external_order_claims", instruments)
    return ImportableStrategyConfig(
        strategy_path=spec.path,
        config_path=spec.config_path or config_path_of(spec.path),
        config=config,
    )


def config_path_of(strategy_path: str) -> str:
    """The strategy class' config type, from the annotation of its `config` parameter."""
    module_name, _, class_name = strategy_path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # the user's module runs at import: anything it raises is a broken spec
        raise SpecError(
            f"strategy {strategy_path} does not import: {type(exc).__name__}: {exc}",
            {"module": module_name, "error": f"{type(exc).__name__}: {exc}"},
        ) from exc
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    config_type = hints.get("config")
    if inspect.isclass(config_type):
        return f"{config_type.__module__}:{config_type.__qualname__}"
    raise SpecError(f"strategy {strategy_path}: cannot tell its config class; set config_path")


def build_node_config(
    run: NodeRun,
    *,
    credentials: Credentials,
    redis: RedisEndpoint,
    timeouts: Timeouts,
    log_level: str = "INFO",
    reconciliation_lookback_mins: int | None = None,
) -> TradingNodeConfig:
    venue = run.venue
    instruments = [InstrumentId.from_str(i) for i in node_instruments(run)]
    provider = (
        BinanceInstrumentProviderConfig(load_ids=frozenset(instruments))
        if instruments
        else BinanceInstrumentProviderConfig(load_all=True)
    )
    environment = BinanceEnvironment.TESTNET if venue.testnet else BinanceEnvironment.LIVE
    common: Mapping[str, Any] = {
        "api_key": credentials.api_key.reveal(),
        "api_secret": credentials.api_secret.reveal(),
        "account_type": BinanceAccountType.USDT_FUTURES,
        "environment": environment,
        "base_url_http": venue.base_url_http,
        "base_url_ws": venue.base_url_ws,
        "instrument_provider": provider,
    }
    grace = float(run.node.stop.grace)
    return TradingNodeConfig(
        trader_id=run.trader_id,
        instance_id=instance_id_for(run.trader_id),
        logging=LoggingConfig(log_level=log_level, log_colors=False),
        cache=cache_config(redis, timeouts.redis),
        exec_engine=exec_engine_config(reconciliation_lookback_mins=reconciliation_lookback_mins),
        data_clients={CLIENT_NAME: BinanceDataClientConfig(**common)},
        exec_clients={
            CLIENT_NAME: BinanceExecClientConfig(
                **common,
                # The user stream follows the WebSocket base (a local venue serves both on one port).
                base_url_ws_stream=venue.base_url_ws_stream or venue.base_url_ws,
            )
        },
        strategies=[strategy_config(s) for s in run.strategies],
        load_state=True,
        # Never on nautilus' terms: its stop saves even when recovery failed and the strategies never ran,
        # overwriting good state with defaults. The node saves itself after a clean run (lifecycle).
        save_state=False,
        # Slightly above ours, so that our own timeout fires first and reports (nautilus only logs).
        timeout_connection=timeouts.connect + 1.0,
        timeout_reconciliation=timeouts.reconcile,
        timeout_portfolio=timeouts.portfolio,
        # A stop must finish within the supervisor's grace before SIGKILL.
        timeout_disconnection=max(0.5, min(5.0, grace * 0.3)),
        timeout_post_stop=max(0.2, min(2.0, grace * 0.1)),
        timeout_shutdown=max(0.5, min(5.0, grace * 0.2)),
    )
