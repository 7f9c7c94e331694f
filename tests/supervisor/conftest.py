"""Supervisor test fixtures: a recording observer and real node runners (tests/supervisor/programs)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.clock import SystemClock
from supervisor.config.schema import Duration, NodeSpec, RestartSpec, StartLimitSpec, StopSpec, WatchdogSpec
from supervisor.events import AuditResult, ExitInfo, NodeStatus, PhaseMark, RecoveryReport, ReloadOutcome
from supervisor.node_logs import NodeLogWriter, NodeOutput
from supervisor.node_runner import NodePaths, NodeRunner
from supervisor.reconcile_gate import NodeGate
from supervisor.states import NodeState

PROGRAMS = Path(__file__).parent / "programs"
TEST_NODE = PROGRAMS / "test_node.py"
REPO = Path(__file__).resolve().parents[2]


class RecordingObserver:
    """Keeps everything the supervisor publishes; tests wait on conditions with a bounded timeout."""

    def __init__(self) -> None:
        self.statuses: list[NodeStatus] = []
        self.exits: list[tuple[NodeStatus, ExitInfo, bool]] = []
        self.phases: list[tuple[str, PhaseMark]] = []
        self.reports: list[RecoveryReport] = []
        self.removed: list[str] = []
        self.summaries: list[str] = []
        self.reloads: list[ReloadOutcome] = []
        self.queue_depths: list[tuple[str, int]] = []
        self.audits: list[AuditResult] = []
        self._changed = asyncio.Event()

    def _poke(self) -> None:
        self._changed.set()

    def node_status(self, status: NodeStatus) -> None:
        self.statuses.append(status)
        self._poke()

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None:
        self.exits.append((status, exit_info, will_restart))
        self._poke()

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        self.phases.append((node.name, phase))
        self._poke()

    def recovery_report(self, report: RecoveryReport) -> None:
        self.reports.append(report)
        self._poke()

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None:
        self.removed.append(name)
        self._poke()

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None:
        self.summaries.append(summary)
        self._poke()

    def reload_outcome(self, outcome: ReloadOutcome) -> None:
        self.reloads.append(outcome)
        self._poke()

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        self.queue_depths.append((group, depth))
        self._poke()

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        self.audits.append(result)
        self._poke()

    def states(self, node: str) -> list[NodeState]:
        return [s.state for s in self.statuses if s.name == node]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate()` is truthy; fail after `timeout`.

        Checked on every published event, and every 50 ms for state that publishes nothing (counters).
        """
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if result:
                    return result
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)


def run_fleet(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`fleet ARGS...` as a user runs it, from the repository's top directory (or `cwd`)."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=60,
        check=False,
        cwd=cwd or REPO,
    )


def node_spec(name: str = "n1", *, argv: list[str] | None = None, **overrides: Any) -> NodeSpec:
    fields: dict[str, Any] = {
        "name": name,
        "trader_id": f"TESTER-{name.upper().replace('_', '')}",
        "command": argv or [sys.executable, str(TEST_NODE)],
        "restart": RestartSpec(
            backoff_initial=Duration(0.05),
            backoff_max=Duration(0.2),
            reset_after=Duration(30.0),
            start_limit=StartLimitSpec(burst=5, window=Duration(30.0)),
        ),
        "stop": StopSpec(grace=Duration(2.0)),
        "watchdog": WatchdogSpec(timeout=Duration(1.0)),
        "ready_timeout": Duration(5.0),
    }
    fields.update(overrides)
    return NodeSpec(**fields)


class RunnerFactory:
    def __init__(self, base: Path, observer: RecordingObserver, writer: NodeLogWriter) -> None:
        self.base = base
        self.observer = observer
        self.writer = writer
        self.runners: list[tuple[NodeRunner, asyncio.Task[None]]] = []

    def __call__(
        self, spec: NodeSpec, *, argv: list[str] | None = None, gate: NodeGate | None = None
    ) -> NodeRunner:
        """A runner with its task started; an enabled spec starts the node at once. `argv` runs another
        program than the spec's command (a strategy node's spec with the test node)."""
        argv = argv if argv is not None else list(spec.command or [])
        assert argv
        paths = NodePaths(
            notify_socket=self.base / "n" / spec.name,
            pidfile=self.base / "pids" / f"{spec.name}.pid",
            spec_file=self.base / "specs" / f"{spec.name}.json",
            log_file=self.base / "logs" / f"{spec.name}.log",
        )
        runner = NodeRunner(
            spec=spec,
            argv=argv,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            paths=paths,
            spec_payload=lambda s: {"name": s.name, "trader_id": s.trader_id},
            output=NodeOutput(node=spec.name, path=paths.log_file, writer=self.writer),
            observer=self.observer,
            clock=SystemClock(),
            gate=gate,
        )
        task = asyncio.create_task(runner.run(), name=f"node[{spec.name}]")
        self.runners.append((runner, task))
        return runner

    async def close(self) -> None:
        for runner, _ in self.runners:
            await asyncio.wait_for(runner.stop(), 15)
        for _, task in self.runners:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
async def runners(short_dir: Path, observer: RecordingObserver) -> AsyncIterator[RunnerFactory]:
    writer = NodeLogWriter()
    writer.start()
    factory = RunnerFactory(short_dir, observer, writer)
    try:
        yield factory
    finally:
        await factory.close()
        writer.stop()
