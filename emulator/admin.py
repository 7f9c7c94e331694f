"""Async client for the emulator's admin API (`/_admin`). Every call has a timeout.

async with AdminClient("http://127.0.0.1:PORT") as admin:
    await admin.set_price("BTCUSDT", "65000")
    await admin.hang("/fapi/v1/order", execute=True)   # the order is placed, the answer never comes
    counts = await admin.attempts("my-client-order-id")
"""

from __future__ import annotations

from decimal import Decimal
from types import TracebackType
from typing import Any

import aiohttp

Number = Decimal | str | int | float


class AdminApiError(RuntimeError):
    """The admin API refused a call; carries the HTTP status and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"admin API answered {status}: {message}")
        self.status = status
        self.message = message


def _num(value: Number | None) -> str | None:
    return None if value is None else str(value)


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class AdminClient:
    """One aiohttp session to one emulator; reusable as an async context manager."""

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Any:
        url = f"{self.base_url}/_admin{path}"
        limit = aiohttp.ClientTimeout(total=timeout_s or self.timeout)
        async with self._client().request(method, url, json=body, params=query, timeout=limit) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error", payload) if isinstance(payload, dict) else payload
                raise AdminApiError(response.status, str(message))
            return payload

    # ------------------------------------------------------------------ inspection

    async def health(self, *, timeout_s: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/health", timeout_s=timeout_s)
        return result

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/state")
        return result

    async def dump(self) -> dict[str, Any]:
        """The full venue state (the snapshot document) as JSON."""
        result: dict[str, Any] = await self.call("GET", "/dump")
        return result

    async def attempts(
        self, client_order_id: str | None = None, *, account: str | None = None
    ) -> dict[str, Any]:
        """Per client order id: attempts, accepted, rejected, order_ids, last_error."""
        query = _clean({"client_order_id": client_order_id, "account": account})
        result: dict[str, Any] = await self.call("GET", "/attempts", query=query)
        return result

    async def orders(
        self, symbol: str | None = None, *, client_order_id: str | None = None, account: str | None = None
    ) -> dict[str, Any]:
        """Every order and algo order of an account (all statuses), optionally for one symbol or client id."""
        query = _clean({"symbol": symbol, "client_order_id": client_order_id, "account": account})
        result: dict[str, Any] = await self.call("GET", "/orders", query=query)
        return result

    async def trades(self, symbol: str | None = None, *, account: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call(
            "GET", "/trades", query=_clean({"symbol": symbol, "account": account})
        )
        return result

    async def requests(self, since: int = 0, path: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call(
            "GET", "/requests", query=_clean({"since": str(since), "path": path})
        )
        return result

    async def clear_requests(self) -> None:
        await self.call("DELETE", "/requests")

    # ------------------------------------------------------------------ prices

    async def set_price(self, symbol: str, price: Number, *, mark: Number | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", "/price", _clean({"symbol": symbol, "price": _num(price), "mark": _num(mark)})
        )
        return result

    async def set_mark(self, symbol: str, mark: Number) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", "/price", {"symbol": symbol, "mark": _num(mark)})
        return result

    async def step_price(self, symbol: str, ticks: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", "/price", {"symbol": symbol, "ticks": ticks})
        return result

    async def price_mode(self, mode: str) -> None:
        await self.call("POST", "/price_mode", {"mode": mode})

    async def set_depth(self, symbol: str, level_qty: Number | None) -> dict[str, Any]:
        """Liquidity per price level: a taker order larger than `level_qty` fills in several trades, one tick
        apart, with one transaction time (a market order sweeping the book). None: one unlimited level."""
        result: dict[str, Any] = await self.call(
            "POST", "/depth", {"symbol": symbol, "level_qty": _num(level_qty)}
        )
        return result

    async def close_bar(self, symbol: str | None = None) -> list[str]:
        result: dict[str, list[str]] = await self.call("POST", "/close_bar", _clean({"symbol": symbol}))
        return result["closed"]

    async def funding(self, symbol: str, rate: Number | None = None) -> int:
        result: dict[str, int] = await self.call(
            "POST", "/funding", _clean({"symbol": symbol, "rate": _num(rate)})
        )
        return result["settled"]

    # ------------------------------------------------------------------ trading behind the client's back

    async def fill(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        qty: Number | None = None,
        price: Number | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Fill a resting order now (all of it, or `qty`), at its limit price or `price`, as maker."""
        body = {
            "symbol": symbol,
            "order_id": order_id,
            "client_order_id": client_order_id,
            "qty": _num(qty),
            "price": _num(price),
            "account": account,
        }
        result: dict[str, Any] = await self.call("POST", "/fill", _clean(body))
        return result

    async def trigger(
        self,
        *,
        algo_id: int | None = None,
        client_algo_id: str | None = None,
        price: Number | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Trigger a conditional order now; its child order fills at the last price (or `price`)."""
        body = {
            "algo_id": algo_id,
            "client_algo_id": client_algo_id,
            "price": _num(price),
            "account": account,
        }
        result: dict[str, Any] = await self.call("POST", "/trigger", _clean(body))
        return result

    async def set_position(
        self,
        symbol: str,
        amount: Number,
        entry_price: Number | None = None,
        *,
        account: str | None = None,
        notify: bool = False,
    ) -> dict[str, Any]:
        """Change a position silently: no trades, no income; an ACCOUNT_UPDATE only with `notify`."""
        body = {
            "symbol": symbol,
            "amount": _num(amount),
            "entry_price": _num(entry_price),
            "account": account,
            "notify": notify,
        }
        result: dict[str, Any] = await self.call("POST", "/position", _clean(body))
        return result

    async def set_wallet(self, amount: Number, *, account: str | None = None, notify: bool = False) -> None:
        await self.call(
            "POST", "/wallet", _clean({"amount": _num(amount), "account": account, "notify": notify})
        )

    async def place_order(self, params: dict[str, str], *, account: str | None = None) -> dict[str, Any]:
        """Place an order as "another client" of the account (REST parameters; no signature, not counted)."""
        result: dict[str, Any] = await self.call(
            "POST", "/order", _clean({"params": params, "account": account})
        )
        return result

    async def place_algo_order(self, params: dict[str, str], *, account: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", "/algo_order", _clean({"params": params, "account": account})
        )
        return result

    async def cancel(
        self,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        client_order_id: str | None = None,
        algo_id: int | None = None,
        client_algo_id: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "symbol": symbol,
            "order_id": order_id,
            "client_order_id": client_order_id,
            "algo_id": algo_id,
            "client_algo_id": client_algo_id,
            "account": account,
        }
        result: dict[str, Any] = await self.call("POST", "/cancel", _clean(body))
        return result

    async def backdate(
        self,
        ms: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        client_order_id: str | None = None,
        algo_id: int | None = None,
        client_algo_id: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Move an order (with its trades) or an algo order `ms` into the past (beyond a history window)."""
        body = {
            "ms": ms,
            "symbol": symbol,
            "order_id": order_id,
            "client_order_id": client_order_id,
            "algo_id": algo_id,
            "client_algo_id": client_algo_id,
            "account": account,
        }
        result: dict[str, Any] = await self.call("POST", "/backdate", _clean(body))
        return result

    # ------------------------------------------------------------------ faults

    async def add_fault(self, action: str, **fields: Any) -> dict[str, Any]:
        """Add a fault rule (see `emulator.faults.FaultRule`); returns it with its id."""
        result: dict[str, Any] = await self.call("POST", "/faults", _clean({"action": action, **fields}))
        return result

    async def latency(
        self,
        path: str | None,
        ms: int,
        *,
        jitter_ms: int = 0,
        count: int | None = None,
        method: str | None = None,
    ) -> dict[str, Any]:
        return await self.add_fault(
            "latency", path=path, latency_ms=ms, jitter_ms=jitter_ms, count=count, method=method
        )

    async def http_error(
        self,
        path: str | None,
        status: int = 503,
        *,
        code: int | None = None,
        msg: str | None = None,
        count: int | None = 1,
        method: str | None = None,
        execute: bool = False,
    ) -> dict[str, Any]:
        return await self.add_fault(
            "error", path=path, status=status, code=code, msg=msg, count=count, method=method, execute=execute
        )

    async def hang(
        self,
        path: str | None,
        *,
        hang_ms: int = 600_000,
        count: int | None = 1,
        method: str | None = None,
        execute: bool = False,
    ) -> dict[str, Any]:
        """Answer nothing for `hang_ms` (the client times out); `execute` processes the request first."""
        return await self.add_fault(
            "hang", path=path, hang_ms=hang_ms, count=count, method=method, execute=execute
        )

    async def rate_limit(
        self, path: str | None = None, *, status: int = 429, retry_after_s: int = 60, count: int | None = 1
    ) -> dict[str, Any]:
        return await self.add_fault(
            "rate_limit", path=path, status=status, retry_after_s=retry_after_s, count=count
        )

    async def reject_orders(
        self,
        code: int = -2019,
        *,
        msg: str | None = None,
        count: int | None = 1,
        path: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Reject the next order placements (POST order/algoOrder/batchOrders) with a venue error."""
        return await self.add_fault("reject", code=code, msg=msg, count=count, path=path, account=account)

    async def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call("GET", "/faults")
        return result

    async def remove_fault(self, rule_id: int) -> None:
        await self.call("DELETE", f"/faults/{rule_id}")

    async def clear_faults(self) -> int:
        result: dict[str, int] = await self.call("DELETE", "/faults")
        return result["removed"]

    # ------------------------------------------------------------------ streams

    async def drop_streams(
        self, kind: str = "all", *, account: str | None = None, abrupt: bool = True
    ) -> int:
        """Close WebSockets (kind: market, user or all): abruptly (reset) or with a clean close frame."""
        result: dict[str, int] = await self.call(
            "POST", "/ws/drop", _clean({"kind": kind, "account": account, "abrupt": abrupt})
        )
        return result["dropped"]

    async def freeze_streams(
        self, kind: str = "all", *, account: str | None = None, frozen: bool = True
    ) -> int:
        """Keep sockets open but deliver nothing and answer no pings (until unfrozen)."""
        result: dict[str, int] = await self.call(
            "POST", "/ws/freeze", _clean({"kind": kind, "account": account, "frozen": frozen})
        )
        return result["affected"]

    async def refuse_streams(self, count: int) -> None:
        """Refuse the next `count` WebSocket connections with HTTP 503."""
        await self.call("POST", "/ws/refuse", {"count": count})

    async def expire_listen_key(self, *, account: str | None = None) -> int:
        """Expire the account's listen key: `listenKeyExpired` is sent and its streams close."""
        result: dict[str, int] = await self.call("POST", "/listen_key/expire", _clean({"account": account}))
        return result["closed_streams"]

    # ------------------------------------------------------------------ lifecycle of the venue state

    async def snapshot(self, path: str | None = None) -> str:
        result: dict[str, str] = await self.call("POST", "/snapshot", _clean({"path": path}))
        return result["path"]

    async def restore(self, path: str) -> None:
        await self.call("POST", "/restore", {"path": path})

    async def reset(self, seed: int | None = None) -> None:
        await self.call("POST", "/reset", _clean({"seed": seed}))

    async def ratelimit(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/ratelimit")
        return result

    async def set_ratelimit(
        self,
        *,
        weight_per_minute: int | None = None,
        weight_window_s: int | None = None,
        ban_after: int | None = None,
        ban_seconds: int | None = None,
        orders_per_minute: int | None = None,
        orders_per_10s: int | None = None,
        reset: bool = False,
    ) -> dict[str, Any]:
        """Change the limits (None: unchanged). `weight_per_minute` is the request weight per client address
        and weight window (`weight_window_s`, 60 on the venue; a change resets the counts); the order limits
        are per account. `reset` clears every count and ban."""
        body = {
            "weight_per_minute": weight_per_minute,
            "weight_window_s": weight_window_s,
            "ban_after": ban_after,
            "ban_seconds": ban_seconds,
            "orders_per_minute": orders_per_minute,
            "orders_per_10s": orders_per_10s,
            "reset": reset,
        }
        result: dict[str, Any] = await self.call("POST", "/ratelimit", _clean(body))
        return result
