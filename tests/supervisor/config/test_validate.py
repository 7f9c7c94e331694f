"""Semantic checks after decoding: each error exactly, pointing at the line and column to change."""

# ruff: noqa: E501 - the expected messages are kept whole, as a user reads them

from __future__ import annotations

import pytest

from ._util import messages, parse

HEAD = "fleet: demo\nvenues:\n  emu: {}\n  emu2: {account: emu}\n  other: {}\nnodes:\n"


def node(name: str = "alpha", trader_id: str = "A-001", body: str = "command: [run]") -> str:
    lines = [f"  - name: {name}", f"    trader_id: {trader_id}"] + [
        f"    {line}" for line in body.splitlines()
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEAD + node() + node(trader_id="B-001"),
            [
                'fleet.yaml:10:11 nodes[1].name: expected a node name used once, got "alpha"; nodes[0] at line 7 has it too'
            ],
            id="duplicate-node-name",
        ),
        pytest.param(
            HEAD + node() + node(name="beta"),
            [
                'fleet.yaml:11:16 nodes[1].trader_id: expected a trader id used by one node only, got "A-001"; '
                "nodes[0] at line 7 has it too"
            ],
            id="duplicate-trader-id",
        ),
        pytest.param(
            HEAD + node(trader_id="TESTER"),
            [
                'fleet.yaml:8:16 nodes[0].trader_id: expected a trader id "NAME-TAG" like "TRADER-001", got "TESTER"; '
                'it has no "-" between name and tag (nautilus would abort the node)'
            ],
            id="trader-id-without-hyphen",
        ),
        pytest.param(
            HEAD + node(trader_id="TRADER-"),
            [
                'fleet.yaml:8:16 nodes[0].trader_id: expected a trader id "NAME-TAG" like "TRADER-001", got "TRADER-"; '
                'the tag after the last "-" is empty (nautilus would abort the node)'
            ],
            id="trader-id-empty-tag",
        ),
        pytest.param(
            HEAD + node(trader_id="A/B-1"),
            [
                'fleet.yaml:8:16 nodes[0].trader_id: expected a trader id "NAME-TAG" like "TRADER-001", got "A/B-1"; '
                'it has characters other than letters, digits, "_", "." and "-" (it is used in topics and keys)'
            ],
            id="trader-id-topic-unsafe",
        ),
        pytest.param(
            HEAD + node(body="venues: [emu]"),
            [
                'fleet.yaml:7:5 nodes[0]: expected either "strategies" (nautilus strategies) or "command" (any program), '
                "got neither"
            ],
            id="neither-strategies-nor-command",
        ),
        pytest.param(
            HEAD + node(body="venues: [emu]\ncommand: [run]\nstrategies: [{path: 'a.b:C'}]"),
            [
                'fleet.yaml:7:5 nodes[0]: expected either "strategies" (nautilus strategies) or "command" (any program), '
                "got both"
            ],
            id="both-strategies-and-command",
        ),
        pytest.param(
            HEAD + node(body="command: []"),
            [
                "fleet.yaml:9:14 nodes[0].command: expected a program and its arguments, like [python, -m, mynode], "
                "got a list"
            ],
            id="empty-command",
        ),
        pytest.param(
            HEAD + node(body="venues: [emu]\nstrategies: [{path: mymod.Strategy}]"),
            [
                'fleet.yaml:10:25 nodes[0].strategies[0].path: expected an import path "package.module:ClassName", '
                'got "mymod.Strategy"'
            ],
            id="strategy-import-path",
        ),
        pytest.param(
            HEAD + node(body="strategies: [{path: 'a.b:C'}]"),
            [
                "fleet.yaml:7:5 nodes[0]: expected at least one venue for a node running strategies, got no venues"
            ],
            id="strategy-node-without-venue",
        ),
        pytest.param(
            HEAD + node(body="venues: [emu, nowhere]\ncommand: [run]"),
            [
                'fleet.yaml:9:19 nodes[0].venues[1]: expected a venue defined under venues ("emu", "emu2", "other"), '
                'got "nowhere"'
            ],
            id="undefined-venue",
        ),
        pytest.param(
            HEAD + node(body="venues: [emu, emu]\ncommand: [run]"),
            ['fleet.yaml:9:19 nodes[0].venues[1]: expected each venue once, got "emu"'],
            id="venue-twice",
        ),
        pytest.param(
            HEAD + node(body="instruments: [BTCUSDT]\nvenues: [emu]\ncommand: [run]"),
            [
                'fleet.yaml:9:19 nodes[0].instruments[0]: expected an instrument id "SYMBOL.VENUE" like '
                '"BTCUSDT-PERP.BINANCE", got "BTCUSDT"; it has no "." between symbol and venue'
            ],
            id="instrument-id-format",
        ),
        pytest.param(
            HEAD + node(body="instruments: [BTCUSDT-PERP.BINANCE]\ncommand: [run]"),
            [
                "fleet.yaml:9:18 nodes[0].instruments: expected venues for the node that lists instruments, got no venues"
            ],
            id="instruments-without-venue",
        ),
        pytest.param(
            HEAD + node(body="venues: [emu]\nstrategies: [{path: 'a.b:C', config: {instrument_id: 5}}]"),
            ["fleet.yaml:10:58 nodes[0].strategies[0].config.instrument_id: expected a string, got 5"],
            id="strategy-config-instrument-id-type",
        ),
        pytest.param(
            HEAD + node(body="command: [run]\nenv: {NOTIFY_SOCKET: /tmp/x, 1BAD: x}"),
            [
                "fleet.yaml:10:11 nodes[0].env.NOTIFY_SOCKET: expected a variable the supervisor does not set itself, "
                'got "NOTIFY_SOCKET"',
                'fleet.yaml:10:34 nodes[0].env["1BAD"]: expected an environment variable name like LOG_LEVEL, got "1BAD"',
            ],
            id="env-names",
        ),
        pytest.param(
            HEAD + node(body="command: [run]\nrestart: {backoff_initial: 1m}"),
            [
                'fleet.yaml:10:32 nodes[0].restart.backoff_initial: expected at most backoff_max (30s), got "1m"'
            ],
            id="backoff-initial-above-default-max",
        ),
        pytest.param(
            HEAD + node(body="command: [run]\nrestart: {backoff_initial: 2s, backoff_max: 1s}"),
            [
                'fleet.yaml:10:49 nodes[0].restart.backoff_max: expected at least backoff_initial (2s), got "1s"'
            ],
            id="backoff-max-below-initial",
        ),
        pytest.param(
            HEAD
            + node(body="command: [run]\nstop: {grace: 0s}\nwatchdog: {timeout: 0ms}\nready_timeout: 0s"),
            [
                'fleet.yaml:10:19 nodes[0].stop.grace: expected a duration longer than 0s, got "0ms"',
                'fleet.yaml:11:25 nodes[0].watchdog.timeout: expected a duration longer than 0s, got "0ms"',
                'fleet.yaml:12:20 nodes[0].ready_timeout: expected a duration longer than 0s, got "0ms"',
            ],
            id="zero-durations",
        ),
        pytest.param(
            "fleet: demo\nvenues:\n  Emu: {api_key: {env: K}}\n",
            [
                'fleet.yaml:3:3 venues.Emu: expected a name of 1 to 48 lowercase letters, digits, "_" or "-", starting '
                'with a letter or digit, got "Emu"',
                "fleet.yaml:3:8 venues.Emu: expected both api_key and api_secret, or neither, got only one of them",
            ],
            id="venue-name-and-half-credentials",
        ),
        pytest.param(
            "fleet: demo\nvenues:\n  emu:\n    api_key: {env: K, file: k.txt}\n    api_secret: {}\n",
            [
                'fleet.yaml:4:14 venues.emu.api_key: expected exactly one of "env" (a variable name) or "file" (a path), '
                "got both",
                'fleet.yaml:5:17 venues.emu.api_secret: expected exactly one of "env" (a variable name) or "file" '
                "(a path), got neither",
            ],
            id="secret-ref-exactly-one",
        ),
        pytest.param(
            "fleet: demo\nvenues:\n  emu: {base_url_http: ws://h, base_url_ws: 'http://h'}\n",
            [
                'fleet.yaml:3:24 venues.emu.base_url_http: expected a http:// or https:// URL, got "ws://h"',
                'fleet.yaml:3:45 venues.emu.base_url_ws: expected a ws:// or wss:// URL, got "http://h"',
            ],
            id="venue-url-schemes",
        ),
        pytest.param(
            "fleet: demo\nredis: {url: 'redis://:hunter2@127.0.0.1:6379/0'}\n",
            [
                'fleet.yaml:2:14 redis.url: expected a URL without a password, got "redis://:***@127.0.0.1:6379/0"; '
                "give it by reference in redis.password (env: or file:)"
            ],
            id="redis-inline-password-masked",
        ),
        pytest.param(
            "fleet: demo\nmqtt: {topic_prefix: 'fleet/#', keepalive: 1.5s}\nmetrics: {listen: '9464'}\n",
            [
                'fleet.yaml:2:22 mqtt.topic_prefix: expected topic levels separated by "/", without "+", "#", empty '
                'levels or a leading "$", got "fleet/#"',
                'fleet.yaml:2:44 mqtt.keepalive: expected whole seconds from 1s to 65535s, got "1.5s"',
                'fleet.yaml:3:19 metrics.listen: expected an address "host:port" like "127.0.0.1:9464", got "9464"',
            ],
            id="mqtt-and-metrics",
        ),
        pytest.param(
            "fleet: demo\ncontrol: {mode: 0o400}\n",
            [
                "fleet.yaml:2:17 control.mode: expected a file mode between 0o600 and 0o777 that lets the owner "
                "read and write, got 0o400"
            ],
            id="control-mode",
        ),
    ],
)
def test_semantic_errors(text: str, expected: list[str]) -> None:
    assert messages(text) == expected


def test_defaults_problem_reported_once_not_per_node() -> None:
    text = (
        HEAD.replace("nodes:\n", "defaults:\n  restart: {backoff_initial: 1m}\nnodes:\n")
        + node()
        + node("beta", "B-001")
    )
    assert messages(text) == [
        'fleet.yaml:7:30 defaults.restart.backoff_initial: expected at most backoff_max (30s), got "1m"'
    ]


def test_node_value_against_a_default_blames_the_node() -> None:
    text = HEAD.replace("nodes:\n", "defaults:\n  restart: {backoff_initial: 5s}\nnodes:\n") + node(
        body="command: [run]\nrestart: {backoff_max: 1s}"
    )
    assert messages(text) == [
        'fleet.yaml:12:28 nodes[0].restart.backoff_max: expected at least backoff_initial (5s), got "1s"'
    ]


def test_node_value_against_a_default_max_blames_the_node() -> None:
    text = HEAD.replace("nodes:\n", "defaults:\n  restart: {backoff_max: 10s}\nnodes:\n") + node(
        body="command: [run]\nrestart: {backoff_initial: 20s}"
    )
    assert messages(text) == [
        'fleet.yaml:12:32 nodes[0].restart.backoff_initial: expected at most backoff_max (10s), got "20s"'
    ]


def test_control_mode_above_0o777() -> None:
    assert messages("fleet: demo\ncontrol: {mode: 0o4700}\n") == [
        "fleet.yaml:2:17 control.mode: expected a file mode between 0o600 and 0o777 that lets the owner "
        "read and write, got 0o4700"
    ]


OVERLAP = (
    HEAD
    + node("alpha", "A-001", "venues: [emu]\ninstruments: [BTCUSDT-PERP.BINANCE]\ncommand: [run]")
    + node(
        "beta",
        "B-001",
        "venues: [emu2]\nstrategies: [{path: 'm:S', config: {instrument_id: BTCUSDT-PERP.BINANCE}}]",
    )
)


def test_same_instrument_on_same_account_is_rejected() -> None:
    # emu2 is declared as the same account as emu.
    assert messages(OVERLAP) == [
        "fleet.yaml:15:56 nodes[1].strategies[0].config.instrument_id: expected an instrument no other node "
        'trades on venue account "emu", got "BTCUSDT-PERP.BINANCE"; node "alpha" at line 7 trades it too; '
        "set share_instruments: true on both nodes to allow it"
    ]


def test_sharing_needs_both_nodes_to_allow_it() -> None:
    one = OVERLAP.replace("venues: [emu2]", "venues: [emu2]\n    share_instruments: true")
    assert len(messages(one)) == 1
    both = one.replace("venues: [emu]\n", "venues: [emu]\n    share_instruments: true\n")
    assert [n.name for n in parse(both).nodes] == ["alpha", "beta"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(("venues: [emu2]", "venues: [other]"), id="different-account"),
        pytest.param(
            ("instrument_id: BTCUSDT-PERP.BINANCE", "instrument_id: ETHUSDT-PERP.BINANCE"),
            id="different-instrument",
        ),
        pytest.param(("command: [run]\n", "command: [run]\n    enabled: false\n"), id="one-disabled"),
        # Explicit strategy instruments replace the config's instrument_id.
        pytest.param(
            ("config: {", "instruments: [ETHUSDT-PERP.BINANCE], config: {"), id="strategy-instruments-win"
        ),
    ],
)
def test_no_overlap(change: tuple[str, str]) -> None:
    assert OVERLAP.count(change[0]) == 1
    spec = parse(OVERLAP.replace(*change))
    assert len(spec.nodes) == 2


def test_readiness_running_for_plain_programs_only_and_before_the_ready_timeout() -> None:
    strategy = "strategies: [{path: 'pkg.mod:Strat'}]\nvenues: [emu]\nreadiness: {mode: running}"
    assert messages(HEAD + node(body=strategy)) == [
        'fleet.yaml:11:23 nodes[0].readiness.mode: expected "notify" for a strategy node (it reports READY=1 '
        'once recovered), got "running"'
    ]
    late = "command: [run]\nready_timeout: 10s\nreadiness: {mode: running, after: 10s}"
    assert messages(HEAD + node(body=late)) == [
        'fleet.yaml:11:39 nodes[0].readiness.after: expected less than ready_timeout (10s), got "10s"; the node '
        "would be killed for not being ready before it counts as ready"
    ]
    ok = parse(HEAD + node(body="command: [run]\nreadiness: {mode: running, after: 0s}"))
    assert (ok.nodes[0].readiness.mode, ok.nodes[0].readiness.after) == ("running", 0.0)
