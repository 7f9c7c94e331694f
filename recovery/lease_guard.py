"""The node's own check of its lease: a frozen or cut-off supervisor cannot leave a trading node behind.

The supervisor starts a strategy node only under its trader_id's lease and hands it the lease key and the
fencing epoch (`FLEET_EPOCH`, see `supervisor/lease.py`). With its own Redis connection, the node confirms
right after it reached Redis that the key holds its epoch, then checks again every ttl/3 and at its deadline:
`margin` before the lease would expire unless renewed. When the key is gone, holds another epoch, or is not
renewed by then (the supervisor is frozen, dead, or cut off from Redis), the node halts trading (RiskEngine
HALTED) and exits 75 at once: before the lease can expire and another host acquire it.

Until the lease is confirmed, and from the moment it is lost, the node's `Fence` is down: its venue HTTP
client refuses every signed request that is not a GET (`FencedRequestError`), so it cannot place or cancel an
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from supervisor.lease import (
    ENV_EPOCH,
    ENV_LEASE_KEY,
    ENV_LEASE_MARGIN_MS,
    ENV_LEASE_TTL_MS,
    parse_lease_value,
)

log = logging.getLogger(__name__)


class FencedRequestError(RuntimeError):
    """A request that changes something at the venue, from a node that does not (or no longer) hold its
    lease: refused before it is signed."""


class Fence:
    """Up while the node's lease is confirmed; the venue client checks it before signing an order."""

    def __init__(self) -> None:
        self.confirmed = False
        self.reason = "the lease is not confirmed yet"

    def check(self, method: str, path: str) -> None:
        if method != "GET" and not self.confirmed:
            raise FencedRequestError(f"{method} {path} refused: {self.reason}")


@dataclasses.dataclass(frozen=True)
class LeaseSettings:
    key: str
    epoch: int
    ttl: float  # seconds
    margin: float  # seconds

    @property
    def interval(self) -> float:
        return self.ttl / 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LeaseSettings | None:
        """The lease the supervisor started this node under; None when it runs without one."""
        if not environ.get(ENV_EPOCH):
            return None
        return cls(
            key=environ[ENV_LEASE_KEY],
            epoch=int(environ[ENV_EPOCH]),
            ttl=int(environ[ENV_LEASE_TTL_MS]) / 1000,
            margin=int(environ[ENV_LEASE_MARGIN_MS]) / 1000,
        )


@dataclasses.dataclass(frozen=True)
class Observation:
    """One read of the lease key: its value, its remaining TTL (ms; negative: none), and when it was sent."""

    value: bytes | str | None
    pttl_ms: int
    sent: float  # monotonic seconds


class Verdict(enum.StrEnum):
    HELD = "held"
    UNREACHABLE = "unreachable"  # no answer, but the deadline has not passed: still held
    LOST = "lost"  # the key is gone
    EPOCH_CHANGED = "epoch_changed"  # another acquisition (this host's or another's) replaced it
    EXPIRED = "expired"  # not renewed by its deadline

    @property
    def halts(self) -> bool:
        return self not in (Verdict.HELD, Verdict.UNREACHABLE)


@dataclasses.dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    deadline: float  # monotonic seconds: halt unless a later read shows the lease renewed
    reason: str = ""


def judge(  # noqa: PLR0911 - one verdict per way the lease can be
    observation: Observation | None, *, epoch: int, margin: float, deadline: float, now: float
) -> Judgement:
    """What one read (None: Redis did not answer) says about the lease the node runs under."""
    if observation is None:
        if now >= deadline:
            return Judgement(Verdict.EXPIRED, deadline, "Redis did not answer before the lease's deadline")
        return Judgement(Verdict.UNREACHABLE, deadline)
    parsed = parse_lease_value(observation.value)
    if parsed is None:
        return Judgement(Verdict.LOST, deadline, "the lease key is gone")
    held_epoch, holder = parsed
    if held_epoch != epoch:
        return Judgement(
            Verdict.EPOCH_CHANGED, deadline, f"the lease is epoch {held_epoch} of {holder}, not {epoch}"
        )
    if observation.pttl_ms < 0:
        return Judgement(Verdict.LOST, deadline, "the lease key has no TTL")
    renewed = observation.sent + observation.pttl_ms / 1000 - margin
    if now >= renewed:
        return Judgement(Verdict.EXPIRED, renewed, f"not renewed: it expires within the margin ({margin:g}s)")
    return Judgement(Verdict.HELD, renewed)


class LeaseGuard:
    def __init__(
        self,
        *,
        redis: Any,
        settings: LeaseSettings,
        fence: Fence,
        on_lost: Callable[[str], None],
        call_timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.settings = settings
        self.fence = fence
        self._on_lost = on_lost
        self._call_timeout = max(0.05, min(call_timeout, settings.interval))
        self._monotonic = monotonic
        self._deadline = 0.0
        self._task: asyncio.Task[None] | None = None

    async def confirm(self) -> Judgement:
        """The first check: the fence goes up only if the key holds this node's epoch."""
        self._deadline = self._monotonic() + self.settings.ttl - self.settings.margin
        judgement = await self.check()
        if judgement.verdict is Verdict.UNREACHABLE:
            judgement = dataclasses.replace(judgement, verdict=Verdict.LOST, reason="Redis did not answer")
        if judgement.verdict is Verdict.HELD:
            self.fence.confirmed = True
            self.fence.reason = ""
            log.info("lease %s confirmed: epoch %d", self.settings.key, self.settings.epoch)
        else:
            self.fence.reason = judgement.reason
        return judgement

    async def check(self) -> Judgement:
        judgement = judge(
            await self._observe(),
            epoch=self.settings.epoch,
            margin=self.settings.margin,
            deadline=self._deadline,
            now=self._monotonic(),
        )
        self._deadline = judgement.deadline
        return judgement

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="node.lease-guard")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def _watch(self) -> None:
        while True:
            wait = min(self.settings.interval, self._deadline - self._monotonic())
            await asyncio.sleep(max(0.0, wait))
            judgement = await self.check()
            if judgement.verdict is Verdict.UNREACHABLE:
                log.warning("lease %s: Redis did not answer; halting at the deadline", self.settings.key)
            if judgement.verdict.halts:
                self.fence.confirmed = False
                self.fence.reason = judgement.reason
                self._on_lost(judgement.reason)
                return

    async def _observe(self) -> Observation | None:
        sent = self._monotonic()
        # Bounded by the deadline too: past it, an answer that has not come is a lease that was not renewed.
        bound = max(0.05, min(self._call_timeout, self._deadline - sent))
        try:
            async with asyncio.timeout(bound):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.get(self.settings.key)
                    pipe.pttl(self.settings.key)
                    value, pttl = await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to read is "no answer": the deadline decides
            log.debug("lease %s: read failed: %s", self.settings.key, exc)
            return None
        return Observation(value=value, pttl_ms=int(pttl), sent=sent)
