"""Derived values: directories (systemd first), socket paths and their length limit, topics, instruments."""

# ruff: noqa: E501 - the expected messages are kept whole, as a user reads them

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config.errors import ConfigError
from supervisor.config.resolve import (
    MAX_UNIX_PATH,
    instruments_of,
    resolve_paths,
    topic_prefix,
    venue_account,
)

from ._util import messages, parse

FLEET = "fleet: demo\nnodes:\n  - {name: alpha, trader_id: A-001, command: [run]}\n"


@pytest.mark.parametrize(
    ("extra", "environ", "expected"),
    [
        pytest.param(
            "",
            {},
            (
                "/tmp/nautilus-fleet-1234",
                "/home/u/.local/state/nautilus-fleet",
                "/home/u/.local/state/nautilus-fleet/logs",
                "/tmp/nautilus-fleet-1234/control.sock",
            ),
            id="bare-defaults",
        ),
        pytest.param(
            "",
            {"XDG_RUNTIME_DIR": "/run/user/1234", "XDG_STATE_HOME": "/home/u/state"},
            (
                "/run/user/1234/nautilus-fleet",
                "/home/u/state/nautilus-fleet",
                "/home/u/state/nautilus-fleet/logs",
                "/run/user/1234/nautilus-fleet/control.sock",
            ),
            id="xdg",
        ),
        pytest.param(
            "",
            {
                "RUNTIME_DIRECTORY": "/run/fleet:/run/other",
                "STATE_DIRECTORY": "/var/lib/fleet",
                "LOGS_DIRECTORY": "/var/log/fleet",
                "XDG_RUNTIME_DIR": "/run/user/1234",
            },
            ("/run/fleet", "/var/lib/fleet", "/var/log/fleet", "/run/fleet/control.sock"),
            id="systemd-first",
        ),
        pytest.param(
            "runtime_dir: /srv/run\nstate_dir: state\nlog_dir: /var/log/x\ncontrol: {socket: /srv/c.sock}\n",
            {"RUNTIME_DIRECTORY": "/run/fleet", "STATE_DIRECTORY": "/var/lib/fleet"},
            ("/srv/run", "/srv/fleet/state", "/var/log/x", "/srv/c.sock"),
            id="file-wins-relative-to-file",
        ),
    ],
)
def test_resolve_paths(extra: str, environ: dict[str, str], expected: tuple[str, str, str, str]) -> None:
    spec = parse(FLEET + extra)
    paths = resolve_paths(spec, {"HOME": "/home/u", **environ}, uid=1234)
    assert (
        str(paths.runtime_dir),
        str(paths.state_dir),
        str(paths.log_dir),
        str(paths.control_socket),
    ) == expected
    assert paths.notify_socket("alpha") == Path(expected[0]) / "notify" / "alpha.sock"
    assert paths.pidfile("alpha") == Path(expected[1]) / "pids" / "alpha.pid"
    assert paths.node_log("alpha") == Path(expected[2]) / "alpha.log"


def test_home_falls_back_to_the_password_database() -> None:
    paths = resolve_paths(parse(FLEET), {}, uid=0)
    assert paths.state_dir == Path("/root/.local/state/nautilus-fleet")


def test_control_socket_too_long() -> None:
    long_path = "/srv/" + "d" * 100 + "/c.sock"
    spec = parse(FLEET + f"control: {{socket: {long_path}}}\n")
    with pytest.raises(ConfigError) as info:
        resolve_paths(spec, {"HOME": "/h"}, uid=1)
    assert info.value.message == (
        f'control.socket: expected a socket path of at most {MAX_UNIX_PATH} bytes, got "{long_path}" (112 bytes); '
        "choose a shorter directory (AF_UNIX limits socket paths to 108 bytes)"
    )


def test_sockets_too_long_are_placed_at_runtime_dir_by_the_loader() -> None:
    runtime = "/srv/" + "r" * 95
    environ = {"HOME": "/h"}
    control, notify = f"{runtime}/control.sock", f"{runtime}/notify/alpha.sock"
    assert messages(FLEET + f"runtime_dir: {runtime}\n", environ) == [
        f"fleet.yaml:4:14 runtime_dir: expected a socket path of at most {MAX_UNIX_PATH} bytes, "
        f'got "{path}" ({len(path)} bytes); choose a shorter directory (AF_UNIX limits socket paths to 108 bytes)'
        for path in (control, notify)
    ]
    # Without an environment (parse only) the host checks do not run.
    assert parse(FLEET + f"runtime_dir: {runtime}\n").runtime_dir == runtime


def test_longest_notify_socket_that_fits() -> None:
    name = "n" * 48
    text = f"fleet: demo\nnodes:\n  - {{name: {name}, trader_id: A-001, command: [run]}}\n"
    runtime = "/" + "r" * (MAX_UNIX_PATH - len(f"/notify/{name}.sock") - 1)
    paths = resolve_paths(parse(text + f"runtime_dir: {runtime}\n"), {"HOME": "/h"})
    assert len(str(paths.notify_socket(name))) == MAX_UNIX_PATH
    with pytest.raises(ConfigError):
        resolve_paths(parse(text + f"runtime_dir: {runtime}x\n"), {"HOME": "/h"})


def test_topic_prefix() -> None:
    assert topic_prefix(parse(FLEET)) == "nautilus-fleet/demo"
    assert topic_prefix(parse(FLEET + "mqtt: {topic_prefix: desk/a}\n")) == "desk/a"


def test_instruments_and_accounts() -> None:
    text = """
        fleet: demo
        venues: {emu: {}, emu2: {account: main}}
        nodes:
          - name: alpha
            trader_id: A-001
            venues: [emu, emu2]
            strategies:
              - {path: "m:A", config: {instrument_id: X.BINANCE, instrument_ids: [Y.BINANCE, X.BINANCE]}}
              - {path: "m:B", instruments: [Z.BINANCE], config: {instrument_id: IGNORED.BINANCE}}
              - {path: "m:C", config: {trade_size: 1}}
        """
    spec = parse(text)
    assert instruments_of(spec.nodes[0]) == ("X.BINANCE", "Y.BINANCE", "Z.BINANCE")
    assert venue_account(spec, "emu") == "emu"
    assert venue_account(spec, "emu2") == "main"
