"""Durations as written in fleet.yaml: "250ms", "30s", "5m", "1h", "1.5s", "1m30s".

A bare number is rejected: `grace: 30` could mean seconds or milliseconds, and the file should say which.
Units run from large to small, each at most once ("1h30m", not "30m1h"); no sign, no spaces.
"""

from __future__ import annotations

import re

from supervisor.config.schema import Duration

UNITS: dict[str, float] = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# One "<number><unit>" part; a whole duration is one or more of them with nothing in between.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
# For the JSON Schema: the same grammar as one regular expression (order of units not expressed).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|h|m|s))+$"
EXAMPLE = "30s"
# No setting needs more; it keeps every duration finite (a 400-digit "1111...s" overflowed to infinity).
MAX_SECONDS = 365 * 86_400.0


def parse_duration(text: str) -> Duration:
    """Parse "1m30s" into `Duration(90.0)`; ValueError for anything else."""
    pos = 0
    total = 0.0
    last_rank = -1
    ranks = list(UNITS)
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"not a duration: {text!r}")
        number, unit = match.groups()
        rank = ranks.index(unit)
        if rank <= last_rank:
            raise ValueError(f"units out of order or repeated in {text!r}")
        last_rank = rank
        total += float(number) * UNITS[unit]
        pos = match.end()
    if pos == 0:
        raise ValueError("empty duration")
    if not total <= MAX_SECONDS:  # also catches infinity
        raise ValueError(f"longer than a year: {text!r}")
    return Duration(total)


def format_duration(seconds: float) -> str:
    """The shortest readable form that parses back to the same value (to the millisecond):
    0.25 -> "250ms", 1.5 -> "1.5s", 90 -> "1m30s", 3600 -> "1h"."""
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if rest:
        whole, frac = divmod(rest, 1000)
        parts.append(f"{whole}.{frac:03d}".rstrip("0") + "s" if frac else f"{whole}s")
    return "".join(parts)
