"""Warm spares as real processes (`python -m recovery.spare`), through the pool the supervisor uses.

These spares preload only a small strategy module of the test's own (`--strategies-only`): the protocol is
the same, and a handoff runs `recovery.node.main` for real, which here stops at once on a spec path that
does not exist (exit 78, its reason on stderr). The full node through a spare is in tests/e2e/test_spares.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from supervisor.child import NodeProcess
from supervisor.spares import SparePool
from supervisor.status.spare_metrics import SpareCollector
from tests.recovery.scenarios import until

MODULE = """\
import os

# Read at import: a spare started with one value cannot become a node that has another.
FLAG = os.environ.get("SPARE_TEST_FLAG", "")


class Strategy:
    pass
"""
READY_WITHIN = 30.0


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, _stream: str, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def workdir(short_dir: Path) -> Path:
    (short_dir / "spare_probe_strategy.py").write_text(MODULE)
    return short_dir


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SPARE_TEST_FLAG"}
    return {**env, **extra}


@contextlib.asynccontextmanager
async def pool_of(workdir: Path, count: int = 1, **env: str) -> AsyncIterator[tuple[SparePool, Lines]]:
    output = Lines()
    pool = SparePool(
        name="probe",
        strategies=["spare_probe_strategy:Strategy"],
        env=environment(**env),
        cwd=str(workdir),
        wanted=lambda: count,
        may_start=lambda: True,
        output=output,
        strategies_only=True,
    )
    task = asyncio.create_task(pool.run())
    try:
        async with asyncio.timeout(READY_WITHIN):
            await pool.wait_ready(count)
        yield pool, output
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_handoff_is_consumed_once_and_the_spare_runs_the_node_entry_point(workdir: Path) -> None:
    async with pool_of(workdir) as (pool, _):
        (spare,) = pool.info()
        assert spare.state == "ready" and spare.rss_bytes and spare.private_bytes
        node_output = Lines()
        spec = workdir / "absent-spec.json"
        handoff = await pool.take(["--spec", str(spec)], environment(), str(workdir), node_output)
        assert handoff is not None and handoff.process.pid == spare.pid
        # The same pool, at once: that spare is gone from it and its replacement is not ready yet.
        assert await pool.take(["--spec", "other"], environment(), str(workdir), node_output) is None
        assert await handoff.process.exited == 78  # recovery.node's EX_CONFIG for a spec it cannot read
        await handoff.process.drain_and_close()
        assert any(f"cannot read the node spec {spec}" in line for line in node_output.lines)
        assert pool.handoffs["taken"] == 1 and spare.pid not in [s.pid for s in pool.info()]


async def test_a_spare_reads_one_handoff_and_never_a_second(workdir: Path) -> None:
    """At the protocol level: two handoffs in one write; the spare becomes the first node only, and its end of
    the socket is closed once it has answered."""
    parent, child = socket.socketpair()
    output = Lines()
    argv = [sys.executable, "-m", "recovery.spare", "--handoff-fd", str(child.fileno())]
    argv += ["--strategy", "spare_probe_strategy:Strategy", "--strategies-only"]
    process = await NodeProcess.spawn(
        argv, env=environment(), cwd=workdir, on_line=output, pass_fds=(child.fileno(),)
    )
    child.close()
    try:
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        async with asyncio.timeout(READY_WITHIN):
            assert json.loads(await reader.readline())["event"] == "ready"
        first = {"args": ["--spec", str(workdir / "first.json")], "env": environment(), "cwd": None}
        second = {"args": ["--spec", str(workdir / "second.json")], "env": environment(), "cwd": None}
        writer.write((json.dumps(first) + "\n" + json.dumps(second) + "\n").encode())
        await writer.drain()
        async with asyncio.timeout(READY_WITHIN):
            assert json.loads(await reader.readline()) == {"event": "taken", "pid": process.pid}
            assert await reader.readline() == b""  # closed: nothing more can reach it
            assert await process.exited == 78
        await process.drain_and_close()
        assert any("first.json" in line for line in output.lines)
        assert not any("second.json" in line for line in output.lines)
        writer.close()
        await writer.wait_closed()
    finally:
        process.kill()
        await asyncio.shield(process.exited)


async def test_a_spare_that_dies_is_replaced(workdir: Path) -> None:
    async with pool_of(workdir) as (pool, _):
        (first,) = pool.info()
        os.kill(first.pid, signal.SIGKILL)

        async def replaced() -> bool:
            return [s.pid for s in pool.info() if s.state == "ready"] not in ([], [first.pid])

        await until("another spare is ready", replaced, timeout_s=READY_WITHIN)
        assert pool.replaced == 1
        assert first.pid not in [s.pid for s in pool.info()]


async def test_a_spare_whose_code_changed_on_disk_refuses_and_the_node_starts_cold(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with pool_of(workdir) as (pool, _):
        (spare,) = pool.info()
        (workdir / "spare_probe_strategy.py").write_text(MODULE + "\nVERSION = 2\n")
        with caplog.at_level(logging.WARNING, logger="supervisor.spares"):
            handoff = await pool.take(["--spec", "x.json"], environment(), str(workdir), Lines())
        assert handoff is None and pool.handoffs["refused"] == 1
        assert "spare_probe_strategy.py" in caplog.text and "code changed" in caplog.text

        async def gone() -> bool:
            return not alive(spare.pid)

        await until("the refusing spare is gone", gone, timeout_s=10)


async def test_a_spare_refuses_a_node_whose_environment_its_imports_read_differently(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with pool_of(workdir, SPARE_TEST_FLAG="a") as (pool, _):
        with caplog.at_level(logging.WARNING, logger="supervisor.spares"):
            handoff = await pool.take(
                ["--spec", "x.json"], environment(SPARE_TEST_FLAG="b"), str(workdir), Lines()
            )
        assert handoff is None and pool.handoffs["refused"] == 1
        assert "SPARE_TEST_FLAG" in caplog.text
        # A value the imports never read (a secret, the notify socket) is the handoff's to give.
        await pool.wait_ready()
        handoff = await pool.take(
            ["--spec", str(workdir / "absent.json")],
            environment(SPARE_TEST_FLAG="a", VENUE_SECRET="s3cret"),
            str(workdir),
            Lines(),
        )
        assert handoff is not None
        assert await handoff.process.exited == 78
        await handoff.process.drain_and_close()


async def test_prometheus_shows_each_pools_spares_with_their_memory(workdir: Path) -> None:
    async with pool_of(workdir) as (pool, _):
        registry = CollectorRegistry()
        registry.register(SpareCollector(lambda: [pool]))
        sample = registry.get_sample_value
        assert sample("fleet_spares", {"pool": "probe", "state": "ready"}) == 1
        assert sample("fleet_spares", {"pool": "probe", "state": "starting"}) == 0
        assert (sample("fleet_spare_rss_bytes", {"pool": "probe"}) or 0) > 8 * 2**20
        assert (sample("fleet_spare_private_bytes", {"pool": "probe"}) or 0) > 0
        handoff = await pool.take(["--spec", "x.json"], environment(), str(workdir), Lines())
        assert handoff is not None
        assert sample("fleet_spare_handoffs_total", {"pool": "probe", "result": "taken"}) == 1
        await handoff.process.exited
        await handoff.process.drain_and_close()
