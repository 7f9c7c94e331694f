"""The factories that build our data and exec clients. They are registered on the node under "BINANCE", the
name the stock factories use: the client id and account id (`BINANCE-USDT_FUTURES-master`) derive from it,
and reconciliation selects cached positions by that account id, so a different name would orphan yesterday's
positions.

Both clients share one nautilus HTTP client whose every request passes the node's `RequestGate`
(`recovery/binance/http.py`): nautilus' connect-time requests, our fetch, warm-up bars and orders.

Nautilus calls `create` as a static method on the class, so the per-node dependencies (gate, limiter,
observer, scope) are bound by building the class in a closure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.adapters.binance.common.enums import (
    BinanceAccountType,
    BinanceEnvironment,
    BinanceKeyType,
)
from nautilus_trader.adapters.binance.common.urls import (
    get_usdm_ws_route_base_url,
    get_ws_base_url,
    get_ws_public_base_url,
)
from nautilus_trader.adapters.binance.factories import (
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
    get_cached_binance_futures_instrument_provider,
)
from nautilus_trader.adapters.binance.futures.data import BinanceFuturesDataClient
from nautilus_trader.adapters.binance.http.client import BinanceHttpClient

from recovery.binance.client import FleetBinanceFuturesExecutionClient, ReconciliationObserver
from recovery.binance.http import RequestGate, gated_http_client


@dataclass
class ClientRegistry:
    """Our handle on the clients the node built (the engine has no public getter for client objects)."""

    clients: list[FleetBinanceFuturesExecutionClient] = field(default_factory=list)

    def only(self) -> FleetBinanceFuturesExecutionClient | None:
        return self.clients[0] if self.clients else None


class GatedHttpClients:
    """The node's nautilus HTTP clients behind its gate: one per credentials and endpoint, so the data and the
    exec client (same venue entry) share one, and with it one instrument provider."""

    def __init__(self, gate: RequestGate) -> None:
        self.gate = gate
        self._clients: dict[tuple[Any, ...], BinanceHttpClient] = {}

    def get(self, clock: Any, config: Any, environment: BinanceEnvironment) -> BinanceHttpClient:
        # Credentials and URLs come from the node spec; never from BINANCE_* environment variables.
        if not config.api_key or not config.api_secret:
            raise ValueError("the Binance clients need an api key and secret from the venue entry")
        key = (config.account_type, config.api_key, config.base_url_http, environment, config.proxy_url)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = gated_http_client(
                self.gate,
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
        return client


def make_data_client_factory(*, http: GatedHttpClients) -> type[Any]:
    """nautilus' futures data client on the gated HTTP client (the stock factory's futures branch)."""

    class FleetBinanceDataClientFactory(BinanceLiveDataClientFactory):
        @staticmethod
        def create(  # noqa: PLR0917 - nautilus' factory signature
            loop: asyncio.AbstractEventLoop,
            name: str,
            config: Any,
            msgbus: Any,
            cache: Any,
            clock: Any,
        ) -> BinanceFuturesDataClient:
            if not config.account_type.is_futures:
                raise ValueError(
                    f"recovery supports Binance futures accounts only, not {config.account_type}"
                )
            environment = config.environment or BinanceEnvironment.LIVE
            client = http.get(clock, config, environment)
            provider = get_cached_binance_futures_instrument_provider(
                client=client,
                clock=clock,
                account_type=config.account_type,
                config=config.instrument_provider,
                venue=config.venue,
            )
            base_url_ws = config.base_url_ws or get_ws_base_url(
                account_type=config.account_type, environment=environment, is_us=config.us
            )
            base_url_ws_public = config.base_url_ws or get_ws_public_base_url(
                account_type=config.account_type, environment=environment, is_us=config.us
            )
            if (
                config.base_url_ws is not None
                and environment == BinanceEnvironment.LIVE
                and config.account_type == BinanceAccountType.USDT_FUTURES
            ):
                base_url_ws = get_usdm_ws_route_base_url(config.base_url_ws, "market")
                base_url_ws_public = get_usdm_ws_route_base_url(config.base_url_ws, "public")
            return BinanceFuturesDataClient(
                loop=loop,
                client=client,
                msgbus=msgbus,
                cache=cache,
                clock=clock,
                instrument_provider=provider,
                account_type=config.account_type,
                base_url_ws=base_url_ws,
                name=name,
                config=config,
                base_url_ws_public=base_url_ws_public,
            )

    return FleetBinanceDataClientFactory


def make_exec_client_factory(
    *,
    http: GatedHttpClients,
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
            client = http.get(clock, config, environment)
            provider = get_cached_binance_futures_instrument_provider(
                client=client,
                clock=clock,
                account_type=config.account_type,
                config=config.instrument_provider,
                venue=config.venue,
            )
            exec_client = FleetBinanceFuturesExecutionClient(
                loop=loop,
                client=client,
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
                limiter=http.gate.limiter,  # our fetch's slots: the same budget as every other request
                observer=observer,
                scope=scope_ids,
                request_timeout=request_timeout,
                max_rate_limit_wait=max_rate_limit_wait,
            )
            registry.clients.append(exec_client)
            return exec_client

    return FleetBinanceExecClientFactory
