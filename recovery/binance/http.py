"""Every Binance HTTP request the node makes passes one gate: nautilus' connect-time requests (exchangeInfo,
account, positionRisk, symbolConfig, positionSide/dual, listenKey, ...), our reconciliation fetch, warm-up
klines, protective orders.

nautilus 1.231's `BinanceHttpClient` sends every request through one call, `self._client.request(...)` on its
Rust `HttpClient`, and returns only the body. That Rust client hands Python only the response headers named
when it is built, and nautilus names none: neither `X-MBX-USED-WEIGHT-1M` nor even `Retry-After` of a 429
reaches Python. `FleetBinanceHttpClient` is nautilus' client on a transport of our own: the same Rust client
with the same local quotas, built with the usage headers named, behind the gate. The gate sees the method, the
URL and the raw response (status and headers) of every request, signed or not, success or error; signing and
error mapping stay nautilus'.

While the node recovers (`RequestGate.recovering`), a request takes a limiter slot with the venue's weight of
its endpoint (and its order count) unless the task already holds one (our fetch takes its own), and the
answer's usage headers are reported to the slot. A signed request takes its slot before it is signed, and its
timestamp is taken again after the wait: signed and then held for the budget, it would reach the venue older
than its recvWindow and be refused (-1021; seen in a 20-node reboot storm, bench/reboot_storm.py). After READY
the gate lets requests pass untouched: live trading is never held up by the recovery budget (it keeps the rest
of the venue's limit), and our fetch still paces the re-syncs it makes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
from nautilus_trader.adapters.binance.common.constants import (
    BINANCE_FUTURES_ORDER_COUNT_1M_KEY,
    BINANCE_FUTURES_ORDER_COUNT_10S_KEY,
)
from nautilus_trader.adapters.binance.common.credentials import is_ed25519_private_key
from nautilus_trader.adapters.binance.common.enums import (
    BinanceAccountType,
    BinanceEnvironment,
    BinanceKeyType,
)
from nautilus_trader.adapters.binance.common.urls import get_http_base_url
from nautilus_trader.adapters.binance.http.client import BinanceHttpClient
from nautilus_trader.core.nautilus_pyo3 import HttpClient, Quota

from recovery.lease_guard import Fence
from recovery.ratelimit import (
    RequestLimiter,
    VenueLimits,
    current_ticket,
    request_orders,
    request_weight,
    usage_from_headers,
)

log = logging.getLogger(__name__)

EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"


class _RateLimits(msgspec.Struct):
    """The part of exchangeInfo the gate reads (the rest, symbols included, is skipped by the decoder)."""

    rateLimits: list[dict[str, Any]] = []  # noqa: N815 - the venue's field name


_decode_rate_limits = msgspec.json.Decoder(_RateLimits).decode


class RequestGate:
    """The node's policy for its venue requests (one per node, shared by the data and the exec client)."""

    def __init__(self, limiter: RequestLimiter, *, fence: Fence | None = None) -> None:
        self.limiter = limiter
        # A node started under a lease may sign nothing but GETs until the lease is confirmed, and after it
        # is lost (recovery/lease_guard.py). None: no lease (leases off, or a node run by hand).
        self.fence = fence
        self.recovering = True
        self.requests = 0  # requests sent while recovering
        self.weight = 0  # their weight

    def live(self) -> None:
        """The node is READY: requests no longer wait for the recovery budget."""
        self.recovering = False

    @contextlib.asynccontextmanager
    async def before_signing(self, method: str, path: str, params: dict[str, str]) -> AsyncIterator[None]:
        """Hold the slot of a signed request from before it is signed to its answer (the transport then finds
        it held). Nothing to hold after READY, or inside a slot the task already holds. A node whose lease is
        not confirmed signs no request that changes anything at the venue (FencedRequestError)."""
        if self.fence is not None:
            self.fence.check(method, path)
        if current_ticket() is not None or not self.recovering:
            yield
            return
        orders = request_orders(method, path, params)
        async with self.limiter.slot(request_weight(method, path, params), orders=orders):
            yield

    async def send(self, method: str, url: str, call: Any) -> Any:
        """Send one request (`call()` returns nautilus' HttpResponse) under the gate."""
        parts = urlsplit(url)
        path = parts.path
        held = current_ticket()
        if held is None and not self.recovering:
            return await call()
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        weight = request_weight(method, path, params)
        self.requests += 1
        self.weight += weight
        if held is not None:  # inside our fetch's slot: the fetch paid for it
            response = await call()
            await held.observe(usage_from_headers(response.status, response.headers))
        else:
            async with self.limiter.slot(weight, orders=request_orders(method, path, params)) as ticket:
                response = await call()
                await ticket.observe(usage_from_headers(response.status, response.headers))
        if path == EXCHANGE_INFO_PATH and response.status == 200:
            self._learn_limits(response.body)
        return response

    def _learn_limits(self, body: bytes) -> None:
        """The venue announces its limits in exchangeInfo; the budget follows them."""
        with contextlib.suppress(msgspec.DecodeError):
            limits = VenueLimits.from_exchange_info(_decode_rate_limits(body).rateLimits)
            if limits is not None:
                self.limiter.update_limits(limits)


def method_name(method: Any) -> str:
    return str(method).rpartition(".")[2].upper()  # the pyo3 enum has no .name: "HttpMethod.GET"


class _GatedTransport:
    """Stands in for nautilus' Rust HttpClient inside `BinanceHttpClient`: same `request` signature."""

    def __init__(self, inner: Any, gate: RequestGate) -> None:
        self._inner = inner
        self._gate = gate

    async def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        return await self._gate.send(
            method_name(method), url, lambda: self._inner.request(method, url, *args, **kwargs)
        )


# Response headers nautilus' Rust HttpClient hands to Python: only those named when it is built (nautilus
# names none, so its responses carry no headers at all). The venue's weight header names its window
# (`-1M` on Binance; the emulator's shorter test windows: `-1S` ... `-30S`).
USAGE_HEADERS = (
    "retry-after",
    "x-mbx-used-weight-1m",
    *(f"x-mbx-used-weight-{n}s" for n in range(1, 31)),
    "x-mbx-order-count-10s",
    "x-mbx-order-count-1m",
)


class FleetBinanceHttpClient(BinanceHttpClient):
    """nautilus' Binance HTTP client (signing, error mapping, its local quotas) on a transport that returns
    the venue's usage headers and passes every request through the node's `RequestGate`."""

    def __init__(
        self,
        *,
        gate: RequestGate,
        clock: Any,
        api_key: str | None,
        api_secret: str | None,
        base_url: str,
        rsa_private_key: str | None = None,
        ed25519_private_key: str | None = None,
        ratelimiter_quotas: list[tuple[str, Quota]] | None = None,
        ratelimiter_default_quota: Quota | None = None,
        proxy_url: str | None = None,
    ) -> None:
        super().__init__(
            clock=clock,
            api_key=api_key,
            api_secret=api_secret,
            base_url=base_url,
            rsa_private_key=rsa_private_key,
            ed25519_private_key=ed25519_private_key,
            ratelimiter_quotas=ratelimiter_quotas,
            ratelimiter_default_quota=ratelimiter_default_quota,
            proxy_url=proxy_url,
        )
        if not hasattr(self, "_client"):  # a nautilus upgrade moved the transport: fail, never run ungated
            raise RuntimeError("nautilus' BinanceHttpClient has no _client transport to gate")
        self.gate = gate
        transport = HttpClient(
            header_keys=list(USAGE_HEADERS),
            keyed_quotas=ratelimiter_quotas or [],
            default_quota=ratelimiter_default_quota,
            proxy_url=proxy_url,
        )
        self._client = _GatedTransport(transport, gate)  # type: ignore[assignment]  # same request()

    async def sign_request(
        self,
        http_method: Any,
        url_path: str,
        payload: dict[str, str] | None = None,
        ratelimiter_keys: list[str] | None = None,
    ) -> Any:
        """nautilus' signing, after the wait for the budget, with the timestamp of the moment it is signed."""
        params = payload if payload is not None else {}
        async with self.gate.before_signing(method_name(http_method), url_path, params):
            if "timestamp" in params:
                params["timestamp"] = str(self._clock.timestamp_ms())
            return await super().sign_request(http_method, url_path, params, ratelimiter_keys)


def gated_http_client(
    gate: RequestGate,
    *,
    clock: Any,
    account_type: BinanceAccountType,
    api_key: str,
    api_secret: str,
    key_type: BinanceKeyType,
    base_url: str | None,
    environment: BinanceEnvironment,
    is_us: bool,
    proxy_url: str | None,
) -> FleetBinanceHttpClient:
    """A futures HTTP client built as nautilus 1.231's `get_cached_binance_http_client` builds it (key type,
    the same local quotas), not shared through nautilus' process-wide cache, behind `gate`."""
    if not account_type.is_futures:
        raise ValueError(f"recovery supports Binance futures accounts only, not {account_type}")
    rsa_key = api_secret if key_type == BinanceKeyType.RSA else None
    ed25519 = key_type == BinanceKeyType.ED25519 or is_ed25519_private_key(api_secret)
    global_quota = Quota.rate_per_minute(2400)
    quotas = [  # nautilus 1.231's futures quotas (request counts, local to the process)
        ("binance:global", global_quota),
        (BINANCE_FUTURES_ORDER_COUNT_10S_KEY, Quota.rate_per_second(30)),
        (BINANCE_FUTURES_ORDER_COUNT_1M_KEY, Quota.rate_per_minute(1200)),
        ("binance:fapi/v1/order", Quota.rate_per_minute(1200)),
        ("binance:fapi/v1/allOrders", Quota.rate_per_minute(1200 // 20)),
        ("binance:fapi/v1/commissionRate", Quota.rate_per_minute(2400 // 20)),
        ("binance:fapi/v1/klines", Quota.rate_per_minute(600)),
    ]
    return FleetBinanceHttpClient(
        gate=gate,
        clock=clock,
        api_key=api_key,
        api_secret=api_secret,
        base_url=base_url or get_http_base_url(account_type, environment, is_us),
        rsa_private_key=rsa_key,
        ed25519_private_key=api_secret if ed25519 and rsa_key is None else None,
        ratelimiter_quotas=quotas,
        ratelimiter_default_quota=global_quota,
        proxy_url=proxy_url,
    )
