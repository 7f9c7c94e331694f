"""Durable writes in order, and actions that must wait for them (write-ahead).

nautilus calls strategy hooks synchronously, but a durable write is a network round trip. A hook that changes
state and then submits an order must not let the order reach the venue before the state that caused it is in
Redis: after a kill -9 the restarted strategy would not know why it holds that position. The journal queues
writes and actions on one task; an action runs only after every write queued before it was acknowledged.

One failed write (after a short retry) breaks the journal for good: later writes fail at once, queued actions
are abandoned (their `abandon` callback runs, e.g. to deny the order) and `on_failure` reports it. A strategy
whose state cannot be made durable must stop trading, not carry on with state that would be lost.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

from recovery.hub_api import DurableStore
from recovery.strategy_errors import StateWriteError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Write:
    key: str
    value: bytes | None  # None deletes
    done: asyncio.Future[None]


@dataclass(slots=True)
class _Action:
    run: Callable[[], None]
    abandon: Callable[[BaseException], None]


class DurableJournal:
    def __init__(
        self,
        store: DurableStore,
        *,
        name: str,
        on_failure: Callable[[StateWriteError], None],
        attempts: int = 3,
        retry_delay: float = 0.05,
        close_grace: float = 2.0,
    ) -> None:
        self._store = store
        self._name = name
        self._on_failure = on_failure
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._close_grace = close_grace
        self._queue: collections.deque[_Write | _Action] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = False
        self.failure: StateWriteError | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"recovery.journal[{self._name}]"
            )

    @property
    def busy(self) -> bool:
        """True while a write is queued or in flight (an action now would overtake it)."""
        return self._in_flight or any(isinstance(item, _Write) for item in self._queue)

    def write(self, key: str, value: bytes | None) -> asyncio.Future[None]:
        """Queue a write (None: delete); the future resolves once the store acknowledged it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Callers that do not await (a hook changing state) learn of a failure through on_failure.
        done.add_done_callback(_retrieve)
        if self.failure is not None:
            done.set_exception(self.failure)
            return done
        self._enqueue(_Write(key, value, done))
        return done

    def after_writes(self, run: Callable[[], None], abandon: Callable[[BaseException], None]) -> None:
        """Run `run` once every write queued so far is acknowledged; at once when none is pending."""
        if self.failure is not None:
            abandon(self.failure)
        elif not self._queue and not self._in_flight:
            run()
        else:
            self._enqueue(_Action(run, abandon))

    async def drain(self) -> None:
        """Wait until everything queued so far has been written (or abandoned)."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Let queued writes finish (bounded by `close_grace`), then stop the task."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(self._close_grace):
                await self._idle.wait()
        except TimeoutError:
            log.warning("journal %s: %d item(s) not written at close", self._name, len(self._queue))
        task.cancel()
        await asyncio.wait([task])  # never raises the task's CancelledError; our own cancellation propagates

    def cancel(self) -> None:
        """Stop without waiting (the loop is going away); queued writes are not made."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _enqueue(self, item: _Write | _Action) -> None:
        self._queue.append(item)
        self._idle.clear()
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue.popleft()
            if isinstance(item, _Action):
                self._run_action(item)
                continue
            self._in_flight = True
            try:
                await self._write(item)
            finally:
                self._in_flight = False

    async def _write(self, item: _Write) -> None:
        if self.failure is not None:
            _settle(item.done, self.failure)
            return
        last: BaseException | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                if item.value is None:
                    await self._store.delete(item.key)
                else:
                    await self._store.set(item.key, item.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store's own errors (redis, timeout): retried, then fatal
                last = exc
                log.warning(
                    "journal %s: write of %s failed (attempt %d): %r", self._name, item.key, attempt, exc
                )
                if attempt < self._attempts:
                    await asyncio.sleep(self._retry_delay * attempt)
                continue
            if not item.done.done():
                item.done.set_result(None)
            return
        self._fail(
            StateWriteError(f"durable write of {item.key!r} failed: {last!r}", detail={"key": item.key})
        )
        _settle(item.done, self.failure)

    def _run_action(self, item: _Action) -> None:
        if self.failure is not None:
            item.abandon(self.failure)
            return
        try:
            item.run()
        except Exception:  # an action is a strategy call; its failure must not stop later writes
            log.exception("journal %s: deferred action failed", self._name)

    def _fail(self, error: StateWriteError) -> None:
        self.failure = error
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, _Write):
                _settle(item.done, error)
            else:
                item.abandon(error)
        self._on_failure(error)


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
