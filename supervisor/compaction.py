"""Cache compaction: move a trader's closed history out of the keys nautilus loads at start, into an archive.

nautilus 1.231 loads every cached order, position and account event synchronously inside `TradingNode()`,
closed history included, at roughly 0.3-0.5 ms per item (bench/cache_load.py): 10k closed positions with their
orders take tens of seconds before a node can even reconcile. The supervisor runs `compact_trader` before it
starts a node, while the node is down; what stays is every open order and position, what they link to, and the
most recent closed history (see `compaction_plan.py` for the rules). Nothing is deleted: archived items keep
their exact bytes and index entries under `fleet-archive:{trader_id}:` and `restore` puts them back.

Every item moves in one Lua script (`compaction_scripts.py`), so killing a compaction at any point leaves a
cache nautilus loads cleanly; running it again continues where it stopped. Each Redis call is bounded by
`call_timeout` and the whole run by `time_budget` (what is left over is moved at the next start).

Needs a `redis.asyncio.Redis` with `decode_responses=False` (event lists are binary). Never imports nautilus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from supervisor.cache_history import (
    HistoryDecodeError,
    OrderRecord,
    PositionRecord,
    read_account,
    read_order,
    read_position,
)
from supervisor.cache_keys import (
    ORDER_HASH_INDEXES,
    ORDER_SET_INDEXES,
    POSITION_SET_INDEXES,
    TraderKeys,
    position_archive_id,
)
from supervisor.compaction_plan import OrderIndex, Plan, account_cut, plan_compaction
from supervisor.compaction_scripts import (
    ARCHIVE_ACCOUNT_EVENTS,
    ARCHIVE_ORDERS,
    ARCHIVE_POSITIONS,
    READ_LISTS,
    RELEASE_LOCK,
    RESTORE_ACCOUNT_EVENTS,
    RESTORE_ORDER,
    RESTORE_POSITION,
    digest,
)
from supervisor.config.schema import CacheCompactionSpec

log = logging.getLogger(__name__)

DEFAULT_KEEP_CLOSED = 20
DEFAULT_KEEP_ACCOUNT_EVENTS = 20
# Closed orders younger than this stay: Binance reports the last 7 days of orders and trades at reconciliation
# (allOrders/userTrades without startTime), and nautilus 1.231 turns a reported order missing from its cache
# into an EXTERNAL order with its fills. One day of margin for clock skew and late restarts.
DEFAULT_VENUE_WINDOW = 8 * 86_400.0
DEFAULT_TIME_BUDGET = 10.0
DEFAULT_CALL_TIMEOUT = 2.0
DEFAULT_BATCH = 200  # items per pipelined round trip
_ACCOUNT_CHUNK = 5_000  # account events per script (bounds how long one script blocks Redis)
_SCAN_COUNT = 5_000  # as nautilus scans

_T = TypeVar("_T")
_R = TypeVar("_R")


class CompactionError(Exception):
    """Compaction or restore could not talk to Redis in time, or found the archive unusable."""

    def __init__(self, trader_id: str, message: str) -> None:
        super().__init__(f"{trader_id}: {message}")
        self.trader_id = trader_id


class CompactionBusy(CompactionError):
    """Another compaction or restore of the same trader holds the lock."""


# A node's `cache_compaction:` section of fleet.yaml.
CompactionPolicy = CacheCompactionSpec


@dataclass(frozen=True, kw_only=True)
class CompactionResult:
    trader_id: str
    orders_seen: int
    positions_seen: int
    account_events_seen: int
    orders_archived: int
    positions_archived: int
    account_events_archived: int
    kept: Mapping[str, int]  # why items stayed (compaction_plan reasons) -> count
    skipped: Mapping[str, int]  # items left alone: unreadable, unknown key shape, changed meanwhile, ...
    complete: bool  # False: the time budget ran out; the next run continues
    duration: float  # seconds

    def summary(self) -> str:
        return (
            f"{self.trader_id}: archived {self.positions_archived}/{self.positions_seen} positions, "
            f"{self.orders_archived}/{self.orders_seen} orders, "
            f"{self.account_events_archived}/{self.account_events_seen} account events "
            f"in {self.duration:.3f}s"
            + ("" if self.complete else " (time budget reached; continues next run)")
        )


@dataclass(frozen=True, kw_only=True)
class ArchivedItem:
    kind: Literal["order", "position"]
    archive_id: str  # what `restore` takes: the client order id, or `{position_id}@{ts_opened}`
    item_id: str  # client order id or position id
    instrument_id: str
    strategy_id: str
    closed_ns: int
    archived_ns: int
    events: int


@dataclass(frozen=True, kw_only=True)
class ArchiveSummary:
    trader_id: str
    orders: int
    positions: int
    account_events: Mapping[str, int]  # account id -> archived events


@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    trader_id: str
    orders: int = 0
    positions: int = 0
    account_events: int = 0
    # Items that could not go back: "missing" (not in the archive), "conflict" (the live key exists, e.g. a
    # NETTING position id that is in use again).
    refused: Mapping[str, str] = field(default_factory=dict)


# -- compaction ---------------------------------------------------------------------------------------


async def compact_trader(
    redis: aioredis.Redis,
    trader_id: str,
    *,
    keep_closed: int = DEFAULT_KEEP_CLOSED,
    venue_window: float = DEFAULT_VENUE_WINDOW,
    keep_account_events: int = DEFAULT_KEEP_ACCOUNT_EVENTS,
    time_budget: float = DEFAULT_TIME_BUDGET,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    batch_size: int = DEFAULT_BATCH,
    clock: Callable[[], float] = time.monotonic,
    wall_clock_ns: Callable[[], int] = time.time_ns,
) -> CompactionResult:
    """Archive the trader's closed history beyond the most recent `keep_closed` positions and orders.

    Closed orders younger than `venue_window` seconds stay too (the venue still reports them at
    reconciliation), and so does everything open or linked to what stays (see `compaction_plan`).

    Call it while the trader's node is not running. Raises CompactionBusy if another compaction or restore of
    this trader runs, CompactionError if Redis fails or does not answer within `call_timeout`; what was moved
    until then is consistent and stays moved. `batch_size` items go in one script call (one round trip).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    started = clock()
    run = _Run(
        redis,
        TraderKeys(trader_id),
        call_timeout,
        deadline=started + time_budget,
        clock=clock,
        batch_size=batch_size,
    )
    async with run.locked(ttl=time_budget + 4 * call_timeout + 5):
        await run.compact(
            keep_closed=keep_closed,
            window_start_ns=wall_clock_ns() - int(venue_window * 1e9) if venue_window > 0 else 0,
            keep_account_events=keep_account_events,
        )
    result = CompactionResult(
        trader_id=trader_id,
        orders_seen=run.orders_seen,
        positions_seen=run.positions_seen,
        account_events_seen=run.account_events_seen,
        orders_archived=run.moved["orders"],
        positions_archived=run.moved["positions"],
        account_events_archived=run.moved["account_events"],
        kept=dict(run.kept),
        skipped=dict(run.skipped),
        complete=not run.out_of_time,
        duration=clock() - started,
    )
    log.info("cache compaction %s", result.summary())
    return result


async def compact_with_policy(
    redis: aioredis.Redis,
    trader_id: str,
    policy: CompactionPolicy,
    *,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> CompactionResult:
    """`compact_trader` with a node's `cache_compaction:` settings (the caller checks `policy.enabled`)."""
    return await compact_trader(
        redis,
        trader_id,
        keep_closed=policy.keep_closed,
        venue_window=policy.venue_window,
        keep_account_events=policy.keep_account_events,
        time_budget=policy.time_budget,
        call_timeout=call_timeout,
    )


@dataclass
class _Item:
    key: str
    digest: str
    events: int


class _Run:
    """One compaction or restore of one trader: its Redis calls, bounds and counters."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: TraderKeys,
        call_timeout: float,
        *,
        deadline: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise CompactionError(keys.trader_id, "needs a Redis client with decode_responses=False")
        self.redis = redis
        self.keys = keys
        self.call_timeout = call_timeout
        self.batch = batch_size
        self.deadline = deadline
        self.clock = clock
        self.out_of_time = False
        self.orders_seen = 0
        self.positions_seen = 0
        self.account_events_seen = 0
        self.moved = {"orders": 0, "positions": 0, "account_events": 0}
        self.kept: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self._shas: dict[str, str] = {}

    # -- bounded Redis calls ---------------------------------------------------------------------------

    async def call(self, what: str, awaitable: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self.call_timeout):
                return await awaitable
        except TimeoutError as exc:
            raise CompactionError(
                self.keys.trader_id, f"Redis did not answer {what} within {self.call_timeout}s"
            ) from exc
        except RedisError as exc:
            raise CompactionError(self.keys.trader_id, f"Redis failed {what}: {exc}") from exc

    def time_left(self) -> bool:
        if self.clock() >= self.deadline:
            self.out_of_time = True
        return not self.out_of_time

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    @asynccontextmanager
    async def locked(self, *, ttl: float) -> AsyncIterator[None]:
        token = secrets.token_hex(16)
        got = await self.call("SET lock", self.redis.set(self.keys.lock, token, nx=True, px=int(ttl * 1000)))
        if not got:
            raise CompactionBusy(self.keys.trader_id, "another compaction or restore holds the lock")
        try:
            yield
        finally:
            # Shielded so that a cancelled run still frees its lock. If Redis is gone the lock expires after
            # `ttl`; the error that ended the run is the one to report, so this one is only logged.
            try:
                await asyncio.shield(
                    self.call("release lock", self.eval_one(RELEASE_LOCK, [self.keys.lock], [token]))
                )
            except CompactionError as exc:
                log.warning(
                    "cache compaction %s: lock not released (expires in %.0fs): %s",
                    self.keys.trader_id,
                    ttl,
                    exc,
                )

    async def scan(self, pattern: str) -> list[str]:
        found: list[str] = []
        cursor = 0
        while True:
            cursor, batch = await self.call(
                f"SCAN {pattern}", self.redis.scan(cursor, match=pattern, count=_SCAN_COUNT)
            )
            for raw in batch:
                try:
                    found.append(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
                except UnicodeDecodeError:
                    self.skip("unknown_key")
            if cursor == 0:
                return found

    async def read_lists(self, keys: Sequence[str]) -> AsyncIterator[tuple[str, list[bytes] | None]]:
        """Each key's list in batches; None for a key that is not a list (another shape: left alone)."""
        for start in range(0, len(keys), self.batch):
            batch = keys[start : start + self.batch]
            for key, value in zip(batch, await self.read_batch(batch), strict=True):
                yield key, value
            await asyncio.sleep(0)  # decoding is CPU work: let the daemon's other tasks run between batches

    async def read_batch(self, keys: Sequence[str]) -> list[list[bytes] | None]:
        # One script call for many keys: far cheaper to send and parse than one LRANGE per key.
        results = await self.eval_one(READ_LISTS, keys, [])
        return [list(value) if isinstance(value, list) else None for value in results]

    async def _sha(self, source: str) -> str:
        sha = self._shas.get(source)
        if sha is None:
            sha = str(await self.call("SCRIPT LOAD", self.redis.script_load(source)))
            self._shas[source] = sha
        return sha

    async def eval_status(
        self, source: str, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> list[str]:
        return _texts(await self.eval_one(source, keys, args))

    async def eval_one(self, source: str, keys: Sequence[str], args: Sequence[str | bytes | int]) -> Any:
        return (await self.eval_many(source, [(keys, args)]))[0]

    async def eval_many(
        self, source: str, calls: Sequence[tuple[Sequence[str], Sequence[str | bytes | int]]]
    ) -> list[Any]:
        """Run a script once per call in one pipelined round trip (each run atomic on its own)."""
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for _ in range(2):  # once more if the script cache was flushed under us
            sha = await self._sha(source)
            pipe = self.redis.pipeline(transaction=False)
            for i in pending:
                keys, args = calls[i]
                pipe.evalsha(sha, len(keys), *keys, *args)
            answers = await self.call("EVALSHA batch", pipe.execute(raise_on_error=False))
            retry = []
            for i, answer in zip(pending, answers, strict=True):
                if isinstance(answer, NoScriptError):
                    retry.append(i)
                elif isinstance(answer, Exception):
                    raise CompactionError(self.keys.trader_id, f"archive script failed: {answer}")
                else:
                    results[i] = answer
            if not retry:
                return results
            self._shas.pop(source, None)
            pending = retry
        raise CompactionError(self.keys.trader_id, "Redis keeps losing the archive scripts")

    # -- the compaction --------------------------------------------------------------------------------

    async def compact(self, *, keep_closed: int, window_start_ns: int, keep_account_events: int) -> None:
        index = await self.read_index()
        orders, order_items, bad_orders = await self.read_orders()
        positions, position_items, bad_positions = await self.read_positions()
        if not self.time_left():
            return
        plan = plan_compaction(
            orders=orders,
            positions=positions,
            index=index,
            unreadable_orders=bad_orders,
            unreadable_positions=bad_positions,
            keep_closed_positions=keep_closed,
            keep_closed_orders=keep_closed,
            venue_window_start_ns=window_start_ns,
        )
        self.kept = dict(plan.kept)
        await self.archive_positions(plan, positions, position_items)
        await self.archive_orders(plan, orders, order_items)
        await self.archive_accounts(keep_account_events)

    async def read_index(self) -> OrderIndex:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for name in (
            "index:orders_open",
            "index:orders_closed",
            "index:orders_inflight",
            "index:orders_emulated",
            "index:positions_open",
            "index:positions_closed",
        ):
            pipe.smembers(k.index(name))
        pipe.hgetall(k.index("index:order_position"))
        answers = await self.call("index read", pipe.execute(raise_on_error=False))
        for answer in answers:
            if isinstance(answer, Exception):
                # An index of another type: nautilus could not use it either; moving nothing is safe.
                raise CompactionError(k.trader_id, f"cannot read nautilus' index: {answer}")
        sets = [frozenset(m.decode() for m in members) for members in answers[:6]]
        return OrderIndex(
            orders_open=sets[0],
            orders_closed=sets[1],
            orders_inflight=sets[2],
            orders_emulated=sets[3],
            positions_open=sets[4],
            positions_closed=sets[5],
            order_position={a.decode(): b.decode() for a, b in answers[6].items()},
        )

    async def read_orders(self) -> tuple[dict[str, OrderRecord], dict[str, _Item], set[str]]:
        records, items, unreadable, seen = await self._read_items(
            "order", self.keys.orders_pattern, self.keys.order_id, read_order
        )
        self.orders_seen += seen
        return records, items, unreadable

    async def read_positions(self) -> tuple[dict[str, PositionRecord], dict[str, _Item], set[str]]:
        records, items, unreadable, seen = await self._read_items(
            "position", self.keys.positions_pattern, self.keys.position_id, read_position
        )
        self.positions_seen += seen
        return records, items, unreadable

    async def _read_items(
        self,
        kind: str,
        pattern: str,
        parse_id: Callable[[str], str | None],
        read: Callable[[str, list[bytes]], _R],
    ) -> tuple[dict[str, _R], dict[str, _Item], set[str], int]:
        """Every order (or position) list of the trader, decoded; unreadable ones are left alone."""
        records: dict[str, _R] = {}
        items: dict[str, _Item] = {}
        unreadable: set[str] = set()
        seen = 0
        keys = await self._item_keys(pattern, parse_id)
        async for key, events in self.read_lists(keys):
            item_id = parse_id(key)
            assert item_id is not None
            if not events:
                self.skip("unknown_key" if events is None else "vanished")
                continue
            seen += 1
            try:
                records[item_id] = read(item_id, events)
            except HistoryDecodeError as exc:
                log.warning(
                    "cache compaction %s: leaving unreadable %s %s (%s)", self.keys.trader_id, kind, key, exc
                )
                self.skip("unreadable")
                unreadable.add(item_id)
                continue
            items[item_id] = _Item(key=key, digest=digest(events), events=len(events))
        return records, items, unreadable, seen

    async def _item_keys(self, pattern: str, parse: Callable[[str], str | None]) -> list[str]:
        keys = []
        for key in await self.scan(pattern):
            if parse(key) is None:
                self.skip("unknown_key")
            else:
                keys.append(key)
        return sorted(keys)

    async def archive_positions(
        self, plan: Plan, records: Mapping[str, PositionRecord], items: Mapping[str, _Item]
    ) -> None:
        k = self.keys
        fixed = [k.archived_positions, k.archived_positions_meta, *(k.index(n) for n in POSITION_SET_INDEXES)]
        for start in range(0, len(plan.positions), self.batch):
            if not self.time_left():
                return
            batch = plan.positions[start : start + self.batch]
            args: list[str | bytes | int] = [str(time.time_ns())]
            for pid in batch:
                record = records[pid]
                info = {
                    "kind": "position",
                    "id": pid,
                    "instrument_id": record.instrument_id,
                    "strategy_id": record.strategy_id,
                    "opened_ns": str(record.ts_opened),
                    "closed_ns": str(record.ts_last),
                    "events": record.events,
                }
                aid = position_archive_id(pid, record.ts_opened)
                args += [aid, pid, items[pid].digest, json.dumps(info)]
            statuses = await self.eval_status(
                ARCHIVE_POSITIONS, [*fixed, *(items[p].key for p in batch)], args
            )
            self._count(statuses, [(pid,) for pid in batch], "positions")

    async def archive_orders(
        self, plan: Plan, records: Mapping[str, OrderRecord], items: Mapping[str, _Item]
    ) -> None:
        k = self.keys
        fixed = [
            k.archived_orders,
            k.archived_orders_meta,
            *(k.index(n) for n in ORDER_SET_INDEXES),
            *(k.index(n) for n in ORDER_HASH_INDEXES),
        ]
        groups = list(plan.order_groups)
        start = 0
        while start < len(groups):
            if not self.time_left():
                return
            batch: list[tuple[str, ...]] = []
            size = 0
            while start < len(groups) and size < self.batch:
                batch.append(groups[start])
                size += len(groups[start])
                start += 1
            args: list[str | bytes | int] = [str(time.time_ns())]
            for group in batch:
                args.append(len(group))
                for cid in group:
                    record = records[cid]
                    info = {
                        "kind": "order",
                        "id": cid,
                        "instrument_id": record.instrument_id,
                        "strategy_id": record.strategy_id,
                        "closed_ns": str(record.ts_last),
                        "events": record.events,
                    }
                    args += [cid, items[cid].digest, json.dumps(info)]
            live = [items[cid].key for group in batch for cid in group]
            statuses = await self.eval_status(ARCHIVE_ORDERS, [*fixed, *live], args)
            self._count(statuses, batch, "orders")

    def _count(self, statuses: list[str], groups: Sequence[tuple[str, ...]], what: str) -> None:
        if len(statuses) != len(groups) or statuses[0].startswith("wrongtype:"):
            # The up-front type checks of the archive and index keys failed: nothing was moved.
            raise CompactionError(self.keys.trader_id, f"archive refused the batch: {statuses[0]}")
        for status, group in zip(statuses, groups, strict=True):
            if status == "ok":
                self.moved[what] += len(group)
            else:
                reason = status.partition(":")[0]
                log.warning(
                    "cache compaction %s: left %s %s in place (%s)", self.keys.trader_id, what, group, status
                )
                self.skip(reason, len(group))

    async def archive_accounts(self, keep_events: int) -> None:
        for key in sorted(await self.scan(self.keys.accounts_pattern)):
            account_id = self.keys.account_id(key)
            if account_id is None:
                self.skip("unknown_key")
                continue
            if not self.time_left():
                return
            (events,) = await self.read_batch([key])
            if not events:
                self.skip("unknown_key" if events is None else "vanished")
                continue
            self.account_events_seen += len(events)
            try:
                record = read_account(account_id, events)
            except HistoryDecodeError as exc:
                log.warning(
                    "cache compaction %s: leaving unreadable account %s (%s)", self.keys.trader_id, key, exc
                )
                self.skip("unreadable")
                continue
            remaining = account_cut(record, keep_events=keep_events)
            archive_key = self.keys.archived_account(account_id)
            while remaining > 0 and self.time_left():
                take = min(remaining, _ACCOUNT_CHUNK)
                end = take + 1
                args: list[str | bytes | int] = [len(events), end, digest(events[:end])]
                answer = await self.eval_status(ARCHIVE_ACCOUNT_EVENTS, [key, archive_key], args)
                if answer[0] != "ok":
                    log.warning("cache compaction %s: account %s changed meanwhile", self.keys.trader_id, key)
                    self.skip(answer[0])
                    break
                self.moved["account_events"] += take
                events = [events[0], *events[end:]]
                remaining -= take

    # -- restoring -------------------------------------------------------------------------------------

    async def restore(
        self, order_ids: Sequence[str], position_ids: Sequence[str], account_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, str]]:
        k = self.keys
        counts = {"orders": 0, "positions": 0, "account_events": 0}
        refused: dict[str, str] = {}
        order_fixed = [
            k.archived_orders,
            k.archived_orders_meta,
            *(k.index(n) for n in ORDER_SET_INDEXES),
            *(k.index(n) for n in ORDER_HASH_INDEXES),
        ]
        order_calls = [([*order_fixed, k.order(cid)], [cid]) for cid in order_ids]
        position_fixed = [
            k.archived_positions,
            k.archived_positions_meta,
            *(k.index(n) for n in POSITION_SET_INDEXES),
        ]
        # The archive id is `{position_id}@{ts_opened}`; the position id itself may hold an '@'.
        position_calls = [
            (
                [*position_fixed, k.position(aid.rpartition("@")[0] or aid)],
                [aid, aid.rpartition("@")[0] or aid],
            )
            for aid in position_ids
        ]
        # Orders before positions: an interrupted restore never leaves a position without its orders.
        for what, source, ids, calls in (
            ("orders", RESTORE_ORDER, order_ids, order_calls),
            ("positions", RESTORE_POSITION, position_ids, position_calls),
        ):
            for start in range(0, len(calls), self.batch):
                answers = await self.eval_many(source, calls[start : start + self.batch])
                for item_id, raw in zip(ids[start : start + self.batch], answers, strict=True):
                    answer = _texts(raw)
                    if answer[0] == "ok":
                        counts[what] += 1
                    else:
                        refused[item_id] = answer[0]
        for account_id in account_ids:
            keys = [k.account(account_id), k.archived_account(account_id)]
            answer = await self.eval_status(RESTORE_ACCOUNT_EVENTS, keys, [])
            if answer[0] == "ok":
                counts["account_events"] += int(answer[1])
            else:
                refused[f"account:{account_id}"] = answer[0]
        return counts, refused


# -- listing and restoring ----------------------------------------------------------------------------


async def archive_summary(
    redis: aioredis.Redis, trader_id: str, *, call_timeout: float = DEFAULT_CALL_TIMEOUT
) -> ArchiveSummary:
    run = _Run(redis, TraderKeys(trader_id), call_timeout)
    k = run.keys
    orders = await run.call("HLEN", redis.hlen(k.archived_orders))
    positions = await run.call("HLEN", redis.hlen(k.archived_positions))
    accounts: dict[str, int] = {}
    for key in await run.scan(f"{k.archive_prefix}accounts:*"):
        accounts[key[len(f"{k.archive_prefix}accounts:") :]] = await run.call("LLEN", redis.llen(key))
    return ArchiveSummary(trader_id=trader_id, orders=orders, positions=positions, account_events=accounts)


async def list_archived(
    redis: aioredis.Redis,
    trader_id: str,
    *,
    kind: Literal["order", "position"] | None = None,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> list[ArchivedItem]:
    """Every archived order and/or position of the trader, oldest close first."""
    run = _Run(redis, TraderKeys(trader_id), call_timeout)
    k = run.keys
    hashes = {"order": k.archived_orders_meta, "position": k.archived_positions_meta}
    items: list[ArchivedItem] = []
    for item_kind, meta_key in hashes.items():
        if kind is not None and kind != item_kind:
            continue
        cursor = 0
        while True:
            cursor, batch = await run.call("HSCAN", redis.hscan(meta_key, cursor, count=_SCAN_COUNT))
            if not isinstance(batch, dict):
                raise CompactionError(trader_id, "HSCAN answered without values")
            for aid, raw in batch.items():
                meta = json.loads(raw)
                info = meta["info"]
                items.append(
                    ArchivedItem(
                        kind="order" if item_kind == "order" else "position",
                        archive_id=aid.decode() if isinstance(aid, bytes) else aid,
                        item_id=info["id"],
                        instrument_id=info["instrument_id"],
                        strategy_id=info["strategy_id"],
                        closed_ns=int(info["closed_ns"]),
                        archived_ns=int(meta["archived_ns"]),
                        events=int(info["events"]),
                    )
                )
            if cursor == 0:
                break
    items.sort(key=lambda i: (i.closed_ns, i.archive_id))
    return items


async def restore(
    redis: aioredis.Redis,
    trader_id: str,
    *,
    orders: Iterable[str] = (),
    positions: Iterable[str] = (),
    accounts: Iterable[str] = (),
    everything: bool = False,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> RestoreResult:
    """Put archived items back where nautilus loads them, byte for byte, with their index entries.

    `orders` are client order ids, `positions` archive ids (`{position_id}@{ts_opened}`, see `list_archived`),
    `accounts` account ids; `everything` restores the whole archive. Orders go back before positions, so an
    interrupted restore never leaves a position without its orders. Takes effect at the node's next start; run
    it while the node is down, or its next compaction may archive the items again.
    """
    run = _Run(redis, TraderKeys(trader_id), call_timeout)
    order_ids, position_ids, account_ids = list(orders), list(positions), list(accounts)
    if everything:
        listed = await list_archived(redis, trader_id, call_timeout=call_timeout)
        order_ids = [i.archive_id for i in listed if i.kind == "order"]
        # Newest first: of several archived round trips of one NETTING position id, the latest goes back.
        position_ids = [i.archive_id for i in reversed(listed) if i.kind == "position"]
        account_ids = list(
            (await archive_summary(redis, trader_id, call_timeout=call_timeout)).account_events
        )
    async with run.locked(ttl=60.0):
        counts, refused = await run.restore(order_ids, position_ids, account_ids)
    result = RestoreResult(
        trader_id=trader_id,
        orders=counts["orders"],
        positions=counts["positions"],
        account_events=counts["account_events"],
        refused=refused,
    )
    log.info(
        "cache restore %s: %d orders, %d positions, %d account events back; %d refused",
        trader_id,
        result.orders,
        result.positions,
        result.account_events,
        len(refused),
    )
    return result


def _texts(answer: Any) -> list[str]:
    """A script's status reply as text."""
    items = answer if isinstance(answer, list) else [answer]
    return [a.decode() if isinstance(a, bytes) else str(a) for a in items]
