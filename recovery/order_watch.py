"""Await an order's status from the strategy's own order events (no polling).

The handler is subscribed to `events.order.{strategy_id}` on the node's message bus; it runs on the loop
thread and reads the order's status from the cache (updated before the event is published).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

ACCEPTED_OR_BEYOND = frozenset(
    {"ACCEPTED", "TRIGGERED", "PARTIALLY_FILLED", "FILLED", "PENDING_UPDATE", "PENDING_CANCEL"}
)
ENDED = frozenset({"REJECTED", "DENIED", "CANCELED", "EXPIRED", "FILLED"})
SETTLED_AFTER_SUBMIT = ACCEPTED_OR_BEYOND | ENDED
SETTLED_AFTER_CANCEL = frozenset({"CANCELED", "EXPIRED", "FILLED", "REJECTED"})


class OrderWatcher:
    def __init__(self, status_of: Callable[[str], str | None]) -> None:
        self._status_of = status_of
        self._waiters: dict[str, list[tuple[frozenset[str], asyncio.Future[str]]]] = {}

    def on_order_event(self, event: object) -> None:
        """Message bus handler for `events.order.{strategy_id}`."""
        cid = str(getattr(event, "client_order_id", ""))
        waiters = self._waiters.get(cid)
        if not waiters:
            return
        status = self._status_of(cid)
        if status is None:
            return
        remaining = []
        for statuses, future in waiters:
            if future.done():
                continue
            if status in statuses:
                future.set_result(status)
            else:
                remaining.append((statuses, future))
        if remaining:
            self._waiters[cid] = remaining
        else:
            del self._waiters[cid]

    async def wait(self, client_order_id: str, statuses: frozenset[str]) -> str:
        """The order's status once it is one of `statuses` (callers bound it with `asyncio.timeout`)."""
        status = self._status_of(client_order_id)
        if status in statuses:
            assert status is not None
            return status
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(client_order_id, []).append((statuses, future))
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()
            pending = [w for w in self._waiters.get(client_order_id, []) if w[1] is not future]
            if pending:
                self._waiters[client_order_id] = pending
            else:
                self._waiters.pop(client_order_id, None)
