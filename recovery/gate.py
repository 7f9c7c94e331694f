"""The node's side of the reconciliation gate (`supervisor/reconcile_gate.py`): before its first venue
request, a node the supervisor queued (`$FLEET_GATE_KEY` set) waits until it is admitted.

The supervisor admits by pushing to the Redis list named in `$FLEET_GATE_KEY`; the node blocks on it in
short, bounded pops, so that a stop request, the watchdog and the event loop are never held up. Redis
failing here ends the wait: the node's limiter protects the venue on its own, and a node that cannot reach
Redis fails its start at the next step anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from supervisor.reconcile_gate import ENV_GATE_KEY

log = logging.getLogger(__name__)

__all__ = ["ENV_GATE_KEY", "wait_for_admission"]
POP_TIMEOUT_S = 1


async def wait_for_admission(redis: Any, key: str, stop: asyncio.Event, call_timeout_s: float) -> float:
    """Seconds waited until admitted (or until the wait was given up on a Redis error); returns early,
    without admission, when `stop` is set (the caller checks it)."""
    started = time.monotonic()
    while not stop.is_set():
        try:
            async with asyncio.timeout(POP_TIMEOUT_S + call_timeout_s):
                popped = await redis.blpop([key], timeout=POP_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("reconciliation gate: cannot wait for admission (%s); going ahead", exc)
            break
        if popped is not None:
            break
    waited = time.monotonic() - started
    log.info("reconciliation gate: admitted after %.1fs", waited)
    return waited
