"""`defaults` are deep-merged into nodes: a node's partial section overrides only the keys it gives."""

from __future__ import annotations

from supervisor.config.schema import Duration, RestartSpec, WatchdogSpec

from ._util import parse

TEXT = """
    fleet: demo
    defaults:
      restart:
        backoff_initial: 1s
        backoff_max: 1m
        start_limit: {burst: 3, window: 2m}
      stop: {signal: SIGINT}
      watchdog: null
      ready_timeout: 90s
    nodes:
      - name: plain
        trader_id: A-001
        command: [run]
      - name: partial
        trader_id: B-001
        command: [run]
        restart:
          backoff_max: 5s
          start_limit: {burst: 10}
        stop: {grace: 2s}
        watchdog: {}
        ready_timeout: 5s
    """


def test_node_without_settings_takes_the_defaults() -> None:
    node = parse(TEXT).node("plain")
    assert node.restart.backoff_initial == 1.0
    assert node.restart.backoff_max == 60.0
    assert node.restart.reset_after == RestartSpec().reset_after  # not in defaults: the schema's own
    assert (node.restart.start_limit.burst, node.restart.start_limit.window) == (3, 120.0)
    assert (node.stop.signal, node.stop.grace) == ("SIGINT", 10.0)
    assert node.watchdog is None
    assert node.ready_timeout == 90.0


def test_partial_sections_override_only_their_keys() -> None:
    node = parse(TEXT).node("partial")
    assert node.restart.backoff_initial == 1.0  # from defaults
    assert node.restart.backoff_max == 5.0  # its own
    assert (node.restart.start_limit.burst, node.restart.start_limit.window) == (10, 120.0)
    assert (node.stop.signal, node.stop.grace) == ("SIGINT", 2.0)
    # defaults turn the watchdog off; this node turns it back on with the schema's timeout.
    assert node.watchdog == WatchdogSpec()
    assert node.ready_timeout == 5.0


def test_a_node_can_turn_off_what_defaults_turn_on() -> None:
    spec = parse(
        """
        fleet: demo
        defaults: {watchdog: {timeout: 3s}}
        nodes:
          - {name: a, trader_id: A-001, command: [run], watchdog: null}
          - {name: b, trader_id: B-001, command: [run]}
        """
    )
    assert spec.node("a").watchdog is None
    assert spec.node("b").watchdog == WatchdogSpec(timeout=Duration(3.0))
    # The defaults section itself stays as written.
    assert spec.defaults.watchdog == WatchdogSpec(timeout=Duration(3.0))


def test_without_defaults_the_schema_defaults_apply() -> None:
    node = parse("fleet: demo\nnodes:\n  - {name: a, trader_id: A-001, command: [run]}\n").node("a")
    assert node.restart == RestartSpec()
    assert node.watchdog == WatchdogSpec()
