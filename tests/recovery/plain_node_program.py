"""A plain nautilus TradingNode (no recovery lifecycle, no hub) running a RecoverableStrategy.

    python tests/recovery/plain_node_program.py SPEC.json

Builds the node from the same spec and config as `recovery.node`, with nautilus' stock clients, starts it,
makes the strategy submit a market order once it runs, and prints one JSON line: whether the strategy ever
became ready, its refusal, and the order's status and denial reason.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from typing import Any

from nautilus_trader.adapters.binance import BinanceLiveDataClientFactory, BinanceLiveExecClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.enums import OrderSide

from recovery.build import CLIENT_NAME, Credentials, build_node_config
from recovery.spec import load_handed_spec, parse_redis_url, timeouts_for
from supervisor.secrets import resolve_secret


async def main(spec_path: str) -> dict[str, Any]:
    run = load_handed_spec(spec_path)
    assert run.venue.api_key is not None and run.venue.api_secret is not None
    config = build_node_config(
        run,
        credentials=Credentials(
            api_key=resolve_secret(run.venue.api_key), api_secret=resolve_secret(run.venue.api_secret)
        ),
        redis=parse_redis_url(run.redis.url),
        timeouts=timeouts_for(run.node, run.redis),
        log_level="WARNING",
    )
    node = TradingNode(config=config, loop=asyncio.get_running_loop())
    node.add_data_client_factory(CLIENT_NAME, BinanceLiveDataClientFactory)
    node.add_exec_client_factory(CLIENT_NAME, BinanceLiveExecClientFactory)
    node.build()
    try:
        await asyncio.wait_for(node.kernel.start_async(), 30)
        strategy = node.trader.strategies()[0]
        instrument = node.cache.instrument(strategy.instrument_id)
        order = strategy.order_factory.market(
            instrument_id=strategy.instrument_id,
            order_side=OrderSide.BUY,
            quantity=instrument.make_qty(Decimal("0.010")),
        )
        strategy.submit_order(order)
        await asyncio.sleep(0.5)
        cached = node.cache.order(order.client_order_id)
        return {
            "running": bool(strategy.is_running),
            "ready": bool(strategy.recovery_ready),
            "refusal": strategy.recovery_failure,
            "status": cached.status_string() if cached is not None else None,
            "reason": str(getattr(cached.last_event, "reason", "")) if cached is not None else None,
        }
    finally:
        await node.stop_async()
        node.kernel.dispose()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))), flush=True)
