"""Host checks of `load_fleet`: secrets present (never shown), directories, the file itself."""

# ruff: noqa: E501 - the expected messages and output are kept whole, as a user reads them

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.config.errors import ConfigError
from supervisor.config.loader import load_fleet

from ._util import messages, yaml_text

FLEET = """
    fleet: demo
    redis: {password: {env: REDIS_PW}}
    mqtt: {username: u, password: {file: secrets/mqtt}}
    venues:
      emu: {api_key: {env: EMU_KEY}, api_secret: {file: secrets/emu}}
      unused: {api_key: {env: NOT_SET_ANYWHERE}, api_secret: {env: NOT_SET_ANYWHERE}}
    nodes:
      - {name: a, trader_id: A-001, venues: [emu], command: [run], cwd: work}
      - {name: b, trader_id: B-001, venues: [unused], command: [run], enabled: false}
    """


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt").write_text("mqtt-SENTINEL\n")
    (tmp_path / "secrets" / "emu").write_text("emu-SENTINEL\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "fleet.yaml").write_text(yaml_text(FLEET))
    return tmp_path


ENV = {
    "REDIS_PW": "redis-SENTINEL",
    "EMU_KEY": "key-SENTINEL",
    "HOME": "/h",
    "XDG_RUNTIME_DIR": "/run/user/1",
}


def test_loads_with_paths_relative_to_the_file(fleet_dir: Path) -> None:
    spec = load_fleet(fleet_dir / "fleet.yaml", ENV)
    assert spec.mqtt.password is not None
    assert spec.mqtt.password.file == str(fleet_dir / "secrets" / "mqtt")
    assert spec.node("a").cwd == str(fleet_dir / "work")
    # A venue no enabled node uses may lack its credentials on this host.
    assert spec.node("b").enabled is False


def test_missing_secrets_and_directories(fleet_dir: Path) -> None:
    (fleet_dir / "secrets" / "emu").unlink()
    (fleet_dir / "work").rmdir()
    environ = {"REDIS_PW": "", "HOME": "/h"}
    with pytest.raises(ConfigError) as info:
        load_fleet(fleet_dir / "fleet.yaml", environ)
    path = str(fleet_dir / "fleet.yaml")
    assert [e.message for e in info.value.errors] == [
        f"{path}:2:25 redis.password.env: expected environment variable REDIS_PW to be set, got it empty",
        f"{path}:5:24 venues.emu.api_key.env: expected environment variable EMU_KEY to be set, got it unset",
        f'{path}:5:53 venues.emu.api_secret.file: expected a readable file, got "{fleet_dir}/secrets/emu", '
        "which is missing or unreadable",
        f'{path}:8:69 nodes[0].cwd: expected an existing directory, got "{fleet_dir}/work"',
    ]


def test_parse_without_environment_skips_host_checks() -> None:
    # The same file, nothing on the host: structure only.
    assert messages(FLEET.replace("cwd: work", "cwd: work, colour: x")) == [
        'fleet.yaml:8:75 nodes[0].colour: expected a known key, got "colour"; known keys: name, trader_id, venues, '
        "strategies, command, instruments, share_instruments, enabled, env, cwd, restart, stop, watchdog, "
        "ready_timeout, readiness, cache_compaction, placement, spares"
    ]


def test_tilde_is_not_expanded(fleet_dir: Path) -> None:
    assert messages("fleet: demo\nstate_dir: ~/state\n") == [
        'fleet.yaml:2:12 state_dir: expected an absolute path or one relative to the file, got "~/state"; '
        "~ is not expanded; write the full path"
    ]


def test_empty_paths() -> None:
    assert messages("fleet: demo\nruntime_dir: ''\nredis: {password: {file: ''}}\n") == [
        'fleet.yaml:2:14 runtime_dir: expected a path, got ""',
        'fleet.yaml:3:26 redis.password.file: expected a path, got ""',
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_fleet(tmp_path / "nope.yaml", {})
    assert (
        info.value.message
        == f"{tmp_path}/nope.yaml expected a readable UTF-8 file, got No such file or directory"
    )
    (tmp_path / "latin1.yaml").write_bytes("fleet: d\xe9mo\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_fleet(tmp_path / "latin1.yaml", {})
    assert info.value.expected == "a readable UTF-8 file"
    assert info.value.line == 0


def test_default_environment_is_the_process_environment(
    fleet_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert load_fleet(fleet_dir / "fleet.yaml").fleet == "demo"
    monkeypatch.delenv("EMU_KEY")
    with pytest.raises(ConfigError, match="EMU_KEY to be set"):
        load_fleet(fleet_dir / "fleet.yaml")
    assert "EMU_KEY" not in os.environ
