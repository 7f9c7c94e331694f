from __future__ import annotations

import pytest

from supervisor.status.topics import TopicError, Topics, check_level, check_prefix, default_prefix


def test_topic_tree() -> None:
    topics = Topics(prefix=default_prefix("prod"), host="trading-1.example")
    assert topics.supervisor_state == "nautilus-fleet/prod/supervisors/trading-1.example/state"
    assert topics.node_state("alpha") == "nautilus-fleet/prod/nodes/alpha/state"
    assert topics.node_recovery("alpha") == "nautilus-fleet/prod/nodes/alpha/recovery"
    assert topics.reconciliation("TRADER-001", "binance") == "nautilus-fleet/prod/recovery/TRADER-001/binance"
    assert topics.events("alpha") == "nautilus-fleet/prod/events/alpha"


@pytest.mark.parametrize("level", ["", "a/b", "a+", "#", "x\x00"])
def test_levels_that_mqtt_would_misread_are_refused(level: str) -> None:
    with pytest.raises(TopicError):
        check_level(level, "level")


@pytest.mark.parametrize("prefix", ["", "/abs", "trailing/", "a//b", "a/+/b", "a/#"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(TopicError):
        check_prefix(prefix)


@pytest.mark.parametrize("prefix", ["fleet", "site/fleet-prod", "a/b/c"])
def test_good_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


def test_a_bad_host_name_fails_at_construction() -> None:
    with pytest.raises(TopicError):
        Topics(prefix="p", host="a/b")
