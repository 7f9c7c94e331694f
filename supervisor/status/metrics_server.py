"""The `/metrics` HTTP endpoint, served by aiohttp on the daemon's own event loop (no extra thread)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

log = logging.getLogger(__name__)


class ListenAddressError(ValueError):
    pass


def parse_listen(listen: str) -> tuple[str, int]:
    """ "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464" -> (host, port). Port 0 picks a free port."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host:
        raise ListenAddressError(f"metrics.listen {listen!r}: expected host:port, e.g. 127.0.0.1:9464")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ListenAddressError(f"metrics.listen {listen!r}: unbalanced [ ] around an IPv6 address")
        host = host[1:-1]
    elif ":" in host:
        raise ListenAddressError(f"metrics.listen {listen!r}: write an IPv6 address in brackets, [::1]:9464")
    try:
        port = int(port_text)
    except ValueError:
        raise ListenAddressError(f"metrics.listen {listen!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ListenAddressError(f"metrics.listen {listen!r}: port {port} is out of range")
    return host, port


class MetricsServer:
    """Serves one registry at `/metrics`. Start `run()` in the daemon's task group; cancel it to stop."""

    def __init__(self, *, registry: CollectorRegistry, listen: str) -> None:
        self._registry = registry
        self._host, self._port = parse_listen(listen)
        self._bound: tuple[str, int] | None = None
        self._started = asyncio.Event()

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) actually bound (the port is real even when 0 was asked); None until started."""
        return self._bound

    async def wait_started(self) -> tuple[str, int]:
        await self._started.wait()
        assert self._bound is not None
        return self._bound

    async def run(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(self._registry))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
            await site.start()
            address = runner.addresses[0]
            self._bound = (str(address[0]), int(address[1]))
            log.info("metrics at http://%s:%d/metrics", self._host, self._bound[1])
            self._started.set()
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await runner.cleanup()
