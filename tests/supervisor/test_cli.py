"""The `fleet` command as a user runs it (real subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor.cli import render_status
from tests.supervisor.conftest import REPO, run_fleet

LIGHT_MODULES = (
    "supervisor.cli",
    "supervisor.daemon",
    "supervisor.status.mqtt",
    "supervisor.status.metrics",
    "supervisor.status.metrics_server",
    "supervisor.control_client",
)


def test_daemon_and_cli_do_not_import_nautilus_or_ccxt() -> None:
    code = (
        f"import importlib, sys\nfor m in {LIGHT_MODULES!r}: importlib.import_module(m)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'nautilus_trader', 'ccxt', 'recovery'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_check_prints_the_resolved_fleet_without_secrets() -> None:
    secret = "s3cr3t-value-that-must-not-show"
    env = {f"DEMO_{x}_API_{kind}": secret for x in "ABC" for kind in ("KEY", "SECRET")}
    result = run_fleet("check", "fleet.yaml", env=env)
    assert result.returncode == 0, result.stderr
    assert "fleet.yaml: OK" in result.stdout
    assert "*** (env DEMO_A_API_SECRET)" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_run_with_an_invalid_file_exits_78_with_the_position(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text(
        "fleet: x\nnodes:\n  - name: a\n    trader_id: T-1\n    command: [x]\n    stop: {grace: fast}\n"
    )
    result = run_fleet("run", "--config", str(bad))
    assert result.returncode == 78
    assert f'{bad}:6:19 nodes[0].stop.grace: expected a duration like "30s", got "fast"' in result.stderr


def test_emulator_subcommand_passes_its_arguments_through() -> None:
    result = run_fleet("emulator", "--help")
    assert result.returncode == 0
    assert "--seed" in result.stdout


def test_status_table() -> None:
    nodes: list[dict[str, Any]] = [
        {
            "name": "alpha",
            "state": "ready",
            "pid": 10,
            "started_at": 940.0,
            "restarts": 1,
            "last_exit": {"reason": "signal", "code": None, "signal": 9, "at": 930.0},
            "last_recovery_ms": 412.6,
            "audit": {"state": "audited", "at": 960.0, "last_ok_at": 960.0, "differences": 0},
        },
        {
            "name": "beta",
            "state": "quarantined",
            "pid": None,
            "started_at": None,
            "restarts": 5,
            "last_exit": {"reason": "exit", "code": 3, "signal": None, "at": 990.0},
            "last_recovery_ms": None,
            "quarantine_reason": "crash loop: 5 starts within 60s",
            "audit": {"state": "-"},
        },
    ]
    table = render_status(nodes, now=1000.0).splitlines()
    assert table[0].split() == [
        "NODE",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST",
        "EXIT",
        "LAST",
        "RECOVERY",
        "AUDIT",
    ]
    assert table[1].split() == [
        "alpha",
        "ready",
        "10",
        "1m00s",
        "1",
        "signal",
        "(SIGKILL)",
        "1m10s",
        "ago",
        "413",
        "ms",
        "audited",
        "40s",
        "ago",
    ]
    assert table[2].split()[:5] == ["beta", "quarantined", "-", "-", "5"]
    assert table[2].endswith("not audited")
    assert table[3] == "beta: quarantined: crash loop: 5 starts within 60s (fleet reset beta)"


def test_the_example_fleet_is_valid_without_its_secrets_and_strict_mode_says_what_this_host_lacks() -> None:
    """`fleet check fleet.yaml` on a clean clone: the file is valid; the unset demo secrets are what this host
    lacks to run it, shown, and an error only with --strict (deployments)."""
    unset = {f"DEMO_{x}_API_{kind}": "" for x in "ABC" for kind in ("KEY", "SECRET")}
    result = run_fleet("check", "fleet.yaml", env=unset)
    assert result.returncode == 0, result.stderr
    assert "fleet.yaml: valid (6 problems on this host, above)" in result.stdout
    assert "the file is valid; on this host `fleet run` would refuse to start" in result.stderr
    assert (
        "venues.emulator-a.api_key.env: expected environment variable DEMO_A_API_KEY to be set"
        in result.stderr
    )
    strict = run_fleet("check", "--strict", "fleet.yaml", env=unset)
    assert strict.returncode == 2
    assert strict.stderr.count("expected environment variable DEMO_") == 6


@pytest.mark.parametrize(
    ("audit", "cell"),
    [
        (None, "-"),
        ({"state": "off"}, "off"),
        ({"state": "-"}, "not audited"),
        ({"state": "pending"}, "pending"),
        ({"state": "deferred"}, "deferred"),
        ({"state": "audited", "at": 995.0}, "audited 5s ago"),
        ({"state": "mismatch", "at": 995.0, "differences": 2}, "MISMATCH (2)"),
        ({"state": "error", "at": 995.0, "last_ok_at": 700.0}, "error (ok 5m00s ago)"),
        ({"state": "skipped", "at": 995.0, "last_ok_at": None}, "skipped"),
    ],
)
def test_status_audit_column(audit: dict[str, Any] | None, cell: str) -> None:
    node = {"name": "a", "state": "ready", "pid": 1, "started_at": 990.0, "restarts": 0, "audit": audit}
    assert render_status([node], now=1000.0).splitlines()[1].endswith(cell)
