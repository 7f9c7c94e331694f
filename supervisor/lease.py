"""One owner per trader_id across hosts: a lease in Redis per trader_id, held by one supervisor.

- The lease key `fleet:lease:{trader_id}` holds "<epoch> <holder>" with a TTL; the holder is the supervisor's
  host id and a session uuid (a restarted supervisor is a new holder). ACQUIRE sets it if it is absent or
  already ours (then it only extends the TTL); every new acquisition increments
  `fleet:lease-epoch:{trader_id}` and the new value is the fencing epoch handed to the node (`FLEET_EPOCH`).
  RELEASE deletes it only if it is ours. Both are Lua scripts, so each check-and-set is atomic in Redis.
- `LeaseKeeper` (one per supervisor) renews every held lease every ttl/3 and watches a deadline per lease on
  the monotonic clock: a lease not renewed by `ttl - margin` after the last renewal was sent is lost; the
  keeper says so (`on_lost`: the daemon SIGKILLs that node's process group) before another host can take the
  lease, which it can only `ttl` after that renewal.
- Redis with replicas: a lease write is followed by `WAIT 1 <ms>` on the same connection, and a write no
  replica acknowledged in time counts as not done (not acquired, not renewed). A failover of Redis to a
  replica then cannot hand out a lease that was confirmed only on the old primary. Without replicas nothing
  waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from supervisor.child import process_start_time
from supervisor.config.schema import LeasesSpec

log = logging.getLogger(__name__)

# ARGV[1] = holder, ARGV[2] = ttl in ms. Returns {1, epoch} when the caller holds the lease now (acquired or
# renewed), else {0, epoch, holder, pttl} of the lease someone else holds.
ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local space = string.find(current, ' ', 1, true)
  local epoch = tonumber(string.sub(current, 1, space - 1))
  local holder = string.sub(current, space + 1)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, epoch}
  end
  return {0, epoch, holder, redis.call('PTTL', KEYS[1])}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, epoch}
"""

# ARGV[1] = holder. Deletes the lease only if that holder has it; returns 1 when it did.
RELEASE = """
local current = redis.call('GET', KEYS[1])
if current then
  local space = string.find(current, ' ', 1, true)
  if string.sub(current, space + 1) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
end
return 0
"""

# How long the replica count (INFO replication) is trusted before it is asked again.
REPLICA_CHECK_EVERY_S = 30.0

ENV_EPOCH = "FLEET_EPOCH"
ENV_LEASE_KEY = "FLEET_LEASE_KEY"
ENV_LEASE_TTL_MS = "FLEET_LEASE_TTL_MS"
ENV_LEASE_MARGIN_MS = "FLEET_LEASE_MARGIN_MS"
ENV_HOST_ID = "FLEET_HOST_ID"


def lease_key(trader_id: str) -> str:
    return f"fleet:lease:{trader_id}"


def epoch_key(trader_id: str) -> str:
    return f"fleet:lease-epoch:{trader_id}"


def parse_lease_value(raw: bytes | str | None) -> tuple[int, str] | None:
    """(epoch, holder) of a lease key's value, None for no value or one that is not a lease."""
    if raw is None:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    epoch, sep, holder = text.partition(" ")
    if not sep or not epoch.isdigit() or not holder:
        return None
    return int(epoch), holder


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lease: the supervisor's host id and its session (new at every supervisor start)."""

    host: str
    session: str

    @classmethod
    def new(cls, host: str) -> Holder:
        return cls(host=host, session=uuid.uuid4().hex[:16])

    def __str__(self) -> str:
        return f"{self.host}/{self.session}"

    @staticmethod
    def host_of(holder: str) -> str:
        return holder.rpartition("/")[0] or holder

    @classmethod
    def for_state_dir(cls, state_dir: Path, host: str) -> Holder:
        """This supervisor's holder, kept in its state directory: a supervisor started after the previous one
        died (kill -9, a crash) continues its session, so it renews the leases it held, with the same epochs,
        instead of waiting a TTL for them to expire. While the previous supervisor (by pid and start time)
        still runs, or for another host id, it is a new session."""
        path = state_dir / "lease-holder.json"
        own = {"pid": os.getpid(), "start_time": process_start_time(os.getpid())}
        holder = cls.new(host)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(path.read_text())
            previous = (int(saved["pid"]), saved.get("start_time"))
            alive = previous[1] is not None and process_start_time(previous[0]) == previous[1]
            if saved["host"] == host and (not alive or previous[0] == own["pid"]):
                holder = cls(host=host, session=str(saved["session"]))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"host": host, "session": holder.session, **own}))
        os.replace(tmp, path)
        return holder


@dataclasses.dataclass(frozen=True)
class LeaseTiming:
    ttl: float  # seconds
    margin: float  # seconds: a lease not renewed by ttl - margin counts as lost

    @classmethod
    def from_spec(cls, spec: LeasesSpec) -> LeaseTiming:
        return cls(ttl=float(spec.ttl), margin=spec.effective_margin())

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def valid_for(self) -> float:
        """After a renewal was sent, how long the lease counts as held."""
        return self.ttl - self.margin

    @property
    def ttl_ms(self) -> int:
        return round(self.ttl * 1000)

    @property
    def margin_ms(self) -> int:
        return round(self.margin * 1000)

    @property
    def replica_wait_ms(self) -> int:
        return max(10, round(self.margin * 500))


@dataclasses.dataclass(frozen=True)
class Lease:
    trader_id: str
    epoch: int
    deadline: float  # monotonic seconds: lost unless renewed before

    @property
    def key(self) -> str:
        return lease_key(self.trader_id)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What ACQUIRE answered."""

    held: bool
    epoch: int
    holder: str = ""  # who holds it, when not us
    ttl_ms: int = 0  # its remaining TTL, when not us


class LeaseNotReplicatedError(RedisError):
    """No replica acknowledged a lease write within the wait: the write does not count."""


# (trader_id, reason): the lease is lost; the node trading under it must stop now.
OnLost = Callable[[str, str], None]


class LeaseKeeper:
    def __init__(
        self,
        *,
        redis: Callable[[], Any],
        holder: Holder,
        timing: LeaseTiming,
        on_lost: OnLost,
        call_timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.holder = holder
        self.timing = timing
        self._on_lost = on_lost
        self._call_timeout = max(0.05, min(call_timeout, timing.renew_every))
        self._monotonic = monotonic
        self._leases: dict[str, Lease] = {}
        self._others: dict[str, Outcome] = {}
        self._deadlines_changed = asyncio.Event()
        self._replicas: int | None = None
        self._replicas_at = 0.0
        self._releases: set[asyncio.Task[None]] = set()

    # ---- queries ---------------------------------------------------------------------------------

    def held(self, trader_id: str) -> Lease | None:
        return self._leases.get(trader_id)

    def valid(self, lease: Lease) -> bool:
        """Before its deadline (a frozen supervisor wakes up after it, before the deadline loop has run)."""
        return self._monotonic() < lease.deadline

    def holders(self) -> dict[str, Lease]:
        return dict(self._leases)

    def other_holder(self, trader_id: str) -> str | None:
        """The host that held the lease when this keeper last failed to acquire it."""
        seen = self._others.get(trader_id)
        return Holder.host_of(seen.holder) if seen is not None else None

    def retry_in(self, trader_id: str) -> float:
        """When a standby host should ask again: every ttl/3, and right after the holder's lease would expire
        unless renewed (a dead host's lease is taken over at its expiry, not up to ttl/3 later)."""
        seen = self._others.get(trader_id)
        if seen is None or seen.ttl_ms <= 0:
            return self.timing.renew_every
        return max(0.02, min(self.timing.renew_every, seen.ttl_ms / 1000 + 0.02))

    def node_env(self, lease: Lease) -> dict[str, str]:
        """What a node started under `lease` is told, so that it can check the lease itself."""
        return {
            ENV_EPOCH: str(lease.epoch),
            ENV_LEASE_KEY: lease.key,
            ENV_LEASE_TTL_MS: str(self.timing.ttl_ms),
            ENV_LEASE_MARGIN_MS: str(self.timing.margin_ms),
            ENV_HOST_ID: self.holder.host,
        }

    # ---- acquire, release ------------------------------------------------------------------------

    async def acquire(self, trader_id: str) -> Lease | None:
        """The lease, held by this supervisor now (acquired, or already held), or None: another holder has it
        or Redis did not answer (said in the log)."""
        lease = self._leases.get(trader_id)
        if lease is not None and self.valid(lease):
            return lease
        # Past its deadline (this supervisor was frozen): ask Redis again; a new epoch if it had expired.
        sent = self._monotonic()
        try:
            outcome = await self._acquire_call(trader_id)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("lease %s: cannot acquire: %s", trader_id, _describe(exc))
            return None
        if not outcome.held:
            self._others[trader_id] = outcome
            return None
        self._others.pop(trader_id, None)
        lease = Lease(trader_id=trader_id, epoch=outcome.epoch, deadline=sent + self.timing.valid_for)
        self._leases[trader_id] = lease
        self._deadlines_changed.set()
        log.info("lease %s acquired: epoch %d (holder %s)", trader_id, outcome.epoch, self.holder)
        return lease

    async def release(self, trader_id: str) -> None:
        """Give the lease up (only if this supervisor still holds it in Redis). Bounded; a failure is logged:
        the lease then expires by its TTL."""
        self._leases.pop(trader_id, None)
        self._deadlines_changed.set()
        try:
            released = await self._write(RELEASE, [lease_key(trader_id)], [str(self.holder)])
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("lease %s: release failed (it expires by its TTL): %s", trader_id, _describe(exc))
            return
        if released:
            log.info("lease %s released", trader_id)

    async def release_all(self) -> None:
        await asyncio.gather(*(self.release(t) for t in list(self._leases)))

    # ---- the keeper's loops ----------------------------------------------------------------------

    async def run(self) -> None:
        """Renew every ttl/3; lose leases at their deadline. Cancel to stop (then `release_all`)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._renew_loop(), name="lease.renew")
                group.create_task(self._deadline_loop(), name="lease.deadlines")
        finally:
            for task in list(self._releases):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.timing.renew_every)
            await asyncio.gather(*(self._renew(t) for t in list(self._leases)))

    async def _renew(self, trader_id: str) -> None:
        lease = self._leases.get(trader_id)
        if lease is None:
            return
        sent = self._monotonic()
        try:
            outcome = await self._acquire_call(trader_id)
        except (RedisError, OSError, TimeoutError) as exc:
            left = lease.deadline - self._monotonic()
            log.warning("lease %s: renewal failed (%.1fs left): %s", trader_id, left, _describe(exc))
            return
        if self._leases.get(trader_id) is not lease:
            return  # released or lost meanwhile
        if not outcome.held or outcome.epoch != lease.epoch:
            who = outcome.holder or str(self.holder)
            self._lose(lease, f"the lease is now epoch {outcome.epoch} of {who}")
            return
        self._leases[trader_id] = dataclasses.replace(lease, deadline=sent + self.timing.valid_for)
        self._deadlines_changed.set()

    async def _deadline_loop(self) -> None:
        while True:
            self._deadlines_changed.clear()
            now = self._monotonic()
            for lease in [lease for lease in self._leases.values() if lease.deadline <= now]:
                self._lose(lease, f"not renewed within ttl - margin ({self.timing.valid_for:g}s)")
            upcoming = [lease.deadline for lease in self._leases.values()]
            timeout = max(0.0, min(upcoming) - self._monotonic()) if upcoming else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deadlines_changed.wait(), timeout)

    def _lose(self, lease: Lease, reason: str) -> None:
        if self._leases.get(lease.trader_id) is not lease:
            return
        del self._leases[lease.trader_id]
        self._deadlines_changed.set()
        log.error("lease %s (epoch %d) lost: %s", lease.trader_id, lease.epoch, reason)
        self._on_lost(lease.trader_id, reason)
        # If it is still ours in Redis (renewals only timed out), hand it over now rather than at its TTL.
        task = asyncio.get_running_loop().create_task(
            self._release_quietly(lease.trader_id), name=f"lease.release[{lease.trader_id}]"
        )
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release_quietly(self, trader_id: str) -> None:
        if trader_id in self._leases:
            return  # acquired again meanwhile
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await self._write(RELEASE, [lease_key(trader_id)], [str(self.holder)])

    # ---- Redis -----------------------------------------------------------------------------------

    async def _acquire_call(self, trader_id: str) -> Outcome:
        keys = [lease_key(trader_id), epoch_key(trader_id)]
        raw = await self._write(ACQUIRE, keys, [str(self.holder), str(self.timing.ttl_ms)])
        if int(raw[0]) == 1:
            return Outcome(held=True, epoch=int(raw[1]))
        holder = raw[2].decode() if isinstance(raw[2], bytes) else str(raw[2])
        return Outcome(held=False, epoch=int(raw[1]), holder=holder, ttl_ms=int(raw[3]))

    async def _write(self, script: str, keys: list[str], args: list[str]) -> Any:
        """Run a lease script, bounded in time; with replicas, only a write a replica acknowledged counts."""
        async with asyncio.timeout(self._call_timeout):
            client = self._redis()
            if not await self._has_replicas(client):
                return await client.eval(script, len(keys), *keys, *args)
            # WAIT covers the writes made on its own connection: both go in one pipeline.
            async with client.pipeline(transaction=False) as pipe:
                pipe.eval(script, len(keys), *keys, *args)
                pipe.execute_command("WAIT", 1, self.timing.replica_wait_ms)
                result, acknowledged = await pipe.execute()
            if int(acknowledged) < 1:
                raise LeaseNotReplicatedError(
                    f"no replica acknowledged the lease write within {self.timing.replica_wait_ms} ms"
                )
            return result

    async def _has_replicas(self, client: Any) -> bool:
        now = self._monotonic()
        if self._replicas is None or now - self._replicas_at > REPLICA_CHECK_EVERY_S:
            info = await client.info("replication")
            count = int(info.get("connected_slaves", 0))
            if count != self._replicas:
                log.info("leases: Redis has %d connected replica(s)%s", count, "; writes WAIT" * bool(count))
            self._replicas, self._replicas_at = count, now
        return bool(self._replicas)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
