"""What the MQTT publisher has still to send: the latest retained payload per topic, a bounded event queue.

Observers write here synchronously (they must not block); the connection's sender drains it. Retained topics
coalesce (only the latest value matters, and all of them are re-sent after a reconnect, so the broker never
keeps a stale state); events are a stream, kept in order up to `max_events`, the oldest dropped and counted.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    def __init__(self, *, max_events: int) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        self._max_events = max_events
        # b"" is a cleared topic: publishing an empty retained payload deletes the broker's copy. Clears are
        # kept (and re-sent after a reconnect) so a broker restored from an old snapshot forgets them too.
        self._retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}  # an ordered set of retained topics not yet sent
        self._events: collections.deque[Outgoing] = collections.deque()
        self._dropped = 0
        self.wakeup = asyncio.Event()

    @property
    def queued_events(self) -> int:
        return len(self._events)

    @property
    def dropped_events(self) -> int:
        return self._dropped

    @property
    def pending(self) -> bool:
        return bool(self._dirty or self._events)

    def retained(self, topic: str) -> bytes | None:
        return self._retained.get(topic)

    def put_retained(self, topic: str, payload: bytes) -> None:
        self._retained[topic] = payload
        self._dirty[topic] = None
        self.wakeup.set()

    def clear_retained(self, topic: str) -> None:
        self.put_retained(topic, b"")

    def put_event(self, topic: str, payload: bytes) -> None:
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self._dropped += 1
        self._events.append(Outgoing(topic, payload, retain=False))
        self.wakeup.set()

    def resend_all(self) -> None:
        """After a (re)connect: the broker may have lost or kept stale copies of everything."""
        for topic in self._retained:
            self._dirty[topic] = None
        if self._retained:
            self.wakeup.set()

    def take(self) -> Outgoing | None:
        """The next message: retained states first (what a new subscriber sees), then events."""
        if self._dirty:
            topic = next(iter(self._dirty))
            del self._dirty[topic]
            return Outgoing(topic, self._retained[topic], retain=True)
        if self._events:
            return self._events.popleft()
        return None

    def take_topic(self, topic: str) -> Outgoing | None:
        """One retained topic ahead of the rest (the birth goes out before anything else)."""
        if topic not in self._dirty:
            return None
        del self._dirty[topic]
        return Outgoing(topic, self._retained[topic], retain=True)

    def give_back(self, message: Outgoing) -> None:
        """A send that did not complete: it goes out again on the next connection."""
        if message.retain:
            # The stored payload is the latest; a newer value may have replaced the one that failed.
            self._dirty[message.topic] = None
            return
        if len(self._events) >= self._max_events:
            # The queue filled up meanwhile: this one is the oldest, so it is the one dropped.
            self._dropped += 1
            return
        self._events.appendleft(message)
