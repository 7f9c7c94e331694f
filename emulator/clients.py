"""Pointing the real clients at the emulator (without importing them: the emulator depends on neither).

nautilus_trader 1.231 needs only base URLs (`base_url_ws_stream` as well on the exec client, or the user
stream goes to the real host). ccxt needs base URLs plus one deviation, made in `configure_ccxt` and nowhere
else: it picks its futures error map by URL prefix (`https://fapi.binance.com/...`), so against a local URL
futures-only codes (-2022, -2019, -4120, -2021, ...) would surface as a generic `ExchangeError`. We merge its
USD-M (`linear`) error map into the global one so they map as they do against the real venue.
"""

from __future__ import annotations

from typing import Any

FAPI_HOST = "https://fapi.binance.com"


def configure_ccxt(exchange: Any, http_url: str) -> None:
    """Point a `ccxt.binanceusdm` (sync or async) instance at the emulator at `http_url`."""
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str) and url.startswith(FAPI_HOST):
            api[name] = http_url.rstrip("/") + url[len(FAPI_HOST) :]
    linear = exchange.exceptions.get("linear", {})
    for kind in ("exact", "broad"):
        merged = dict(exchange.exceptions.get(kind, {}))
        merged.update(linear.get(kind, {}))
        exchange.exceptions[kind] = merged
    # Otherwise load_markets also asks the spot host for currencies.
    exchange.options["fetchCurrencies"] = False


def nautilus_data_urls(http_url: str, ws_url: str) -> dict[str, str]:
    """Keyword arguments for `BinanceDataClientConfig`."""
    return {"base_url_http": http_url, "base_url_ws": ws_url}


def nautilus_exec_urls(http_url: str, ws_url: str) -> dict[str, str]:
    """Keyword arguments for `BinanceExecClientConfig` (1.231 needs `base_url_ws_stream` too)."""
    return {"base_url_http": http_url, "base_url_ws": ws_url, "base_url_ws_stream": ws_url}
