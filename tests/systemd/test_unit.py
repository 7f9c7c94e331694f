"""systemd/fleet-supervisor.service: `systemd-analyze verify` is clean and the sandbox scores <= 2.0.

systemd 252's `security --offline=yes` reads the unit file itself (no running systemd needed); the file must
carry its real name, `fleet-supervisor.service`. `verify` fails when ExecStart does not exist, so the test
renders the unit with an executable that does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.config.schema import StopSpec
from supervisor.daemon import EXIT_DETACHED

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "fleet-supervisor.service"
INSTALLED_FLEET = "/opt/nautilus-fleet/venv/bin/fleet"
MAX_EXPOSURE = 2.0
# The MQTT publisher's stop budget: flush, then the stopped state, then DISCONNECT (see MqttPublisher).
MQTT_STOP_BUDGET = 3.0 + 3.0 + 5.0


def _analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path is not None, (
        "systemd-analyze is needed (Debian: systemd); the unit cannot be checked without it"
    )
    return path


def _fleet_executable() -> str:
    # The venv running the tests has the `fleet` console script (pyproject's [project.scripts]), installed
    # even before the CLI module exists. Fall back to the interpreter: any existing executable satisfies
    # verify's existence check.
    fleet = Path(sys.prefix) / "bin" / "fleet"
    return str(fleet) if fleet.exists() else sys.executable


def render(directory: Path, text: str | None = None) -> Path:
    unit = directory / "fleet-supervisor.service"
    source = UNIT.read_text() if text is None else text
    assert INSTALLED_FLEET in source
    unit.write_text(source.replace(INSTALLED_FLEET, _fleet_executable()))
    return unit


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat, e.g. SystemCallFilter)."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def setting(text: str, key: str) -> str:
    values = [v for _, k, v in directives(text) if k == key]
    assert values, f"{key}= is not set"
    return values[-1]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|min|m)?", value)
    assert match, f"unsupported time span {value!r}"
    scale = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, None: 1.0}[match.group(2)]
    return float(match.group(1)) * scale


def verify_problems(unit: Path) -> list[str]:
    result = subprocess.run(
        [_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        cwd=unit.parent,
        timeout=60,
        check=False,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    about_unit = [line for line in lines if unit.name in line or str(unit) in line]
    if result.returncode != 0 and not about_unit:
        about_unit = lines or [f"exit status {result.returncode}"]
    return about_unit


def test_verify_reports_nothing(tmp_path: Path) -> None:
    assert verify_problems(render(tmp_path)) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("KillMode=process", "KillMode=process\nKillMood=process", "Unknown key"),
        (
            f"ExecStart={INSTALLED_FLEET}",
            f"ExecStart=/nonexistent/fleet\n# {INSTALLED_FLEET}",
            "not executable",
        ),
    ],
    ids=["unknown-key", "missing-executable"],
)
def test_verify_check_catches_problems(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = verify_problems(render(tmp_path, UNIT.read_text().replace(old, new)))
    assert any(expected in line for line in problems), problems


def test_security_exposure_is_at_most_two(tmp_path: Path) -> None:
    unit = render(tmp_path)
    result = subprocess.run(
        [_analyze(), "security", "--offline=yes", f"--threshold={round(MAX_EXPOSURE * 10)}", str(unit)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for fleet-supervisor\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure <= MAX_EXPOSURE, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_directives_the_daemon_relies_on() -> None:
    text = UNIT.read_text()
    assert setting(text, "Type") == "notify"
    assert setting(text, "NotifyAccess") == "main"
    assert setting(text, "Restart") == "on-failure"
    assert setting(text, "KillMode") == "process"
    assert setting(text, "RuntimeDirectoryPreserve") == "restart"
    assert setting(text, "OOMPolicy") == "continue"
    assert seconds(setting(text, "WatchdogSec")) > 0
    assert setting(text, "ExecStart") == f"{INSTALLED_FLEET} run --config /etc/nautilus-fleet/fleet.yaml"
    assert setting(text, "User") == setting(text, "Group") == "nautilus-fleet"
    assert setting(text, "EnvironmentFile") == "/etc/nautilus-fleet/fleet.env"
    assert setting(text, "StateDirectory") == setting(text, "RuntimeDirectory") == "nautilus-fleet"
    keys = {k for _, k, _ in directives(text)}
    assert "MemoryDenyWriteExecute" not in keys  # a Python venv with native extensions
    assert "PrivateNetwork" not in keys  # Redis, MQTT and the venues are reached over the network


def test_the_start_limit_can_fire() -> None:
    text = UNIT.read_text()
    burst = int(setting(text, "StartLimitBurst"))
    window = seconds(setting(text, "StartLimitIntervalSec"))
    delay = seconds(setting(text, "RestartSec"))
    # burst + 1 starts (the one refused) are at least `burst` restart delays apart from the first.
    assert burst * delay < window


def test_stop_timeout_covers_the_node_grace_and_the_final_publish() -> None:
    stop = seconds(setting(UNIT.read_text(), "TimeoutStopSec"))
    assert stop > float(StopSpec().grace) + MQTT_STOP_BUDGET


def test_a_detached_daemon_is_restarted_and_its_nodes_are_not_signalled() -> None:
    """The upgrade path: SIGUSR2 makes the daemon exit EXIT_DETACHED, leaving its nodes. systemd must start
    the new daemon (a failure exit under Restart=on-failure) and must not signal the nodes when the old one
    exits (KillMode=process: only the main process is ever signalled)."""
    text = UNIT.read_text()
    assert setting(text, "Restart") in ("on-failure", "always")
    assert str(EXIT_DETACHED) not in setting(text, "RestartPreventExitStatus").split()
    keys = {k for _, k, _ in directives(text)}
    assert "SuccessExitStatus" not in keys or str(EXIT_DETACHED) not in setting(text, "SuccessExitStatus")
    assert setting(text, "KillMode") == "process"
    # systemctl stop still stops the nodes: SIGTERM (the daemon's stop-everything) goes to the daemon.
    assert "KillSignal" not in keys or setting(text, "KillSignal") == "SIGTERM"
