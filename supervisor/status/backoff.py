"""Reconnect delays: capped exponential backoff with full jitter (a pure function of its inputs)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReconnectPolicy:
    initial: float = 0.5  # seconds: the ceiling of the first delay
    cap: float = 30.0  # seconds: no delay is longer

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError(f"reconnect backoff needs 0 < initial <= cap, got {self.initial}, {self.cap}")

    def ceiling(self, failures: int) -> float:
        """The largest delay after `failures` consecutive failed attempts (>= 1)."""
        # Bound the exponent so a long outage cannot overflow the float.
        return min(self.cap, self.initial * 2.0 ** min(max(failures - 1, 0), 62))

    def delay(self, failures: int, rand: float) -> float:
        """Full jitter: uniform in [0, ceiling). `rand` is a uniform sample in [0, 1)."""
        return self.ceiling(failures) * rand
