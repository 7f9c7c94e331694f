"""The factory that builds our exec client. It is registered on the node under "BINANCE", the name the stock
factory uses: the client id and account id (`BINANCE-USDT_FUTURES-master`) derive from it, and reconciliation
selects cached positions by that account id, so a different name would orphan yesterday's positions.

Nautilus calls `create` as a static method on the class, so the per-node dependencies (limiter, observer,
scope) are bound by building the class in a closure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment, BinanceKeyType
from nautilus_trader.adapters.binance.common.urls import get_ws_base_url
from nautilus_trader.adapters.binance.factories import (
    BinanceLiveExecClientFactory,
    get_cached_binance_futures_instrument_provider,
    get_cached_binance_http_client,
)

from recovery.binance.client import FleetBinanceFuturesExecutionClient, ReconciliationObserver
from recovery.ratelimit import RequestLimiter


@dataclass
class ClientRegistry:
    """Our handle on the clients the node built (the engine has no public getter for client objects)."""

    clients: list[FleetBinanceFuturesExecutionClient] = field(default_factory=list)

    def only(self) -> FleetBinanceFuturesExecutionClient | None:
        return self.clients[0] if self.clients else None


def make_exec_client_factory(
    *,
    limiter: RequestLimiter,
    registry: ClientRegistry,
    observer: ReconciliationObserver | None = None,
    scope: Iterable[str] = (),
    request_timeout: float = 10.0,
    max_rate_limit_wait: float = 10.0,
) -> type[Any]:
    scope_ids = tuple(scope)

    class FleetBinanceExecClientFactory(BinanceLiveExecClientFactory):
        @staticmethod
        def create(  # noqa: PLR0917 - nautilus' factory signature
            loop: asyncio.AbstractEventLoop,
            name: str,
            config: Any,
            msgbus: Any,
            cache: Any,
            clock: Any,
        ) -> FleetBinanceFuturesExecutionClient:
            if config.key_type == BinanceKeyType.RSA:
                raise ValueError("RSA keys are not supported for Binance execution clients")
            if not config.account_type.is_futures:
                raise ValueError(
                    f"recovery supports Binance futures accounts only, not {config.account_type}"
                )
            environment = config.environment or BinanceEnvironment.LIVE
            # Credentials and URLs come from the node spec; never from BINANCE_* environment variables.
            if not config.api_key or not config.api_secret:
                raise ValueError("the Binance exec client needs an api key and secret from the venue entry")
            http = get_cached_binance_http_client(
                clock=clock,
                account_type=config.account_type,
                api_key=config.api_key,
                api_secret=config.api_secret,
                key_type=config.key_type,
                base_url=config.base_url_http,
                environment=environment,
                is_us=config.us,
                proxy_url=config.proxy_url,
            )
            provider = get_cached_binance_futures_instrument_provider(
                client=http,
                clock=clock,
                account_type=config.account_type,
                config=config.instrument_provider,
                venue=config.venue,
            )
            client = FleetBinanceFuturesExecutionClient(
                loop=loop,
                client=http,
                msgbus=msgbus,
                cache=cache,
                clock=clock,
                instrument_provider=provider,
                base_url_ws=config.base_url_ws
                or get_ws_base_url(
                    account_type=config.account_type, environment=environment, is_us=config.us
                ),
                account_type=config.account_type,
                name=name,
                config=config,
                environment=environment,
                api_key=config.api_key,
                api_secret=config.api_secret,
                limiter=limiter,
                observer=observer,
                scope=scope_ids,
                request_timeout=request_timeout,
                max_rate_limit_wait=max_rate_limit_wait,
            )
            registry.clients.append(client)
            return client

    return FleetBinanceExecClientFactory
