"""Decoding errors: each message exactly, with file:line:column, field path, expectation and hint."""

# ruff: noqa: E501 - the expected messages are kept whole, as a user reads them

from __future__ import annotations

import pytest

from supervisor.config.errors import ConfigError, ConfigErrors

from ._util import messages, parse

# The issue's example, line for line: the value "fast" at line 14, column 20.
ISSUE_EXAMPLE = """
    fleet: demo
    venues:
      emulator: {}
    nodes:
      - name: alpha
        trader_id: A-001
        command: [run]
      - name: beta
        trader_id: B-001
        command: [run]
        stop:
          grace: 5s
        restart:
          backoff_max: fast
    """


def test_issue_example_message() -> None:
    with pytest.raises(ConfigError) as info:
        parse(ISSUE_EXAMPLE)
    err = info.value
    assert (
        err.message
        == 'fleet.yaml:14:20 nodes[1].restart.backoff_max: expected a duration like "30s", got "fast"'
    )
    assert (err.file, err.line, err.column) == ("fleet.yaml", 14, 20)
    assert err.field == "nodes[1].restart.backoff_max"
    assert err.expected == 'a duration like "30s"'
    assert err.found == '"fast"'
    assert err.hint is None
    assert str(err) == err.message
    assert err.errors == (err,)


NODE = """\
fleet: demo
nodes:
  - name: alpha
    trader_id: A-001
    command: [run]
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            "    restart: {backof_max: 5s}\n",
            'fleet.yaml:6:15 nodes[0].restart.backof_max: expected a known key, got "backof_max"; '
            'did you mean "backoff_max"?',
            id="unknown-key-suggestion",
        ),
        pytest.param(
            "    colour: blue\n",
            'fleet.yaml:6:5 nodes[0].colour: expected a known key, got "colour"; known keys: name, trader_id, '
            "venues, strategies, command, instruments, share_instruments, enabled, env, cwd, restart, stop, "
            "watchdog, ready_timeout, readiness, cache_compaction, placement, spares",
            id="unknown-key-without-close-match",
        ),
        pytest.param(
            "    ready_timeout: 30\n",
            'fleet.yaml:6:20 nodes[0].ready_timeout: expected a duration like "30s", got 30; add a unit, e.g. "30s"',
            id="bare-number-duration",
        ),
        pytest.param(
            "    ready_timeout: 1:30\n",
            'fleet.yaml:6:20 nodes[0].ready_timeout: expected a duration like "30s", got "1:30"',
            id="sexagesimal-is-not-a-duration",
        ),
        pytest.param(
            "    watchdog: off\n",
            'fleet.yaml:6:15 nodes[0].watchdog: expected a mapping or null, got "off"; write null to turn it off',
            id="yaml11-off-stays-a-string",
        ),
        pytest.param(
            "    watchdog: false\n",
            "fleet.yaml:6:15 nodes[0].watchdog: expected a mapping or null, got false; write null to turn it off",
            id="false-is-not-null",
        ),
        pytest.param(
            "    enabled: no\n",
            'fleet.yaml:6:14 nodes[0].enabled: expected true or false, got "no"',
            id="yaml11-no-is-not-a-boolean",
        ),
        pytest.param(
            "    env: {DEBUG: 1}\n",
            'fleet.yaml:6:18 nodes[0].env.DEBUG: expected a string, got 1; quote it if it is meant as text: "1"',
            id="env-value-not-a-string",
        ),
        pytest.param(
            "    env: {A: x, B: x, C: true}\n",
            'fleet.yaml:6:26 nodes[0].env.C: expected a string, got true; quote it if it is meant as text: "true"',
            id="dict-key-located-by-value",
        ),
        pytest.param(
            "    stop: {signal: SIGTREM}\n",
            'fleet.yaml:6:20 nodes[0].stop.signal: expected one of "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", '
            '"SIGUSR1", "SIGUSR2", got "SIGTREM"; did you mean "SIGTERM"?',
            id="literal-suggestion",
        ),
        pytest.param(
            "    restart: {start_limit: {burst: 0}}\n",
            "fleet.yaml:6:36 nodes[0].restart.start_limit.burst: expected an integer of at least 1, got 0",
            id="int-bound",
        ),
        pytest.param(
            "    restart: 5s\n",
            'fleet.yaml:6:14 nodes[0].restart: expected a mapping, got "5s"',
            id="mapping-expected",
        ),
        pytest.param(
            "    venues: emulator\n",
            'fleet.yaml:6:13 nodes[0].venues: expected a list of strings, got "emulator"',
            id="list-expected",
        ),
        pytest.param(
            "    instruments: [BTCUSDT-PERP.BINANCE, 5]\n",
            'fleet.yaml:6:41 nodes[0].instruments[1]: expected a string, got 5; quote it if it is meant as text: "5"',
            id="list-item",
        ),
        pytest.param(
            "    strategies: [{config: {}}]\n",
            "fleet.yaml:6:18 nodes[0].strategies[0].path: expected a string, got nothing (this key is required)",
            id="missing-required-in-list-item",
        ),
    ],
)
def test_node_field_errors(extra: str, expected: str) -> None:
    assert messages(NODE + extra) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "", ['fleet.yaml expected a mapping with at least the key "fleet", got an empty file'], id="empty"
        ),
        pytest.param(
            "- a\n",
            ['fleet.yaml:1:1 expected a mapping with at least the key "fleet", got a list'],
            id="list",
        ),
        pytest.param(
            "nodes: []\n",
            [
                'fleet.yaml:1:1 fleet: expected a name of 1 to 48 lowercase letters, digits, "_" or "-", starting with '
                "a letter or digit, got nothing (this key is required)"
            ],
            id="missing-fleet",
        ),
        pytest.param(
            "fleet: Demo\n",
            [
                'fleet.yaml:1:8 fleet: expected a name of 1 to 48 lowercase letters, digits, "_" or "-", starting '
                'with a letter or digit, got "Demo"'
            ],
            id="fleet-pattern",
        ),
        pytest.param(
            "fleet: demo\ncontrol: {mode: 0600}\n",
            [
                'fleet.yaml:2:17 control.mode: expected an integer, got "0600"; write 0o600 for an octal number '
                "(a leading 0 does not make one)"
            ],
            id="octal-trap",
        ),
        pytest.param(
            "fleet: demo\nmqtt: {port: 70000}\n",
            ["fleet.yaml:2:14 mqtt.port: expected an integer from 1 to 65535, got 70000"],
            id="port-range",
        ),
        pytest.param(
            "fleet: demo\nmqtt: {port: true}\n",
            ["fleet.yaml:2:14 mqtt.port: expected an integer from 1 to 65535, got true"],
            id="bool-is-not-int",
        ),
        pytest.param(
            "fleet: demo\nvenues:\n  emu: {type: kraken}\n",
            ['fleet.yaml:3:15 venues.emu.type: expected "binance_usdm", got "kraken"'],
            id="venue-type",
        ),
        pytest.param(
            "fleet: demo\nnodes: {alpha: {}}\n",
            ["fleet.yaml:2:8 nodes: expected a list, got a mapping"],
            id="nodes-not-a-list",
        ),
        pytest.param(
            "fleet: demo\nnodes:\n  - name: alpha\n",
            ["fleet.yaml:3:5 nodes[0].trader_id: expected a string, got nothing (this key is required)"],
            id="missing-trader-id",
        ),
    ],
)
def test_document_level_errors(text: str, expected: list[str]) -> None:
    assert messages(text) == expected


def test_all_problems_are_reported_in_file_order() -> None:
    text = """
        fleet: demo
        mqtt: {prot: 1883}
        venues:
          a: {type: x}
          b: {base_url: http://h}
        nodes:
          - name: alpha
            trader_id: A-001
            command: [run]
            restart: {backoff_max: fast, backoff_initial: slow}
          - name: Beta
            trader_id: B-001
            command: [run]
        """
    with pytest.raises(ConfigErrors) as info:
        parse(text)
    assert [e.message for e in info.value.errors] == [
        'fleet.yaml:2:8 mqtt.prot: expected a known key, got "prot"; did you mean "port"?',
        'fleet.yaml:4:13 venues.a.type: expected "binance_usdm", got "x"',
        'fleet.yaml:5:7 venues.b.base_url: expected a known key, got "base_url"; did you mean "base_url_ws"?',
        'fleet.yaml:10:28 nodes[0].restart.backoff_max: expected a duration like "30s", got "fast"',
        'fleet.yaml:10:51 nodes[0].restart.backoff_initial: expected a duration like "30s", got "slow"',
        'fleet.yaml:11:11 nodes[1].name: expected a name of 1 to 48 lowercase letters, digits, "_" or "-", '
        'starting with a letter or digit, got "Beta"',
    ]
    # The exception itself carries the first problem's data and shows them all.
    assert info.value.line == 2
    assert str(info.value).count("\n") == 5


def test_a_bad_value_in_a_required_key_is_reported_once() -> None:
    assert messages(NODE.replace("trader_id: A-001", "trader_id: [A, 1]")) == [
        "fleet.yaml:4:16 nodes[0].trader_id: expected a string, got a list"
    ]


def test_error_in_defaults_is_reported_once_where_written() -> None:
    text = """
        fleet: demo
        defaults:
          restart: {backof_max: 5s}
          stop: {grace: soon}
        nodes:
          - {name: a, trader_id: A-001, command: [run]}
          - {name: b, trader_id: B-001, command: [run]}
        """
    assert messages(text) == [
        'fleet.yaml:3:13 defaults.restart.backof_max: expected a known key, got "backof_max"; '
        'did you mean "backoff_max"?',
        'fleet.yaml:4:17 defaults.stop.grace: expected a duration like "30s", got "soon"',
    ]


def test_duplicate_keys_fail_the_load() -> None:
    text = NODE + "    command: [other]\n"
    assert messages(text) == [
        'fleet.yaml:6:5 nodes[0].command: expected each key once in a mapping, got "command" again; '
        "first given at line 5, column 5"
    ]


def test_problems_after_a_missing_required_key_are_still_found() -> None:
    text = NODE.replace("command: [run]", "strategies: [{config: {}}]\n    stop: {signal: TERM}")
    assert messages(text) == [
        "fleet.yaml:5:18 nodes[0].strategies[0].path: expected a string, got nothing (this key is required)",
        'fleet.yaml:6:20 nodes[0].stop.signal: expected one of "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", got "TERM"; did you mean "SIGTERM"?',
    ]
