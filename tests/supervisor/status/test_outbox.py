from __future__ import annotations

from supervisor.status.outbox import Outbox, Outgoing


def _drain(outbox: Outbox) -> list[Outgoing]:
    out = []
    while (message := outbox.take()) is not None:
        out.append(message)
    return out


def test_retained_topics_coalesce_to_the_latest_and_go_before_events() -> None:
    outbox = Outbox(max_events=10)
    outbox.put_event("e", b"1")
    outbox.put_retained("s", b"old")
    outbox.put_retained("s", b"new")
    outbox.put_event("e", b"2")
    assert outbox.wakeup.is_set()
    assert _drain(outbox) == [
        Outgoing("s", b"new", retain=True),
        Outgoing("e", b"1", retain=False),
        Outgoing("e", b"2", retain=False),
    ]
    assert not outbox.pending


def test_a_full_event_queue_drops_the_oldest_and_counts() -> None:
    outbox = Outbox(max_events=2)
    for n in range(5):
        outbox.put_event("e", str(n).encode())
    assert (outbox.queued_events, outbox.dropped_events) == (2, 3)
    assert [m.payload for m in _drain(outbox)] == [b"3", b"4"]


def test_resend_all_marks_every_retained_topic_including_clears() -> None:
    outbox = Outbox(max_events=2)
    outbox.put_retained("a", b"1")
    outbox.clear_retained("b")
    _drain(outbox)
    outbox.wakeup.clear()
    outbox.resend_all()
    assert outbox.wakeup.is_set()
    assert _drain(outbox) == [Outgoing("a", b"1", retain=True), Outgoing("b", b"", retain=True)]


def test_take_topic_sends_one_topic_ahead() -> None:
    outbox = Outbox(max_events=2)
    outbox.put_retained("node", b"n")
    outbox.put_retained("birth", b"b")
    assert outbox.take_topic("birth") == Outgoing("birth", b"b", retain=True)
    assert outbox.take_topic("birth") is None
    assert _drain(outbox) == [Outgoing("node", b"n", retain=True)]


def test_a_failed_send_is_given_back() -> None:
    outbox = Outbox(max_events=2)
    outbox.put_retained("s", b"v1")
    outbox.put_event("e", b"1")
    retained = outbox.take()
    event = outbox.take()
    assert retained is not None and event is not None
    outbox.put_retained("s", b"v2")  # a newer value arrived while the send was in flight
    outbox.give_back(retained)
    outbox.give_back(event)
    assert _drain(outbox) == [Outgoing("s", b"v2", retain=True), Outgoing("e", b"1", retain=False)]


def test_a_given_back_event_is_dropped_when_the_queue_filled_meanwhile() -> None:
    outbox = Outbox(max_events=2)
    outbox.put_event("e", b"0")
    in_flight = outbox.take()
    assert in_flight is not None
    outbox.put_event("e", b"1")
    outbox.put_event("e", b"2")
    outbox.give_back(in_flight)
    assert outbox.dropped_events == 1
    assert [m.payload for m in _drain(outbox)] == [b"1", b"2"]
