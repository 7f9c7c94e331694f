"""The aiohttp application: REST dispatch (rate limits, authentication, faults, the request log), WebSocket
routes, and the process lifecycle (ready line on stdout, clean shutdown on SIGTERM/SIGINT).

Every REST answer is the venue's JSON: a handler's result, or `{"code", "msg"}` with the venue's HTTP status.
An unexpected exception is logged here and answered as the venue's -1000, never as a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from emulator import admin_routes, auth, errors, faults
from emulator.config import EmulatorConfig
from emulator.context import RequestContext
from emulator.errors import VenueError
from emulator.handlers_trade import count_attempt
from emulator.params import Params
from emulator.ratelimit import weight_of
from emulator.requestlog import LogEntry, client_name
from emulator.routes import NONE, SIGNED, TABLE, Endpoint
from emulator.state import Account
from emulator.venue import Venue

log = logging.getLogger(__name__)

VENUE_KEY = web.AppKey("venue", Venue)
_encode = msgspec.json.Encoder().encode
WS_PATHS = ("/ws", "/stream", "/market/ws", "/market/stream", "/public/ws", "/public/stream", "/private/ws")


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encode(body), status=status, headers=headers, content_type="application/json")


def parse_params(query: str, body: str) -> dict[str, str]:
    values = dict(parse_qsl(query, keep_blank_values=True))
    if body and not body.lstrip().startswith(("{", "[")):
        values.update(parse_qsl(body, keep_blank_values=True))
    return values


def authenticate(
    endpoint: Endpoint,
    api_key: str | None,
    account: Account | None,
    *,
    query: str,
    body: str,
    params: Params,
    now: int,
) -> None:
    if endpoint.security == NONE:
        return
    if not api_key:
        raise errors.api_key_format_invalid()
    if account is None:
        raise errors.invalid_api_key()
    if endpoint.security == SIGNED:
        auth.check_timestamp(params.text("timestamp"), params.text("recvWindow"), now)
        payload, signature = auth.signed_payload(query, body)
        auth.verify_signature(account.api_secret, payload, signature)


KNOWN_REJECTIONS: dict[int, Callable[[], VenueError]] = {
    -2019: errors.margin_insufficient,
    -2021: errors.would_immediately_trigger,
    -2022: errors.reduce_only_rejected,
    -4116: errors.duplicate_client_order_id,
    -1001: errors.service_unavailable,
    -1007: errors.backend_timeout,
}


def fault_error(rule: faults.FaultRule) -> VenueError:
    """The answer an error/reject/rate_limit rule gives."""
    if rule.action == "rate_limit":
        status = rule.status or 429
        msg = rule.msg or ("Way too many requests; IP banned." if status == 418 else "Too many requests.")
        return VenueError(rule.code or -1003, msg, status, {"Retry-After": str(rule.retry_after_s)})
    default_status = 400 if rule.action == "reject" else 503
    known = KNOWN_REJECTIONS.get(rule.code)
    if known is not None and not rule.msg:
        error = known()
        error.status = rule.status or error.status
        return error
    code = rule.code or (-2019 if rule.action == "reject" else -1001)
    msg = rule.msg or (
        "Margin is insufficient." if code == -2019 else "Internal error; unable to process your request."
    )
    return VenueError(code, msg, rule.status or default_status)


class Outcome:
    """What one REST request came to (for the answer, the attempt count and the request log)."""

    __slots__ = ("body", "counted", "error", "handled", "headers", "status")

    def __init__(self) -> None:
        self.body: object = None
        self.counted = False
        self.handled: object = None  # the handler's result, even when a fault replaced the answer
        self.error: VenueError | None = None
        self.status = 200
        self.headers: dict[str, str] = {}


async def _run(
    venue: Venue,
    endpoint: Endpoint,
    ctx: RequestContext,
    *,
    account: Account | None,
    request: web.Request,
    outcome: Outcome,
) -> None:
    def handle() -> object:
        # Attempts are counted as soon as the venue decides, so a request whose answer never leaves
        # (a hang, a client that gave up) is counted too.
        try:
            outcome.handled = endpoint.handler(ctx)
        except VenueError as exc:
            if endpoint.is_order:
                outcome.counted = True
                count_attempt(ctx, request.path, None, exc.code)
            raise
        if endpoint.is_order:
            outcome.counted = True
            count_attempt(ctx, request.path, outcome.handled, None)
        return outcome.handled

    def handle_quietly() -> None:
        with contextlib.suppress(VenueError):
            handle()

    rule = venue.faults.take(request.method, request.path, account.name if account else None, lambda r: True)
    if rule is None:
        outcome.body = handle()
        return
    if rule.action == "latency":
        await asyncio.sleep(venue.faults.jitter(rule) / 1000)
        outcome.body = handle()
        return
    if rule.execute:
        handle_quietly()
    if rule.action == "hang":
        await asyncio.sleep(rule.hang_ms / 1000)
        raise errors.backend_timeout()
    raise fault_error(rule)


def client_address(request: web.Request) -> str:
    """The address the venue counts request weight by: the peer's IP (all accounts behind it share it)."""
    return request.remote or "unknown"


async def dispatch(venue: Venue, request: web.Request) -> web.Response:
    started = time.perf_counter_ns()
    method, path = request.method, request.path
    query = request.rel_url.raw_query_string
    body = await request.text() if request.body_exists else ""
    values = parse_params(query, body)
    params = Params(values)
    api_key = request.headers.get("X-MBX-APIKEY")
    account = venue.engine.account_by_key(api_key) if api_key else None
    endpoint = TABLE.get((method, path))
    now = venue.now()
    weight = weight_of(method, path, values)
    outcome = Outcome()
    ctx = RequestContext(venue, params, account, now)
    try:
        if endpoint is None:
            raise errors.invalid_path(path, method)
        charged = venue.ratelimiter.charge(
            client_address(request), account.name if account else None, weight, endpoint.is_order
        )
        outcome.headers[venue.ratelimiter.weight_header] = str(charged.used)
        if charged.orders_10s is not None:
            outcome.headers["X-MBX-ORDER-COUNT-10S"] = str(charged.orders_10s)
            outcome.headers["X-MBX-ORDER-COUNT-1M"] = str(charged.orders_1m)
        authenticate(endpoint, api_key, account, query=query, body=body, params=params, now=now)
        await _run(venue, endpoint, ctx, account=account, request=request, outcome=outcome)
    except VenueError as exc:
        outcome.error = exc
    except Exception:
        log.exception("unexpected error answering %s %s", method, path)
        outcome.error = errors.unknown_error()
    if endpoint is not None and endpoint.is_order and not outcome.counted:
        count_attempt(ctx, path, None, outcome.error.code if outcome.error else None)
    if outcome.error is not None:
        outcome.headers.update(outcome.error.headers)
        response = _json(outcome.error.body(), outcome.error.status, outcome.headers)
    else:
        response = _json(outcome.body, 200, outcome.headers)
    _log_request(
        venue,
        request,
        values,
        account=account,
        status=response.status,
        outcome=outcome,
        weight=weight,
        started=started,
        endpoint=endpoint,
    )
    return response


def _log_request(
    venue: Venue,
    request: web.Request,
    values: dict[str, str],
    *,
    account: Account | None,
    status: int,
    outcome: Outcome,
    weight: int,
    started: int,
    endpoint: Endpoint | None,
) -> None:
    venue.requests.add(
        LogEntry(
            seq=venue.requests.next_seq(),
            time=venue.now(),
            method=request.method,
            path=request.path,
            params={k: v for k, v in values.items() if k != "signature"},
            account=account.name if account else None,
            address=client_address(request),
            client=client_name(request.headers.get("User-Agent", "")),
            status=status,
            code=outcome.error.code if outcome.error else None,
            weight=weight,
            duration_us=(time.perf_counter_ns() - started) // 1000,
            signed=endpoint is not None and endpoint.security == SIGNED,
        )
    )


async def rest_handler(request: web.Request) -> web.Response:
    return await dispatch(request.app[VENUE_KEY], request)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    venue = request.app[VENUE_KEY]
    tail = request.match_info.get("tail", "")
    listen_key = request.query.get("listenKey")
    if listen_key is None and tail and "@" not in tail and venue.listen_key_account(tail) is not None:
        listen_key = tail
    _log_ws(venue, request)
    if listen_key is not None:
        account = venue.listen_key_account(listen_key)
        if account is None:
            return _json(errors.invalid_listen_key().body(), 400)
        return await venue.hub.serve_user(request, account, listen_key)
    combined = request.path.endswith("/stream")
    raw = request.query.get("streams", "") if combined else tail
    return await venue.hub.serve_market(request, [s for s in raw.split("/") if s], combined)


def _log_ws(venue: Venue, request: web.Request) -> None:
    venue.requests.add(
        LogEntry(
            seq=venue.requests.next_seq(),
            time=venue.now(),
            method="WS",
            path=request.path,
            params={k: v for k, v in request.query.items() if k != "listenKey"},
            account=None,
            address=client_address(request),
            client=client_name(request.headers.get("User-Agent", "")),
            status=101,
            code=None,
            weight=0,
            duration_us=0,
            signed=False,
        )
    )


def build_app(venue: Venue) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[VENUE_KEY] = venue
    app.router.add_route("*", "/fapi/{tail:.*}", rest_handler)
    for path in WS_PATHS:
        app.router.add_get(path, ws_handler)
        app.router.add_get(path + "/{tail:.*}", ws_handler)
    admin_routes.register(app, VENUE_KEY)

    async def on_startup(app: web.Application) -> None:
        venue.start()

    async def on_shutdown(app: web.Application) -> None:
        await venue.hub.close_all()  # open sockets would otherwise hold the shutdown up

    async def on_cleanup(app: web.Application) -> None:
        await venue.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


async def serve(config: EmulatorConfig, ready: Callable[[dict[str, object]], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; report `{"event": "ready", ...}` once listening. Returns the exit code."""
    venue = Venue(config)
    app = build_app(venue)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    port = _bound_port(runner, config.port)
    # Objects alive now (modules, symbol tables, the seeded state) never become garbage: keep them out of
    # the collector's full passes, which otherwise stall a request now and then.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    info: dict[str, object] = {
        "event": "ready",
        "host": config.host,
        "port": port,
        "pid": os.getpid(),
        "http_url": f"http://{config.host}:{port}",
        "ws_url": f"ws://{config.host}:{port}",
    }
    (ready or _print_ready)(info)
    log.info(
        "emulator listening on %s:%d (seed %d, %d symbols, price mode %s)",
        config.host,
        port,
        config.seed,
        len(config.symbols),
        config.price_mode,
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if config.state_file is not None:
            venue.snapshot(config.state_file)
            log.info("state written to %s", config.state_file)
        await runner.cleanup()
    return 0


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


def _print_ready(info: dict[str, object]) -> None:
    sys.stdout.write(msgspec.json.encode(info).decode() + "\n")
    sys.stdout.flush()
