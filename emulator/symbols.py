"""The perpetual contracts the venue lists: filters, precisions, leverage brackets and starting prices.

Well-known symbols get filters close to the real venue's; any other `<BASE>USDT` name gets plausible filters
derived from its name, so a benchmark can list 50 or 500 contracts.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal

from emulator.numbers import places


@dataclass(frozen=True, slots=True)
class Bracket:
    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal
    max_price: Decimal
    start_price: Decimal
    max_leverage: int
    bracket_base: Decimal
    vol_per_minute: float
    onboard_date: int
    underlying_sub_type: tuple[str, ...]
    max_open_orders: int = 200
    max_algo_orders: int = 10
    multiplier_up: Decimal = Decimal("1.0500")
    multiplier_down: Decimal = Decimal("0.9500")
    # Derived once (they are read on every request).
    price_decimals: int = field(init=False)
    qty_decimals: int = field(init=False)
    brackets: tuple[Bracket, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_decimals", places(self.tick_size))
        object.__setattr__(self, "qty_decimals", places(self.step_size))
        object.__setattr__(self, "brackets", make_brackets(self.max_leverage, self.bracket_base))


# Relative tier shapes: (notional cap as a multiple of the base, leverage divisor, maintenance margin ratio).
_TIERS: tuple[tuple[int, Decimal, Decimal], ...] = (
    (1, Decimal(1), Decimal("0.004")),
    (10, Decimal("1.25"), Decimal("0.005")),
    (50, Decimal("2.5"), Decimal("0.01")),
    (200, Decimal("6.25"), Decimal("0.025")),
    (500, Decimal("12.5"), Decimal("0.05")),
    (2000, Decimal("25"), Decimal("0.1")),
)


@functools.cache
def make_brackets(max_leverage: int, base: Decimal) -> tuple[Bracket, ...]:
    """Leverage brackets; `cum` is the maintenance amount that keeps margin continuous across tiers."""
    out: list[Bracket] = []
    floor = Decimal(0)
    cum = Decimal(0)
    prev_mmr = Decimal(0)
    for index, (cap_mult, divisor, mmr) in enumerate(_TIERS, start=1):
        cum += floor * (mmr - prev_mmr)
        cap = base * cap_mult
        leverage = max(1, int(Decimal(max_leverage) / divisor))
        out.append(Bracket(index, leverage, floor, cap, mmr, cum))
        floor, prev_mmr = cap, mmr
    return tuple(out)


def _spec(
    symbol: str,
    tick: str,
    step: str,
    price: str,
    *,
    max_qty: str,
    market_max: str,
    notional: str = "5",
    leverage: int = 75,
    bracket_base: str = "10000",
    vol: float = 0.0012,
    onboard: int = 1569398400000,
    sub_type: tuple[str, ...] = ("Layer-1",),
) -> SymbolSpec:
    tick_d = Decimal(tick)
    return SymbolSpec(
        symbol=symbol,
        base=symbol.removesuffix("USDT"),
        quote="USDT",
        tick_size=tick_d,
        step_size=Decimal(step),
        min_qty=Decimal(step),
        max_qty=Decimal(max_qty),
        market_max_qty=Decimal(market_max),
        min_notional=Decimal(notional),
        min_price=tick_d * 10,
        max_price=Decimal(price) * 20,
        start_price=Decimal(price),
        max_leverage=leverage,
        bracket_base=Decimal(bracket_base),
        vol_per_minute=vol,
        onboard_date=onboard,
        underlying_sub_type=sub_type,
    )


KNOWN_SYMBOLS: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        _spec(
            "BTCUSDT",
            "0.10",
            "0.001",
            "65000.00",
            max_qty="1000",
            market_max="120",
            notional="100",
            leverage=125,
            bracket_base="50000",
            vol=0.0008,
            sub_type=("PoW",),
        ),
        _spec(
            "ETHUSDT",
            "0.01",
            "0.001",
            "3400.00",
            max_qty="10000",
            market_max="2000",
            notional="20",
            leverage=125,
            bracket_base="50000",
            vol=0.001,
            onboard=1569398400000,
        ),
        _spec(
            "BNBUSDT",
            "0.010",
            "0.01",
            "580.000",
            max_qty="100000",
            market_max="2000",
            leverage=75,
            onboard=1581292800000,
            sub_type=("BSC",),
        ),
        _spec(
            "SOLUSDT", "0.0100", "1", "150.0000", max_qty="1000000", market_max="5000", onboard=1600128000000
        ),
        _spec(
            "XRPUSDT",
            "0.0001",
            "0.1",
            "0.5500",
            max_qty="10000000",
            market_max="2000000",
            onboard=1578528000000,
            sub_type=("Payment",),
        ),
        _spec(
            "DOGEUSDT",
            "0.00001",
            "1",
            "0.12000",
            max_qty="50000000",
            market_max="30000000",
            onboard=1594857600000,
            sub_type=("Meme",),
        ),
        _spec(
            "ADAUSDT",
            "0.00010",
            "1",
            "0.45000",
            max_qty="10000000",
            market_max="3000000",
            onboard=1580515200000,
        ),
        _spec(
            "LTCUSDT",
            "0.01",
            "0.001",
            "80.00",
            max_qty="100000",
            market_max="5000",
            onboard=1578960000000,
            sub_type=("PoW",),
        ),
        _spec(
            "LINKUSDT",
            "0.001",
            "0.01",
            "15.000",
            max_qty="500000",
            market_max="100000",
            onboard=1579046400000,
            sub_type=("Oracle",),
        ),
        _spec(
            "AVAXUSDT", "0.0010", "1", "30.0000", max_qty="500000", market_max="50000", onboard=1600905600000
        ),
    )
}

DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")


def _unit_hash(*parts: object) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def generic_spec(symbol: str) -> SymbolSpec:
    """Filters for a symbol the table does not know, derived from its name (stable across runs)."""
    magnitude = math.floor(_unit_hash(symbol, "magnitude") * 6) - 2  # 10^-2 .. 10^3
    price = Decimal(10) ** magnitude * Decimal(str(round(1 + 8 * _unit_hash(symbol, "mantissa"), 2)))
    tick_places = min(7, max(1, 4 - magnitude))
    step_places = min(3, max(0, magnitude))
    tick = Decimal(1).scaleb(-tick_places)
    step = Decimal(1).scaleb(-step_places)
    return SymbolSpec(
        symbol=symbol,
        base=symbol.removesuffix("USDT"),
        quote="USDT",
        tick_size=tick,
        step_size=step,
        min_qty=step,
        max_qty=Decimal(10_000_000),
        market_max_qty=Decimal(1_000_000),
        min_notional=Decimal(5),
        min_price=tick * 10,
        max_price=(price * 20).quantize(tick),
        start_price=price.quantize(tick),
        max_leverage=50,
        bracket_base=Decimal(5000),
        vol_per_minute=0.0015,
        onboard_date=1600000000000,
        underlying_sub_type=("Synthetic",),
    )


def spec_for(symbol: str) -> SymbolSpec:
    return KNOWN_SYMBOLS.get(symbol) or generic_spec(symbol)


def resolve_symbols(names: list[str] | None, count: int | None = None) -> list[SymbolSpec]:
    """The listed contracts: explicit names, or the first `count` (known ones, then `S001USDT`, ...)."""
    if names:
        return [spec_for(name.strip().upper()) for name in names if name.strip()]
    if count is None:
        return [KNOWN_SYMBOLS[name] for name in DEFAULT_SYMBOLS]
    known = list(KNOWN_SYMBOLS.values())[:count]
    synthetic = [generic_spec(f"S{index:03d}USDT") for index in range(1, max(0, count - len(known)) + 1)]
    return known + synthetic
