"""WebSocket streams: public market streams (raw `/ws/...` and combined `/stream?streams=...`, with
SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS) and user-data streams (`/ws?listenKey=...`, raw events).

Each connection has its own outgoing queue and writer task, so publishing never blocks the engine and events
reach every client in the order they happened. Faults: drop sockets (clean close or abrupt reset), freeze them
(no data, no pongs), refuse new connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

MAX_QUEUE = 10_000
MAX_STREAMS_PER_CONNECTION = 1024
_encode = msgspec.json.Encoder().encode


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    kind: str  # "market" or "user"
    combined: bool = False
    account: str = ""
    listen_key: str = ""
    streams: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    frozen: bool = False

    def push(self, text: str) -> None:
        if self.queue.qsize() >= MAX_QUEUE:
            log.warning("dropping a slow %s stream consumer (%d messages queued)", self.kind, MAX_QUEUE)
            self.abort()
            return
        self.queue.put_nowait(text)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]


class StreamHub:
    """All open stream connections; the market `publish`/`wants` and the user `user_event` endpoints."""

    def __init__(self) -> None:
        self._market: set[Connection] = set()
        self._user: dict[str, set[Connection]] = defaultdict(set)
        self._subscribers: dict[str, set[Connection]] = defaultdict(set)
        self._frozen_kinds: set[str] = set()
        self._frozen_accounts: set[str] = set()
        self.refuse_remaining = 0
        self.on_connect: Callable[[str, str], None] = lambda kind, path: None

    # ------------------------------------------------------------------ publishing

    def wants(self, stream: str) -> bool:
        return bool(self._subscribers.get(stream))

    def publish(self, stream: str, data: object) -> None:
        subscribers = self._subscribers.get(stream)
        if not subscribers:
            return
        combined_text = raw_text = ""
        for conn in subscribers:
            if conn.combined:
                combined_text = combined_text or _encode({"stream": stream, "data": data}).decode()
                conn.push(combined_text)
            else:
                raw_text = raw_text or _encode(data).decode()
                conn.push(raw_text)

    def user_event(self, account: str, payload: dict[str, object], delay_ms: int = 0) -> None:
        if not self._user.get(account):
            return
        text = _encode(payload).decode()
        if delay_ms > 0:
            asyncio.get_running_loop().call_later(delay_ms / 1000, self._deliver, account, text)
        else:
            self._deliver(account, text)

    def _deliver(self, account: str, text: str) -> None:
        for conn in self._user.get(account, ()):
            conn.push(text)

    def user_connections(self, account: str) -> int:
        return len(self._user.get(account, ()))

    def market_connections(self) -> int:
        return len(self._market)

    def subscribed_streams(self) -> list[str]:
        """Market streams somebody is subscribed to now (e.g. `btcusdt@kline_1m`)."""
        return sorted(stream for stream, subscribers in self._subscribers.items() if subscribers)

    def subscriber_counts(self) -> dict[str, int]:
        """How many connections are subscribed to each market stream now."""
        return {stream: len(conns) for stream, conns in sorted(self._subscribers.items()) if conns}

    # ------------------------------------------------------------------ faults

    def drop(self, kind: str, account: str | None = None, *, abrupt: bool = True) -> int:
        victims = [c for c in self._connections(kind) if account is None or c.account == account]
        for conn in victims:
            if abrupt:
                conn.abort()
            else:
                conn.queue.put_nowait(None)  # the writer closes cleanly after what is queued
        return len(victims)

    def freeze(self, kind: str, account: str | None, frozen: bool) -> int:
        """Frozen sockets stay open but deliver nothing (messages are lost) and stop answering pings."""
        key_set, key = (self._frozen_accounts, account) if account else (self._frozen_kinds, kind)
        if frozen:
            key_set.add(key)
        else:
            key_set.discard(key)
        victims = [c for c in self._connections(kind) if account is None or c.account == account]
        for conn in victims:
            conn.frozen = frozen
        return len(victims)

    def _connections(self, kind: str) -> list[Connection]:
        users = [c for conns in self._user.values() for c in conns]
        if kind == "market":
            return list(self._market)
        if kind == "user":
            return users
        return list(self._market) + users

    def close_listen_key(self, listen_key: str, final_event: dict[str, object] | None) -> int:
        """End the user streams of a listen key (after an optional last event, e.g. listenKeyExpired)."""
        victims = [c for conns in self._user.values() for c in conns if c.listen_key == listen_key]
        for conn in victims:
            if final_event is not None:
                conn.push(_encode(final_event).decode())
            conn.queue.put_nowait(None)
        return len(victims)

    async def close_all(self, timeout_s: float = 1.0) -> None:
        """Close every socket with "going away"; clients slow to answer the close frame are cut off."""

        async def close(conn: Connection) -> None:
            try:
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), timeout_s)
            except (TimeoutError, ConnectionError, RuntimeError):
                conn.abort()

        await asyncio.gather(*(close(conn) for conn in self._connections("all")))

    # ------------------------------------------------------------------ serving

    def _refuse(self) -> bool:
        if self.refuse_remaining > 0:
            self.refuse_remaining -= 1
            return True
        return False

    async def serve_market(
        self, request: web.Request, initial: list[str], combined: bool
    ) -> web.StreamResponse:
        if self._refuse():
            return web.json_response({"code": -1001, "msg": "Service unavailable"}, status=503)
        conn = await self._open(request, "market", combined=combined)
        self._market.add(conn)
        self._subscribe(conn, initial)
        try:
            await self._run(conn, self._on_market_text)
        finally:
            self._market.discard(conn)
            for stream in conn.streams:
                self._subscribers[stream].discard(conn)
        return conn.ws

    async def serve_user(self, request: web.Request, account: str, listen_key: str) -> web.StreamResponse:
        if self._refuse():
            return web.json_response({"code": -1001, "msg": "Service unavailable"}, status=503)
        conn = await self._open(request, "user", account=account, listen_key=listen_key)
        self._user[account].add(conn)
        try:
            await self._run(conn, None)
        finally:
            self._user[account].discard(conn)
        return conn.ws

    async def _open(self, request: web.Request, kind: str, **fields: object) -> Connection:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws=ws, transport=request.transport, kind=kind, **fields)  # type: ignore[arg-type]
        conn.frozen = (
            kind in self._frozen_kinds or "all" in self._frozen_kinds or conn.account in self._frozen_accounts
        )
        self.on_connect(kind, request.path)
        return conn

    async def _run(self, conn: Connection, on_text: Callable[[Connection, str], str | None] | None) -> None:
        writer = asyncio.create_task(self._write(conn), name=f"emulator.ws-writer.{conn.kind}")
        try:
            async for msg in conn.ws:
                if msg.type == WSMsgType.PING:
                    if not conn.frozen:
                        await conn.ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT and on_text is not None:
                    reply = on_text(conn, msg.data)
                    if reply is not None:
                        conn.push(reply)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @staticmethod
    async def _write(conn: Connection) -> None:
        while True:
            text = await conn.queue.get()
            if text is None:
                await conn.ws.close(code=1000)
                return
            if conn.frozen or conn.ws.closed:
                continue
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    # ------------------------------------------------------------------ market subscriptions

    def _subscribe(self, conn: Connection, streams: list[str]) -> None:
        for stream in streams:
            if len(conn.streams) >= MAX_STREAMS_PER_CONNECTION:
                break
            conn.streams.add(stream)
            self._subscribers[stream].add(conn)

    def _unsubscribe(self, conn: Connection, streams: list[str]) -> None:
        for stream in streams:
            conn.streams.discard(stream)
            self._subscribers[stream].discard(conn)

    def _on_market_text(self, conn: Connection, text: str) -> str | None:
        try:
            request = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return _encode(
                {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
            ).decode()
        if not isinstance(request, dict):
            return _encode({"error": {"code": 3, "msg": "Invalid request"}}).decode()
        method, params, request_id = request.get("method"), request.get("params") or [], request.get("id")
        if method == "SUBSCRIBE" and isinstance(params, list):
            self._subscribe(conn, [str(p) for p in params])
            return _encode({"result": None, "id": request_id}).decode()
        if method == "UNSUBSCRIBE" and isinstance(params, list):
            self._unsubscribe(conn, [str(p) for p in params])
            return _encode({"result": None, "id": request_id}).decode()
        if method == "LIST_SUBSCRIPTIONS":
            return _encode({"result": sorted(conn.streams), "id": request_id}).decode()
        return _encode(
            {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": request_id}
        ).decode()
