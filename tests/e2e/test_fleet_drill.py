"""`fleet drill` as a user runs it (README): the example fleet, a few kills, the table, the JSON report and
the exit code; and what it refuses before it starts anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor.conftest import REPO

# Seed 78 on the example fleet: ema-btc killed right after its first order (the entry on the first bar the
# drill closes), then a stop triggered while down; ema-eth killed idle, a stop triggered while down; ema-sol
# killed again while it recovers, then another client of its account doubles its position while it is down.
SEED = 78
KILLS = 3


def fleet(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.mqtt
@pytest.mark.timeout(240)
def test_a_short_drill_of_the_example_fleet(tmp_path: Path) -> None:
    report_path = tmp_path / "drill.json"
    run = fleet(
        "drill",
        "--config",
        "fleet.yaml",
        "--kills",
        str(KILLS),
        "--seed",
        str(SEED),
        "--json",
        str(report_path),
        timeout=220,
    )
    said = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.returncode == 0, said
    report = json.loads(report_path.read_text())
    assert report["seed"] == SEED and report["ok"] is True, said
    assert report["violations"] == [] and report["aborted"] is None, said
    assert (report["recoveries"], report["ready"]) == (KILLS, KILLS), said
    assert report["kills"] == KILLS + 1, said  # the `recovering` action kills twice
    assert [a["moment"] for a in report["actions"]] == ["after_order", "idle", "recovering"]
    assert "right after the venue accepted O-" in report["actions"][0]["moment_note"], said
    assert [k["state"] for k in report["actions"][2]["kills"]] == ["ready", "recovering"], said
    assert "changed from" in report["actions"][2]["move_note"], said
    for figure in ("position_recovery_ms", "full_recovery_ms"):
        assert report[figure]["samples"] == KILLS and 0 < report[figure]["p50"] <= report[figure]["p95"], said
    for action in report["actions"]:
        # What was compared: the strategy's state record at the kill, the positions, the orders.
        assert action["checked"]["state_seq_at_kill"], said
        assert action["checked"]["orders_compared"] > 0, said
    # Progress on stderr, one line per action; the table on stdout.
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/3", "[2/3", "[3/3"], said
    assert run.stdout.splitlines()[0].split()[:3] == ["#", "NODE", "MOMENT"], said
    assert "violations: none" in run.stdout and f"seed {SEED}" in run.stdout, said


def test_a_fleet_on_a_real_exchange_is_refused_before_anything_starts(tmp_path: Path) -> None:
    text = (
        (REPO / "fleet.yaml")
        .read_text()
        .replace("base_url_http: http://127.0.0.1:8900", "base_url_http: https://fapi.binance.com", 1)
    )
    config = tmp_path / "fleet.yaml"
    config.write_text(text)
    run = fleet("drill", "--config", str(config), "--kills", "1", timeout=60)
    assert run.returncode == 2, run.stderr
    assert "the drill refuses this fleet" in run.stderr
    assert "venue emulator-a: base_url_http https://fapi.binance.com is not a loopback address" in run.stderr
    assert run.stdout == ""
