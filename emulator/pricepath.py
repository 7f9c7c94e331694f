"""A deterministic price path: the price of a symbol is a pure function of (seed, symbol, time).

The log-price is a sum of value-noise layers at time scales from seconds to half a year, with amplitudes that
grow like the square root of the scale (so it looks like a random walk at every zoom level). Any time range
can be evaluated directly, without replaying a walk from some origin, which is what makes kline history for
an arbitrary window cheap and identical on every run with the same seed.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from emulator.numbers import quantize_to_step
from emulator.symbols import SymbolSpec

_MASK = (1 << 64) - 1
_BASE_SCALE_MS = 3750  # finest layer: 3.75 s
_LAYERS = 12  # 3.75 s * 4**11 = about 182 days
_AMPLITUDE = 0.8


def mix(value: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def stable_key(*parts: str | int) -> int:
    """A 64-bit key from strings and ints, stable across processes (unlike `hash`)."""
    key = 0
    for part in parts:
        data = part.encode() if isinstance(part, str) else str(part).encode()
        for byte in data:
            key = mix(key ^ byte)
        key = mix(key ^ 0xFF)
    return key


def unit(key: int, index: int) -> float:
    """A uniform value in [-1, 1) determined by (key, index)."""
    return (mix(mix(key) ^ (index & _MASK)) >> 11) / float(1 << 52) - 1.0


def unit01(key: int, index: int) -> float:
    return (unit(key, index) + 1.0) / 2.0


class PricePath:
    """The seeded path of one symbol: `price(t)` is exact and repeatable; `wiggle` widens bar ranges."""

    __slots__ = ("_amplitudes", "_keys", "_log_start", "_scales", "key", "spec")

    def __init__(self, seed: int, spec: SymbolSpec) -> None:
        self.spec = spec
        self.key = stable_key(seed, spec.symbol)
        self._log_start = math.log(float(spec.start_price))
        self._scales = [_BASE_SCALE_MS * 4**layer for layer in range(_LAYERS)]
        self._keys = [stable_key(self.key, "layer", layer) for layer in range(_LAYERS)]
        sigma = spec.vol_per_minute * _AMPLITUDE
        self._amplitudes = [sigma * math.sqrt(scale / 60_000) for scale in self._scales]

    def log_offset(self, t_ms: float) -> float:
        total = 0.0
        for scale, key, amplitude in zip(self._scales, self._keys, self._amplitudes, strict=True):
            x = t_ms / scale
            knot = math.floor(x)
            frac = x - knot
            smooth = frac * frac * (3.0 - 2.0 * frac)
            left = unit(key, knot)
            right = unit(key, knot + 1)
            total += amplitude * (left + (right - left) * smooth)
        return total

    def raw(self, t_ms: float) -> float:
        return math.exp(self._log_start + self.log_offset(t_ms))

    def price(self, t_ms: float, scale: float = 1.0) -> Decimal:
        """The path's price at `t_ms`, times `scale` (an admin adjustment), on the tick grid."""
        value = Decimal(repr(self.raw(t_ms) * scale))
        return clamp_to_tick(value, self.spec)

    def wiggle(self, t_ms: int, interval_ms: int) -> float:
        """A non-negative fraction of price by which a bar's high/low reach beyond its sampled path."""
        sigma = self.spec.vol_per_minute * math.sqrt(interval_ms / 60_000)
        return abs(unit(self.key, t_ms // 1000)) * sigma * 0.5


def clamp_to_tick(value: Decimal, spec: SymbolSpec) -> Decimal:
    """Round to the tick grid and keep within the symbol's price filter."""
    on_grid = quantize_to_step(value, spec.tick_size, ROUND_HALF_EVEN)
    if on_grid < spec.min_price:
        return spec.min_price
    if on_grid > spec.max_price:
        return spec.max_price
    return on_grid
