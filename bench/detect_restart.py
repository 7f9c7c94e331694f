"""Crash detection and restart latency: nautilus-fleet's supervisor against supervisord, same node, same run.

    .venv/bin/python bench/detect_restart.py [--kills 50]

For each of >= 50 `kill -9` of a trivial node (bench/trivial_node.py) it measures
- detection: kill -> the supervisor saw the exit (ours: the `detected` phase, when the pidfd turns readable;
  supervisord: an event listener's receipt of PROCESS_STATE_EXITED, i.e. supervisord saw it plus dispatch);
- kill -> new process READY: kill -> the new node process reports itself started (CLOCK_MONOTONIC, one host).
supervisord is installed from PyPI into a temporary venv of its own (its import name is also `supervisor`).
Ours runs with `reset_after` 50 ms (so each kill is a "first crash after stable running") and no backoff;
supervisord with autorestart=true, startsecs=0, startretries large.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from supervisor.clock import SystemClock  # noqa: E402
from supervisor.config.schema import (  # noqa: E402
    Duration,
    NodeSpec,
    RestartSpec,
    StartLimitSpec,
)
from supervisor.events import AuditResult, ExitInfo, NodeStatus, PhaseMark, RecoveryReport, ReloadOutcome  # noqa: E402
from supervisor.node_logs import NodeLogWriter, NodeOutput  # noqa: E402
from supervisor.node_runner import NodePaths, NodeRunner  # noqa: E402

TRIVIAL_NODE = REPO / "bench" / "trivial_node.py"
STABLE_SECONDS = 0.1  # a node runs this long before it is killed (longer than our reset_after)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class StartReports:
    """Receives (pid, monotonic ns) datagrams: from every trivial node start, or from the exit listener."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    async def next_start(self, within: float = 10.0) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 256), within)
        pid, mono = data.decode().split()
        return int(pid), int(mono)

    def close(self) -> None:
        self.sock.close()


class _Detections:
    def __init__(self) -> None:
        self.detected: asyncio.Queue[int] = asyncio.Queue()

    def node_status(self, status: NodeStatus) -> None:
        pass

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None:
        pass

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        if phase.name == "detected":
            self.detected.put_nowait(phase.mono_ns)

    def recovery_report(self, report: RecoveryReport) -> None:
        pass

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None:
        pass

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None:
        pass

    def reload_outcome(self, outcome: ReloadOutcome) -> None:
        pass

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        pass

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        pass


async def bench_ours(kills: int, work: Path) -> tuple[list[float], list[float]]:
    reports = StartReports(work / "ours.sock")
    observer = _Detections()
    writer = NodeLogWriter()
    writer.start()
    spec = NodeSpec(
        name="trivial",
        trader_id="BENCH-001",
        command=[sys.executable, str(TRIVIAL_NODE)],
        restart=RestartSpec(
            backoff_initial=Duration(0.01),
            backoff_max=Duration(0.01),
            reset_after=Duration(0.05),
            start_limit=StartLimitSpec(burst=10_000, window=Duration(1.0)),
        ),
        watchdog=None,
    )
    paths = NodePaths(
        notify_socket=work / "n" / "trivial",
        pidfile=work / "trivial.pid",
        spec_file=work / "trivial.json",
        log_file=work / "trivial.log",
    )
    runner = NodeRunner(
        spec=spec,
        argv=list(spec.command or []),
        env={**os.environ, "BENCH_SOCKET": str(reports.path)},
        paths=paths,
        spec_payload=lambda s: {"name": s.name},
        output=NodeOutput(node="trivial", path=paths.log_file, writer=writer),
        observer=observer,
        clock=SystemClock(),
    )
    task = asyncio.create_task(runner.run(), name="bench.node[trivial]")
    detection: list[float] = []
    to_ready: list[float] = []
    try:
        pid, _ = await reports.next_start()
        for _ in range(kills):
            await asyncio.sleep(STABLE_SECONDS)
            t0 = time.monotonic_ns()
            os.kill(pid, signal.SIGKILL)
            detected = await asyncio.wait_for(observer.detected.get(), 10)
            pid, started = await reports.next_start()
            detection.append((detected - t0) / 1e6)
            to_ready.append((started - t0) / 1e6)
    finally:
        await runner.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.stop()
        reports.close()
    return detection, to_ready


LISTENER = textwrap.dedent(
    """
    import socket, sys, time
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    while True:
        sys.stdout.write("READY\\n"); sys.stdout.flush()
        header = dict(x.split(":") for x in sys.stdin.readline().split())
        body = sys.stdin.read(int(header["len"]))
        if header["eventname"] == "PROCESS_STATE_EXITED":
            out.sendto(f"0 {time.monotonic_ns()}".encode(), sys.argv[1])
        sys.stdout.write("RESULT 2\\nOK"); sys.stdout.flush()
    """
)


def supervisord_venv(work: Path) -> Path:
    venv = work / "supervisord-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "supervisor"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return venv


async def bench_supervisord(kills: int, work: Path) -> tuple[list[float], list[float]]:
    venv = await asyncio.to_thread(supervisord_venv, work)
    reports = StartReports(work / "theirs.sock")
    exits = StartReports(work / "exits.sock")
    (work / "listener.py").write_text(LISTENER)
    conf = work / "supervisord.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            [supervisord]
            nodaemon=true
            logfile={work}/supervisord.log
            pidfile={work}/supervisord.pid

            [unix_http_server]
            file={work}/supervisor.sock

            [program:trivial]
            command={sys.executable} {TRIVIAL_NODE}
            environment=BENCH_SOCKET="{reports.path}"
            autorestart=true
            startsecs=0
            startretries=100000
            stopsignal=KILL

            [eventlistener:exits]
            command={sys.executable} {work}/listener.py {exits.path}
            events=PROCESS_STATE_EXITED
            """
        )
    )
    daemon = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "supervisord"),
        "-c",
        str(conf),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    detection: list[float] = []
    to_ready: list[float] = []
    try:
        pid, _ = await reports.next_start(within=30)
        for _ in range(kills):
            await asyncio.sleep(STABLE_SECONDS)
            t0 = time.monotonic_ns()
            os.kill(pid, signal.SIGKILL)
            pid, started = await reports.next_start()
            _, detected = await exits.next_start()
            detection.append((detected - t0) / 1e6)
            to_ready.append((started - t0) / 1e6)
    finally:
        daemon.terminate()
        await asyncio.wait_for(daemon.wait(), 10)
        reports.close()
        exits.close()
    return detection, to_ready


def summary(name: str, detection: list[float], to_ready: list[float]) -> dict[str, float]:
    figures = {
        "detect_p50": statistics.median(detection),
        "detect_p95": percentile(detection, 95),
        "detect_p99": percentile(detection, 99),
        "ready_p50": statistics.median(to_ready),
        "ready_p95": percentile(to_ready, 95),
    }
    print(
        f"{name:<13} n={len(detection):<4} detection ms p50 {figures['detect_p50']:8.2f}  p95 "
        f"{figures['detect_p95']:8.2f}  p99 {figures['detect_p99']:8.2f}   kill->READY ms p50 "
        f"{figures['ready_p50']:8.2f}  p95 {figures['ready_p95']:8.2f}"
    )
    return figures


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--skip-supervisord", action="store_true")
    args = parser.parse_args()
    if args.kills < 50:
        print("note: fewer than 50 kills; the README figures use >= 50", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmp:
        work = Path(tmp)
        ours = summary("nautilus-fleet", *await bench_ours(args.kills, work))
        if args.skip_supervisord:
            return 0
        theirs = summary("supervisord", *await bench_supervisord(args.kills, work))
    print(
        f"ratio supervisord/ours: detection p99 x{theirs['detect_p99'] / ours['detect_p99']:.0f}, "
        f"kill->READY p95 x{theirs['ready_p95'] / ours['ready_p95']:.1f}"
    )
    print(
        f"targets: detection p99 <= 5 ms: {'met' if ours['detect_p99'] <= 5 else 'MISSED'}; "
        f"kill->READY p95 <= 100 ms: {'met' if ours['ready_p95'] <= 100 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
