"""`python -m emulator`: run the venue emulator (also `fleet emulator`).

Prints one JSON line `{"event": "ready", "port": ..., ...}` on stdout once it listens; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from emulator.config import ConfigError, EmulatorConfig, load_accounts
from emulator.ratelimit import RateLimitConfig
from emulator.server import serve
from emulator.symbols import resolve_symbols

log = logging.getLogger("emulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="A Binance USD-M futures compatible venue with fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="listen port (0 = any free port, reported on stdout)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for prices, ids and jitter (default 1)")
    parser.add_argument(
        "--accounts",
        type=Path,
        help="accounts file (YAML/JSON); else EMULATOR_API_KEY/SECRET or the built-in test account",
    )
    parser.add_argument(
        "--symbols",
        help="comma-separated symbols (e.g. BTCUSDT,ETHUSDT), or a number N for "
        "the first N (well-known ones, then synthetic S001USDT, ...); default: 5 majors",
    )
    parser.add_argument(
        "--price-mode",
        choices=("walk", "manual"),
        default="walk",
        help="walk: seeded path in real time; manual: prices move only via the admin API",
    )
    parser.add_argument(
        "--tick-ms", type=int, default=1000, help="price/clock tick interval (default 1000 ms)"
    )
    parser.add_argument(
        "--price-script",
        type=Path,
        help="JSON lines {t: seconds, symbol, price[, mark]} applied at their time after start",
    )
    parser.add_argument(
        "--state",
        type=Path,
        help="state file: restored at start when present, written at "
        "clean shutdown and by /_admin/snapshot without a path",
    )
    parser.add_argument(
        "--weight-limit",
        type=int,
        default=2400,
        help="request weight per window per client address (all accounts behind it share it)",
    )
    parser.add_argument(
        "--weight-window-s",
        type=int,
        default=60,
        help="length of the request-weight window in seconds (the venue: 60; shorter for tests)",
    )
    parser.add_argument(
        "--orders-per-10s", type=int, default=300, help="order placements per 10 s per account"
    )
    parser.add_argument(
        "--orders-per-minute", type=int, default=1200, help="order placements per minute per account"
    )
    parser.add_argument("--ban-after", type=int, default=3, help="429 answers in a window before a 418 ban")
    parser.add_argument("--ban-seconds", type=int, default=120, help="length of a 418 ban")
    parser.add_argument(
        "--funding",
        choices=("auto", "manual"),
        default="auto",
        help="auto: settle funding at 00/08/16 UTC; manual: only via the admin API",
    )
    parser.add_argument(
        "--algo-finish-delay-ms",
        type=int,
        default=50,
        help="delay of ALGO_UPDATE FINISHED after the child order's fill events (default 50)",
    )
    parser.add_argument(
        "--admin-allow-remote", action="store_true", help="serve /_admin to non-loopback clients"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    names: list[str] | None = None
    count: int | None = None
    if args.symbols:
        if args.symbols.isdigit():
            count = int(args.symbols)
        else:
            names = [s for s in args.symbols.split(",") if s.strip()]
    rate_limit = RateLimitConfig(
        weight_per_minute=args.weight_limit,
        weight_window_s=args.weight_window_s,
        ban_after=args.ban_after,
        ban_seconds=args.ban_seconds,
        orders_per_minute=args.orders_per_minute,
        orders_per_10s=args.orders_per_10s,
    )
    try:
        rate_limit.check()
    except ValueError as exc:
        raise ConfigError(f"rate limits: {exc}") from exc
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        symbols=tuple(resolve_symbols(names, count)),
        accounts=load_accounts(args.accounts),
        price_mode=args.price_mode,
        tick_ms=max(10, args.tick_ms),
        state_file=args.state,
        price_script=args.price_script,
        rate_limit=rate_limit,
        admin_allow_remote=args.admin_allow_remote,
        algo_finish_delay_ms=max(0, args.algo_finish_delay_ms),
        auto_funding=args.funding == "auto",
    )


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        return asyncio.run(serve(config))
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror)
        return 1


if __name__ == "__main__":
    sys.exit(main())
