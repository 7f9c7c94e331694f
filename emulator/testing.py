"""Run the emulator as a real subprocess for tests, benchmarks and drills.

    async with running_emulator(seed=7, symbols=["BTCUSDT", "ETHUSDT"]) as venue:
        # venue.http_url, venue.ws_url, venue.api_key, venue.api_secret, venue.admin (an AdminClient)
        await venue.admin.set_price("BTCUSDT", "65000")
        await venue.restart()             # same port, same state (the venue never forgets orders)
        await venue.restart(kill=True)    # SIGKILL instead of SIGTERM; state is snapshotted first

Prices and funding are `manual` by default, so a test controls every move and runs are repeatable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp
import yarl

from emulator import auth
from emulator.admin import AdminClient
from emulator.config import AccountSpec, default_account

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class EmulatorStartError(RuntimeError):
    """The emulator process did not report ready; carries the tail of its log."""


@dataclass
class EmulatorProcess:
    """A running (or stopped) emulator subprocess and how to reach it."""

    args: list[str]
    workdir: Path
    accounts: tuple[AccountSpec, ...]
    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout: float = STARTUP_TIMEOUT_S
    admin: AdminClient = field(init=False)
    _process: asyncio.subprocess.Process | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.accounts[0].api_key

    @property
    def api_secret(self) -> str:
        return self.accounts[0].api_secret

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "emulator.log"

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def start(self) -> None:
        if self._process is not None and self._process.returncode is None:
            raise RuntimeError("emulator already running")
        self._log = self.log_path.open("ab")
        command = [
            sys.executable,
            "-m",
            "emulator",
            *self.args,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--state",
            str(self.state_path),
        ]
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=self._log, stdin=asyncio.subprocess.DEVNULL
        )
        try:
            info = await asyncio.wait_for(self._read_ready(), self.startup_timeout)
        except (TimeoutError, EmulatorStartError) as exc:
            await self._terminate(kill=True)
            raise EmulatorStartError(f"emulator did not become ready: {exc}\n{self.log_tail()}") from exc
        self.port = int(str(info["port"]))
        self.admin = AdminClient(self.http_url)

    async def _read_ready(self) -> dict[str, object]:
        assert self._process is not None and self._process.stdout is not None
        while True:
            line = await self._process.stdout.readline()
            if not line:
                raise EmulatorStartError(f"process exited with {await self._process.wait()}")
            with contextlib.suppress(ValueError):
                info = json.loads(line)
                if isinstance(info, dict) and info.get("event") == "ready":
                    return info

    async def stop(self, *, kill: bool = False) -> int | None:
        """Stop the process: SIGTERM (state written to the state file) or SIGKILL (nothing written)."""
        if hasattr(self, "admin"):
            await self.admin.close()
        return await self._terminate(kill=kill)

    async def _terminate(self, *, kill: bool) -> int | None:
        process, self._process = self._process, None
        code: int | None = None
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                code = await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                code = await process.wait()
        elif process is not None:
            code = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    async def restart(
        self, *, kill: bool = False, downtime_s: float = 0.0, from_snapshot: Path | None = None
    ) -> None:
        """Stop and start again on the same port: with the same state (a venue outage, not a venue reset),
        or with the state of `from_snapshot` (a file written by `admin.snapshot`)."""
        if kill and from_snapshot is None:
            await self.admin.snapshot(str(self.state_path))
        await self.stop(kill=kill)
        if from_snapshot is not None:
            shutil.copyfile(from_snapshot, self.state_path)
        if downtime_s:
            await asyncio.sleep(downtime_s)
        await self.start()


def build_args(
    *,
    seed: int,
    symbols: Sequence[str] | int | None,
    price_mode: str,
    funding: str,
    tick_ms: int,
    accounts_file: Path | None,
    extra_args: Sequence[str],
) -> list[str]:
    args = ["--seed", str(seed), "--price-mode", price_mode, "--funding", funding, "--tick-ms", str(tick_ms)]
    if symbols is not None:
        args += ["--symbols", str(symbols) if isinstance(symbols, int) else ",".join(symbols)]
    if accounts_file is not None:
        args += ["--accounts", str(accounts_file)]
    return args + list(extra_args)


def write_accounts(path: Path, accounts: Sequence[AccountSpec]) -> None:
    rows = [
        {
            "name": a.name,
            "api_key": a.api_key,
            "api_secret": a.api_secret,
            "balance": str(a.balance),
            "fee_tier": a.fee_tier,
            "leverage": a.leverage,
            "positions": [
                {"symbol": p.symbol, "amount": str(p.amount), "entry_price": str(p.entry_price)}
                for p in a.positions
            ],
        }
        for a in accounts
    ]
    path.write_text(json.dumps({"accounts": rows}))
    path.chmod(0o600)


@contextlib.asynccontextmanager
async def running_emulator(
    *,
    seed: int = 1,
    symbols: Sequence[str] | int | None = None,
    accounts: Sequence[AccountSpec] | None = None,
    price_mode: str = "manual",
    funding: str = "manual",
    tick_ms: int = 200,
    port: int = 0,
    extra_args: Sequence[str] = (),
    workdir: Path | None = None,
    state_file: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT_S,
) -> AsyncIterator[EmulatorProcess]:
    """Start an emulator subprocess, yield it (ready), stop it on exit. Logs go to `workdir/emulator.log`.

    `state_file`: start from a snapshot (its accounts replace `accounts`' starting state)."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emulator-")))
        accounts = tuple(accounts) if accounts else (default_account(),)
        accounts_file = workdir / "accounts.json"
        write_accounts(accounts_file, accounts)
        args = build_args(
            seed=seed,
            symbols=symbols,
            price_mode=price_mode,
            funding=funding,
            tick_ms=tick_ms,
            accounts_file=accounts_file,
            extra_args=extra_args,
        )
        emulator = EmulatorProcess(
            args=args, workdir=workdir, accounts=accounts, port=port, startup_timeout=startup_timeout
        )
        if state_file is not None:
            shutil.copyfile(state_file, emulator.state_path)
        await emulator.start()
        try:
            yield emulator
        finally:
            await emulator.stop()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class VenueClient:
    """A minimal signed REST client for tests (the way nautilus signs: every parameter in the query).

    `reply = await client.get("/fapi/v2/account")`; `sign=False` for public endpoints; `in_body=True` sends
    POST parameters as a form body (the way ccxt does); `timestamp`/`secret` overrides make bad requests.
    `local_address` sends from another loopback address (e.g. "127.0.0.2"): another client address for the
    venue's per-address request weight.
    """

    def __init__(
        self,
        http_url: str,
        api_key: str,
        api_secret: str,
        *,
        timeout_s: float = 10.0,
        local_address: str | None = None,
    ) -> None:
        self.http_url = http_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.timeout_s = timeout_s
        self.local_address = local_address
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> VenueClient:
        connector = aiohttp.TCPConnector(local_addr=(self.local_address, 0)) if self.local_address else None
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        sign: bool = True,
        in_body: bool = False,
        timestamp: int | None = None,
        secret: str | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        assert self._session is not None, "use VenueClient as an async context manager"
        values = dict(params or {})
        if sign:
            values["timestamp"] = str(timestamp if timestamp is not None else time.time_ns() // 1_000_000)
            encoded = urlencode(values)
            encoded += "&signature=" + auth.sign(secret or self.api_secret, encoded)
        else:
            encoded = urlencode(values)
        headers = {"X-MBX-APIKEY": api_key if api_key is not None else self.api_key}
        url, body = f"{self.http_url}{path}", None
        if in_body:
            body = encoded
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif encoded:
            url += "?" + encoded
        limit = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        target = yarl.URL(url, encoded=True)  # sent exactly as signed
        async with self._session.request(
            method, target, data=body, headers=headers, timeout=limit
        ) as response:
            payload = await response.json(content_type=None)
            return Reply(response.status, payload, dict(response.headers))

    async def get(self, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return await self.request("GET", path, params, **kwargs)

    async def post(self, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, params, **kwargs)

    async def delete(self, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, params, **kwargs)


def free_port() -> int:
    """A port that was free a moment ago (prefer `port=0`: the emulator reports the one it bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = ["EmulatorProcess", "EmulatorStartError", "Reply", "VenueClient", "free_port", "running_emulator"]


async def exchange_symbols(venue: EmulatorProcess) -> list[dict[str, Any]]:
    """The symbols of the venue's exchangeInfo, with their filters."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{venue.http_url}/fapi/v1/exchangeInfo") as response,
    ):
        info = await response.json()
    symbols: list[dict[str, Any]] = info["symbols"]
    return symbols


async def order_quantities(
    venue: EmulatorProcess, symbols: Sequence[str], notional_multiple: int = 2
) -> list[str]:
    """A quantity per symbol worth `notional_multiple` times its minimum notional at the current price, on its
    step size (so that an order of it passes the venue's filters)."""
    rows = {row["symbol"]: row for row in await exchange_symbols(venue)}
    prices = (await venue.admin.state())["prices"]
    result = []
    for symbol in symbols:
        filters = {f["filterType"]: f for f in rows[symbol]["filters"]}
        step = Decimal(filters["LOT_SIZE"]["stepSize"])
        notional = Decimal(filters["MIN_NOTIONAL"]["notional"]) * notional_multiple
        steps = (notional / Decimal(prices[symbol]["last"]) / step).to_integral_value(rounding=ROUND_CEILING)
        result.append(str(max(Decimal(filters["LOT_SIZE"]["minQty"]), steps * step).normalize()))
    return result
