"""`fleet drill` as a user runs it (README): the example fleet, a few kills, the table, the JSON report and
the exit code; and what it refuses before it starts anything."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.admin import AdminClient
from recovery.drill.fleet_copy import DrillFleet
from recovery.drill.market import BarMarket
from recovery.drill.report import render_table
from recovery.drill.runner import DrillOptions, run_drill
from tests.supervisor.conftest import REPO

# Seed 236 on the example fleet: ema-sol killed, then killed again when its restart reports `cache_loaded`
# (before READY), one of its stops triggered while it is down; ema-eth killed idle; ema-btc killed idle, then
# another client of its account trades while it is down. (No `after_order` kill: one that lands before
# nautilus has written the order to Redis leaves the node out of READY for good, a defect the drill found.)
SEED = 236
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
    assert [a["moment"] for a in report["actions"]] == ["recovering", "idle", "idle"]
    assert [(k["state"], k.get("phase")) for k in report["actions"][0]["kills"]] == [
        ("ready", None),
        ("recovering", "cache_loaded"),
    ], said
    assert report["actions"][0]["move_note"], said
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


def only_ema_btc() -> str:
    """The example fleet with ema-btc alone enabled (the drill leaves disabled nodes out)."""
    text = (REPO / "fleet.yaml").read_text()
    for name in ("ema-eth", "ema-sol"):
        text = text.replace(f"  - name: {name}\n", f"  - name: {name}\n    enabled: false\n")
    return text


class SilentShift(BarMarket):
    """The default market, and once a position that appears at the venue without a trade behind it."""

    def __init__(self, fleet: DrillFleet) -> None:
        super().__init__(fleet.symbols)
        self.account = fleet.nodes[0].account
        self.shifted = False

    async def step(self, admin: AdminClient, rng: random.Random, *, seek_order: bool = False) -> str:
        if self.shifted:
            return await super().step(admin, rng, seek_order=seek_order)
        self.shifted = True
        price = (await admin.state())["prices"]["BTCUSDT"]["last"]
        await admin.set_position("BTCUSDT", "0.500", price, account=self.account)
        return f"BTCUSDT 0.500 set at the venue without a trade; {await super().step(admin, rng)}"


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.mqtt
@pytest.mark.timeout(240)
async def test_a_position_without_a_trade_behind_it_is_reported_with_its_evidence(tmp_path: Path) -> None:
    """A position appears at the venue without a trade (no real venue does that): after the kill, nautilus'
    reconciliation either invents a fill to match it, or cannot explain it and the node's own check keeps it
    out of READY until the daemon quarantines it. Either way the drill reports it, with the evidence."""
    config = tmp_path / "fleet.yaml"
    config.write_text(only_ema_btc())
    lines: list[str] = []
    report = await run_drill(
        DrillOptions(config=config, kills=1, seed=1, market=SilentShift, progress=lines.append)
    )
    said = "\n".join([*lines, render_table(report)])
    assert not report.ok, said
    assert [n.split(":")[0] for n in report.left_out] == ["ema-eth", "ema-sol"], said
    found = {(v.node, v.check) for _, v in report.violations()}
    assert found & {("ema-btc", "invented"), ("ema-btc", "ready")}, said
    for _, violation in report.violations():
        if violation.check == "invented":
            assert violation.evidence["instrument"] == "BTCUSDT-PERP.BINANCE", said
            assert any("inferred fill" in r for r in violation.evidence["reasons"]), said
        if violation.check == "ready":
            assert "cache differs from the venue after reconciliation" in violation.message, said
            assert "ema-btc never came back READY: the daemon quarantined it" in report.aborted, said
