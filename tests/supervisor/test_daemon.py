"""The real daemon as a child process: systemd notify, control socket, shutdown, reload, leftovers."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from supervisor import pidfile
from supervisor.child import process_start_time
from tests.supervisor.conftest import run_fleet
from tests.supervisor.daemon_harness import DaemonUnderTest, fleet_yaml, node_yaml, write_atomically

pytestmark = pytest.mark.slow


@pytest.fixture
async def daemon(short_dir: Path) -> AsyncIterator[DaemonUnderTest]:
    config = short_dir / "fleet.yaml"
    config.write_text(fleet_yaml(short_dir, [node_yaml("a"), node_yaml("b")]))
    under_test = DaemonUnderTest(short_dir, config)
    try:
        yield under_test
    finally:
        await under_test.close()


def _all_ready(nodes: dict[str, dict[str, object]]) -> bool:
    return bool(nodes) and all(n["state"] == "ready" for n in nodes.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purposes.
    return process_start_time(pid) is not None and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


async def test_sigterm_stops_every_node_and_exits_0(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    nodes = await daemon.wait_nodes(_all_ready)
    pids = [n["pid"] for n in nodes.values()]
    assert all(isinstance(p, int) for p in pids)
    # The summary goes to systemd as STATUS.
    await daemon.wait_systemd(lambda m: m.get("STATUS") == "2 nodes: 2 ready")
    await daemon.signal(signal.SIGTERM)
    assert await daemon.wait_exit() == 0
    assert any(m.get("STOPPING") == "1" for m in daemon.systemd_messages)
    assert not [p for p in pids if isinstance(p, int) and _alive(p)]
    assert not (daemon.base / "run" / "control.sock").exists()


async def test_daemon_pings_the_systemd_watchdog(daemon: DaemonUnderTest) -> None:
    await daemon.start(watchdog_usec=200_000)
    # Pings every half timeout from the daemon's loop: several within a second.
    await daemon.wait_systemd(lambda m: m.get("WATCHDOG") == "1")
    first = len(daemon.systemd_messages)
    await daemon.wait_systemd(
        lambda m: sum(1 for x in daemon.systemd_messages[first:] if x.get("WATCHDOG") == "1") >= 3, timeout=2
    )


async def test_second_sigint_kills_at_once(short_dir: Path) -> None:
    config = short_dir / "fleet.yaml"
    slow_stop = node_yaml("stubborn", "--ignore-sigterm", extra="stop: {grace: 30s}\n")
    config.write_text(fleet_yaml(short_dir, [slow_stop]))
    daemon = DaemonUnderTest(short_dir, config)
    try:
        await daemon.start()
        nodes = await daemon.wait_nodes(_all_ready)
        await daemon.signal(signal.SIGINT)
        await daemon.wait_output("stopping node stubborn")
        await daemon.signal(signal.SIGINT)
        assert await daemon.wait_exit(timeout=10) == 0
        assert not _alive(int(nodes["stubborn"]["pid"]))
    finally:
        await daemon.close()


async def test_control_commands(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    nodes = await daemon.wait_nodes(_all_ready)
    reply = await daemon.request({"cmd": "stop", "node": "a"})
    assert reply == {"ok": True, "state": "stopped"}
    assert not _alive(int(nodes["a"]["pid"]))
    assert (await daemon.request({"cmd": "start", "node": "a"}))["ok"]
    nodes = await daemon.wait_nodes(_all_ready)
    old_pid = nodes["a"]["pid"]
    assert (await daemon.request({"cmd": "restart", "node": "a"}))["ok"]
    nodes = await daemon.wait_nodes(lambda n: n["a"]["state"] == "ready" and n["a"]["pid"] != old_pid)
    assert nodes["a"]["last_exit"]["reason"] == "stopped"
    unknown = await daemon.request({"cmd": "start", "node": "nope"})
    assert unknown["ok"] is False and "no node named 'nope'" in unknown["error"]


async def test_cli_status_and_logs(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    await daemon.wait_nodes(_all_ready)
    status = run_fleet("status", "--config", str(daemon.config))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].split() == [
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
    assert lines[1].split()[:2] == ["a", "ready"]
    assert lines[1].endswith(" off")  # a `command:` node is not audited
    assert lines[-1] == "2 nodes: 2 ready"
    logs = run_fleet("logs", "a", "--socket", str(daemon.base / "run" / "control.sock"))
    assert "test node ready" in logs.stdout


def test_cli_without_daemon_says_so(short_dir: Path) -> None:
    result = run_fleet("status", "--socket", str(short_dir / "nothing.sock"))
    assert result.returncode == 3
    assert "no fleet daemon is listening" in result.stderr


async def test_reload_touches_only_changed_nodes(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    before = await daemon.wait_nodes(_all_ready)
    base = daemon.base
    # Two atomic replaces in a row: add c and change b, then remove a.
    write_atomically(
        daemon.config,
        fleet_yaml(base, [node_yaml("a"), node_yaml("b", "--ready-after", "0.1"), node_yaml("c")]),
    )
    nodes = await daemon.wait_nodes(
        lambda n: set(n) == {"a", "b", "c"} and _all_ready(n) and n["b"]["pid"] != before["b"]["pid"]
    )
    write_atomically(
        daemon.config, fleet_yaml(base, [node_yaml("b", "--ready-after", "0.1"), node_yaml("c")])
    )
    after = await daemon.wait_nodes(lambda n: set(n) == {"b", "c"})
    assert after["b"]["pid"] == nodes["b"]["pid"]
    assert after["c"]["pid"] == nodes["c"]["pid"]
    assert not _alive(int(before["a"]["pid"]))


async def test_invalid_reload_keeps_the_fleet(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    before = await daemon.wait_nodes(_all_ready)
    write_atomically(
        daemon.config, daemon.config.read_text().replace("backoff_max: 200ms", "backoff_max: fast")
    )
    await daemon.wait_output("reload refused")
    assert any('expected a duration like "30s", got "fast"' in line for line in daemon.output)
    after = await daemon.nodes()
    assert {n: v["pid"] for n, v in after.items()} == {n: v["pid"] for n, v in before.items()}


async def test_sighup_reloads(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    await daemon.wait_nodes(_all_ready)
    # Written in place (no rename) while the file watch is also on: SIGHUP must reload regardless.
    daemon.config.write_text(fleet_yaml(daemon.base, [node_yaml("a"), node_yaml("b"), node_yaml("c")]))
    await daemon.signal(signal.SIGHUP)
    await daemon.wait_nodes(lambda n: "c" in n and n["c"]["state"] == "ready")


async def test_leftover_nodes_that_fleet_yaml_now_starts_differently_are_stopped_first(
    daemon: DaemonUnderTest,
) -> None:
    """Re-attach adopts a node only if it would be started the same way today (see test_adopt.py); one whose
    command changed while no daemon ran is stopped before its new process starts."""
    await daemon.start()
    nodes = await daemon.wait_nodes(_all_ready)
    assert daemon.process is not None
    # kill -9 the daemon only: its nodes live on (they are in their own process groups).
    daemon.process.kill()
    await daemon.wait_exit()
    old_pids = [int(n["pid"]) for n in nodes.values()]
    assert all(_alive(p) for p in old_pids)
    records = [r for _, r in pidfile.read_all(daemon.base / "state" / "pids") if r is not None]
    assert sorted(r.pid for r in records) == sorted(old_pids)

    daemon.config.write_text(
        fleet_yaml(daemon.base, [node_yaml(name, "--ready-after", "0.01") for name in ("a", "b")])
    )
    restarted = DaemonUnderTest(daemon.base, daemon.config)
    try:
        await restarted.start()
        new = await restarted.wait_nodes(_all_ready)
        assert not any(_alive(p) for p in old_pids)
        assert not set(old_pids) & {int(n["pid"]) for n in new.values()}
        assert any("fleet.yaml now starts it differently" in line for line in restarted.output)
        assert any("left running by an earlier supervisor" in line for line in restarted.output)
    finally:
        await restarted.close()
