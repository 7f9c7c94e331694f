"""Re-attach with real processes: a daemon killed with SIGKILL (or detached with SIGUSR2) is replaced by a
new one that adopts the running nodes: same pids, no restart, watchdog and output resumed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from supervisor import pidfile
from supervisor.adopt import Verdict, decide
from supervisor.daemon import EXIT_DETACHED
from supervisor.output_pipe import PipeGone, open_child_pipe, reopen_node_pipe
from tests.supervisor.daemon_harness import DaemonUnderTest, fleet_yaml, node_yaml


def _alive(pid: int) -> bool:
    """Running, not a zombie: an adopted node's exit is seen before its new parent (init) has reaped it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _all_ready(nodes: dict[str, dict[str, Any]]) -> bool:
    return bool(nodes) and all(n["state"] == "ready" for n in nodes.values())


@pytest.fixture
async def first(short_dir: Path) -> AsyncIterator[DaemonUnderTest]:
    config = short_dir / "fleet.yaml"
    config.write_text(fleet_yaml(short_dir, [node_yaml("a"), node_yaml("b")]))
    under_test = DaemonUnderTest(short_dir, config)
    try:
        yield under_test
    finally:
        await under_test.close()
        # Whatever a failed test left of the nodes: they are not the daemon's children any more.
        for _, record in pidfile.read_all(short_dir / "state" / "pids"):
            if record is not None and pidfile.is_alive(record):
                os.killpg(record.pgid, signal.SIGKILL)


async def _kill_daemon(daemon: DaemonUnderTest) -> None:
    assert daemon.process is not None
    daemon.process.kill()
    await daemon.wait_exit()


async def _successor(daemon: DaemonUnderTest) -> DaemonUnderTest:
    following = DaemonUnderTest(daemon.base, daemon.config)
    await following.start()
    return following


async def _fleet_logs(daemon: DaemonUnderTest, node: str) -> list[str]:
    request = {"cmd": "logs", "node": node, "lines": 200, "follow": False}
    replies = await asyncio.to_thread(lambda: list(daemon.client.stream(request, timeout=10.0)))
    return [r["line"] for r in replies if "line" in r]


@pytest.mark.slow
async def test_a_killed_daemon_is_replaced_without_touching_its_nodes(first: DaemonUnderTest) -> None:
    await first.start()
    before = await first.wait_nodes(_all_ready)
    pids = {name: n["pid"] for name, n in before.items()}
    await _kill_daemon(first)
    # Written while no daemon reads: it must neither fail (EPIPE) nor be lost.
    os.kill(pids["a"], signal.SIGUSR1)

    second = await _successor(first)
    try:
        nodes = await second.wait_nodes(_all_ready)
        assert {name: n["pid"] for name, n in nodes.items()} == pids
        assert {name: n["restarts"] for name, n in nodes.items()} == {"a": 0, "b": 0}
        assert any("adopted node a" in line for line in second.output)
        await second.wait_output("test node says 1")
        await second.wait_output("test node warns 1")
        # And what it writes after the adoption reaches the new daemon's log and `fleet logs`.
        os.kill(pids["a"], signal.SIGUSR1)
        await second.wait_output("test node says 2")
        assert any("test node says 2" in line for line in await _fleet_logs(second, "a"))

        # The watchdog resumed: a node that stops pinging after the adoption is killed as hung.
        os.kill(pids["b"], signal.SIGUSR2)
        nodes = await second.wait_nodes(
            lambda n: n["b"]["restarts"] == 1 and n["b"]["state"] == "ready", timeout=10
        )
        assert nodes["b"]["last_exit"]["reason"] == "watchdog"
        assert nodes["b"]["pid"] != pids["b"] and not _alive(pids["b"])
        assert nodes["a"]["pid"] == pids["a"]
        await _kill_daemon(second)
    finally:
        await second.close()

    # The counts carry over to the next daemon, from the state dir.
    third = await _successor(first)
    try:
        nodes = await third.wait_nodes(_all_ready)
        assert nodes["b"]["restarts"] == 1
        assert nodes["b"]["last_exit"]["reason"] == "watchdog"
        assert nodes["b"]["last_recovery_ms"] is not None
        assert nodes["a"]["pid"] == pids["a"] and nodes["a"]["restarts"] == 0
    finally:
        await third.close()
    assert not _alive(pids["a"])  # the last daemon's SIGTERM stopped the adopted node


@pytest.mark.slow
async def test_nodes_gone_during_the_gap_are_recovered_and_a_reused_pid_is_left_alone(
    first: DaemonUnderTest,
) -> None:
    """Also READY tracking across the gap: c says READY=1 during the gap or after the adoption, d never does
    and is killed at its ready_timeout, counted from its spawn under the first daemon."""
    nodes_yaml = [
        node_yaml("a"),
        node_yaml("b"),
        node_yaml("c", "--ready-after", "1.5"),
        node_yaml("d", "--no-ready", extra="ready_timeout: 3s\n"),
    ]
    first.config.write_text(fleet_yaml(first.base, nodes_yaml))
    await first.start()
    before = await first.wait_nodes(
        lambda n: (
            all(n[k]["state"] == "ready" for k in "ab") and all(n[k]["state"] == "recovering" for k in "cd")
        )
    )
    await _kill_daemon(first)
    os.kill(before["a"]["pid"], signal.SIGKILL)
    # b's pid is "reused" by an unrelated process: its pidfile names a live pid with another start time.
    os.killpg(before["b"]["pid"], signal.SIGKILL)
    stranger = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    try:
        path = first.base / "state" / "pids" / "b.pid"
        record = pidfile.PidRecord(**json.loads(path.read_text()))
        pidfile.write(path, dataclasses.replace(record, pid=stranger.pid, pgid=stranger.pid))

        second = await _successor(first)
        try:
            nodes = await second.wait_nodes(
                lambda n: all(n[k]["state"] == "ready" for k in "abc") and n["d"]["restarts"] >= 1
            )
            assert (nodes["c"]["pid"], nodes["c"]["restarts"]) == (before["c"]["pid"], 0)
            assert nodes["d"]["last_exit"]["reason"] == "ready_timeout"
            assert nodes["d"]["pid"] != before["d"]["pid"]
            for name in ("a", "b"):
                assert nodes[name]["restarts"] == 1
                assert nodes[name]["last_exit"]["reason"] == "signal"
                assert nodes[name]["pid"] not in (before[name]["pid"], stranger.pid)
            assert _alive(stranger.pid), "a process that only shares the pid was signalled"
        finally:
            await second.close()
    finally:
        stranger.kill()
        await stranger.wait()


@pytest.mark.slow
async def test_sigusr2_detaches_for_an_upgrade_and_sigterm_still_stops_adopted_nodes(
    first: DaemonUnderTest,
) -> None:
    await first.start()
    before = await first.wait_nodes(_all_ready)
    # A second daemon on the same state dir while the first runs would fight it for the nodes: refused.
    intruder = DaemonUnderTest(first.base, first.config)
    try:
        await intruder.start(wait_ready=False)
        assert await intruder.wait_exit(timeout=10) == 1
        assert any("another supervisor" in line for line in intruder.output)
    finally:
        await intruder.close()
    assert {k: n["pid"] for k, n in (await first.nodes()).items()} == {k: n["pid"] for k, n in before.items()}
    await first.signal(signal.SIGUSR2)
    assert await first.wait_exit(timeout=10) == EXIT_DETACHED
    assert all(_alive(n["pid"]) for n in before.values())

    second = await _successor(first)
    try:
        nodes = await second.wait_nodes(_all_ready)
        assert {k: (n["pid"], n["restarts"]) for k, n in nodes.items()} == {
            k: (n["pid"], 0) for k, n in before.items()
        }
        await second.signal(signal.SIGTERM)
        assert await second.wait_exit(timeout=10) == 0
        assert not any(_alive(n["pid"]) for n in before.values())
    finally:
        await second.close()


def _record(**changes: Any) -> pidfile.PidRecord:
    base = pidfile.PidRecord(
        node="a", trader_id="T-1", pid=1, pgid=1, start_time=5, daemon_pid=2, output_inodes=[7, 8], digest="d"
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("record", "wanted", "alive", "verdict"),
    [
        (_record(), "d", True, Verdict.ADOPT),
        (_record(), "d", False, Verdict.RECOVER),
        (_record(), None, False, Verdict.FORGET),
        (_record(), None, True, Verdict.STOP),
        (_record(), "other", True, Verdict.STOP),
        (_record(output_inodes=None, digest=""), "d", True, Verdict.STOP),
    ],
    ids=["adopt", "died-in-gap", "gone-and-removed", "removed", "changed", "old-supervisor"],
)
def test_decide(record: pidfile.PidRecord, wanted: str | None, alive: bool, verdict: Verdict) -> None:
    assert decide(record, wanted_digest=wanted, alive=alive)[0] is verdict


def test_a_node_writes_on_after_its_reader_died_and_a_new_reader_gets_the_lines() -> None:
    pipe = open_child_pipe()
    script = "import sys; sys.stdin.readline(); print('after', flush=True); sys.stdin.readline()"
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=pipe.child_fd)
    os.close(pipe.child_fd)
    os.close(pipe.read_fd)  # the daemon dies
    assert child.stdin is not None
    try:
        child.stdin.write(b"go\n")
        child.stdin.flush()
        reader = reopen_node_pipe(child.pid, 1, pipe.inode)
        try:
            os.set_blocking(reader, True)
            data = b""
            while not data.endswith(b"\n"):
                data += os.read(reader, 100)
            assert data == b"after\n"
            child.stdin.write(b"end\n")
            child.stdin.close()
            assert child.wait(10) == 0  # no EPIPE, no SIGPIPE
            assert os.read(reader, 100) == b""  # EOF once the node has gone
        finally:
            os.close(reader)
    finally:
        child.kill()
        child.wait()
        child.stdin.close()


def test_a_pipe_other_than_the_recorded_one_is_refused() -> None:
    pipe = open_child_pipe()
    try:
        with pytest.raises(PipeGone, match="not the pipe"):
            reopen_node_pipe(os.getpid(), pipe.child_fd, pipe.inode + 1)
    finally:
        os.close(pipe.child_fd)
        os.close(pipe.read_fd)
