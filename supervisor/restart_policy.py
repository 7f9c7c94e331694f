"""When to restart a node that exited, and when to give up: pure decisions over plain values.

- The first crash after stable running restarts at once.
- Repeated crashes back off exponentially with full jitter: a delay drawn from [0, min(backoff_max,
  backoff_initial * 2**(n-2))] for the n-th consecutive crash.
- Running healthy for `reset_after` forgets earlier crashes.
- More than `start_limit.burst` starts within `start_limit.window` quarantines the node (systemd's
  StartLimitBurst/StartLimitIntervalSec semantics): no more restarts until an operator says so.
- A fatal exit (X_FATAL, or exit code 78) quarantines at once.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Callable

from supervisor.config.schema import RestartSpec


class Verdict(enum.StrEnum):
    RESTART = "restart"
    QUARANTINE = "quarantine"


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class RestartHistory:
    """What the policy remembers about one node. Times are monotonic seconds."""

    consecutive_failures: int = 0
    start_times: tuple[float, ...] = ()

    def started(self, now: float, window: float) -> RestartHistory:
        recent = (*(t for t in self.start_times if now - t < window), now)
        return dataclasses.replace(self, start_times=recent)

    def reset(self) -> RestartHistory:
        return RestartHistory()


def backoff_cap(spec: RestartSpec, failures: int) -> float:
    """Upper bound of the delay before restart number `failures` (1 = first crash: no delay)."""
    if failures <= 1:
        return 0.0
    # 2**exponent overflows float for absurd failure counts; the cap is reached long before.
    exponent = min(failures - 2, 60)
    return min(spec.backoff_max, spec.backoff_initial * 2.0**exponent)


def decide_after_exit(
    history: RestartHistory,
    spec: RestartSpec,
    *,
    now: float,
    ran_for: float,
    fatal: bool,
    uniform: Callable[[float, float], float] = random.uniform,
) -> tuple[RestartHistory, Decision]:
    """Decide what follows an exit that nobody asked for. Returns the updated history and the decision."""
    failures = 1 if ran_for >= spec.reset_after else history.consecutive_failures + 1
    history = dataclasses.replace(history, consecutive_failures=failures)
    if fatal:
        return history, Decision(Verdict.QUARANTINE, reason="fatal: the node asked not to be restarted")
    window = spec.start_limit.window
    recent = [t for t in history.start_times if now - t < window]
    if len(recent) >= spec.start_limit.burst:
        return history, Decision(
            Verdict.QUARANTINE,
            reason=f"crash loop: {len(recent)} starts within {window:g}s (start_limit.burst "
            f"{spec.start_limit.burst})",
        )
    cap = backoff_cap(spec, failures)
    delay = uniform(0.0, cap) if cap > 0 else 0.0
    return history, Decision(Verdict.RESTART, delay=delay)
