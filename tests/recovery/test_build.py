"""The TradingNodeConfig a recovering node runs with: every setting recovery depends on."""

from __future__ import annotations

from typing import Any

import pytest
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.model.identifiers import InstrumentId

from recovery.build import (
    Credentials,
    build_node_config,
    exec_engine_config,
    instance_id_for,
    strategy_config,
)
from recovery.errors import SpecError
from recovery.spec import NodeRun, load_handed_spec, parse_redis_url, timeouts_for
from supervisor.config.schema import StrategySpec
from supervisor.secrets import Secret

BTC = "BTCUSDT-PERP.BINANCE"


def handed_spec(tmp_path: Any, **node: Any) -> NodeRun:
    import json

    data = {
        "fleet": "t",
        "node": {
            "name": "n1",
            "trader_id": "CFG-001",
            "venues": ["emu"],
            "strategies": [
                {
                    "path": "tests.recovery.strategies:HubProbe",
                    "config": {"instrument_id": BTC, "order_id_tag": "001"},
                }
            ],
            **node,
        },
        "venues": {
            "emu": {
                "base_url_http": "http://127.0.0.1:9",
                "base_url_ws": "ws://127.0.0.1:9",
                "api_key": {"env": "K"},
                "api_secret": {"env": "S"},
            }
        },
        "redis": {"url": "redis://:pw@10.0.0.5:6380/0", "timeout": "2s"},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    return load_handed_spec(path)


def test_exec_engine_reconciles_everything_the_venue_has() -> None:
    config = exec_engine_config()
    assert isinstance(config, LiveExecEngineConfig)
    assert config.reconciliation is True
    assert config.reconciliation_lookback_mins is None
    assert config.generate_missing_orders is True
    assert config.filter_position_reports is False


def test_node_config_from_the_spec(tmp_path: Any) -> None:
    run = handed_spec(tmp_path)
    endpoint = parse_redis_url(run.redis.url)
    config = build_node_config(
        run,
        credentials=Credentials(api_key=Secret("key"), api_secret=Secret("secret")),
        redis=endpoint,
        timeouts=timeouts_for(run.node, run.redis, {}),
    )
    assert str(config.trader_id) == "CFG-001"
    assert config.instance_id == instance_id_for("CFG-001")  # the same on every start
    # The exec engine the issue names, as built for the node.
    engine = config.exec_engine
    assert (engine.reconciliation, engine.reconciliation_lookback_mins) == (True, None)
    assert (engine.generate_missing_orders, engine.filter_position_reports) == (True, False)
    # Redis cache: write-through, account events, own keys found again after a restart, never FLUSHDB.
    cache = config.cache
    assert cache is not None and cache.database is not None
    assert cache.buffer_interval_ms is None and cache.persist_account_events is True
    assert (
        cache.use_instance_id is False and cache.use_trader_prefix is True and cache.flush_on_start is False
    )
    assert (cache.database.host, cache.database.port, cache.database.password) == ("10.0.0.5", 6380, "pw")
    # State: loaded by nautilus; saved by the node itself, and only after a recovery that reached READY.
    assert config.load_state is True and config.save_state is False
    # Clients: Binance USD-M futures with the venue entry's URLs and the referenced credentials.
    data = config.data_clients["BINANCE"]
    execution = config.exec_clients["BINANCE"]
    assert execution.account_type == BinanceAccountType.USDT_FUTURES
    assert (execution.base_url_http, execution.base_url_ws) == ("http://127.0.0.1:9", "ws://127.0.0.1:9")
    assert execution.base_url_ws_stream == "ws://127.0.0.1:9"  # else the user stream goes to the real host
    assert (execution.api_key, execution.api_secret, data.api_key) == ("key", "secret", "key")
    assert execution.instrument_provider.load_ids == frozenset({InstrumentId.from_str(BTC)})
    # The strategy by import path: NETTING and claims on its instruments; config class from the annotation.
    [strategy] = config.strategies
    assert strategy.config_path == "tests.recovery.strategies:HubProbeConfig"
    assert strategy.config["oms_type"] == "NETTING"
    assert strategy.config["external_order_claims"] == [BTC]


def test_strategy_id_in_config_is_refused_with_the_fix() -> None:
    spec = StrategySpec(path="tests.recovery.strategies:HubProbe", config={"strategy_id": "X-1"})
    with pytest.raises(SpecError, match="order_id_tag"):
        strategy_config(spec)


def test_a_strategy_that_does_not_import_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="does not import"):
        strategy_config(StrategySpec(path="tests.recovery.nowhere:Strategy", config={}))


def test_the_users_own_choices_are_kept() -> None:
    spec = StrategySpec(
        path="tests.recovery.strategies:HubProbe",
        config_path="tests.recovery.strategies:HubProbeConfig",
        config={"instrument_id": BTC, "oms_type": "HEDGING", "external_order_claims": []},
    )
    config = strategy_config(spec)
    assert config.config["oms_type"] == "HEDGING" and config.config["external_order_claims"] == []
