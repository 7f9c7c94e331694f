"""NodeRunner with real child processes: crash, hang, crash loop, stop escalation, notify checks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest

from supervisor.config.schema import Duration, ReadinessSpec, RestartSpec, StartLimitSpec, StopSpec
from supervisor.states import ExitReason, NodeState
from tests.supervisor.conftest import TEST_NODE, RecordingObserver, RunnerFactory, node_spec

pytestmark = pytest.mark.slow


def _argv(*flags: str) -> list[str]:
    return [sys.executable, str(TEST_NODE), *flags]


async def test_kill_9_is_restarted_with_reason_signal(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    runner = runners(node_spec("k9"))
    await observer.wait_for(lambda: runner.state is NodeState.READY)
    first_pid = runner.status().pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    await observer.wait_for(lambda: runner.state is NodeState.READY and runner.status().pid != first_pid)
    _, exit_info, will_restart = observer.exits[0]
    assert exit_info.reason is ExitReason.SIGNAL
    assert exit_info.signal == signal.SIGKILL
    assert will_restart
    assert runner.status().restarts == 1
    # The restart is a recovery timed from the detection of the crash.
    report = observer.reports[-1]
    assert report.reason == "signal" and report.result == "ready"
    assert report.full_recovery_ms is not None and report.full_recovery_ms > 0


async def test_hang_is_killed_by_watchdog(runners: RunnerFactory, observer: RecordingObserver) -> None:
    runner = runners(node_spec("hang", command=_argv("--hang-after", "0.3")))
    await observer.wait_for(lambda: observer.exits, timeout=10)
    _, exit_info, will_restart = observer.exits[0]
    assert exit_info.reason is ExitReason.WATCHDOG
    assert will_restart
    # SIGABRT is what a hung Python process gets first; it dies of it.
    assert exit_info.signal == signal.SIGABRT
    await observer.wait_for(lambda: runner.state is NodeState.READY)


async def test_not_ready_in_time_is_killed(runners: RunnerFactory, observer: RecordingObserver) -> None:
    runners(node_spec("slow", command=_argv("--no-ready"), ready_timeout=Duration(0.5), watchdog=None))
    await observer.wait_for(lambda: observer.exits, timeout=10)
    assert observer.exits[0][1].reason is ExitReason.READY_TIMEOUT
    assert observer.reports[0].result == "failed"


async def test_extend_timeout_keeps_a_reconciling_node_alive(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    spec = node_spec(
        "ext", command=_argv("--ready-after", "1.0", "--extend-timeout", "3"), ready_timeout=Duration(0.5)
    )
    runner = runners(spec)
    await observer.wait_for(lambda: runner.state is NodeState.READY, timeout=10)
    assert observer.exits == []


async def test_crash_loop_is_quarantined_after_the_burst(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    restart = RestartSpec(
        backoff_initial=Duration(0.01),
        backoff_max=Duration(0.05),
        reset_after=Duration(60.0),
        start_limit=StartLimitSpec(burst=3, window=Duration(30.0)),
    )
    runner = runners(node_spec("loop", command=_argv("--crash-after", "0"), restart=restart))
    await observer.wait_for(lambda: runner.state is NodeState.QUARANTINED, timeout=15)
    assert len(observer.exits) == 3
    assert all(info.reason is ExitReason.EXIT and info.code == 3 for _, info, _ in observer.exits)
    assert [will for _, _, will in observer.exits] == [True, True, False]
    assert "crash loop" in runner.status().quarantine_reason
    # An operator's start releases it.
    runner.start()
    await observer.wait_for(lambda: len(observer.exits) >= 4, timeout=10)


async def test_a_start_stopped_before_ready_is_reported_stopped_not_failed(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    """An operator's stop (or a reload) during a start ends it on purpose: its report says `stopped`, so a
    routine stop never counts as a failed recovery. A crash before READY is still `failed`."""
    runner = runners(node_spec("halfway", command=_argv("--ready-after", "30"), watchdog=None))
    await observer.wait_for(lambda: runner.state is NodeState.RECOVERING and runner.status().pid is not None)
    await runner.stop()
    assert runner.state is NodeState.STOPPED
    report = observer.reports[-1]
    assert (report.result, report.full_recovery_ms) == ("stopped", None)
    assert "stopped" in report.error

    crashing = runners(node_spec("crashes", command=_argv("--ready-after", "30", "--crash-after", "0.2")))
    await observer.wait_for(lambda: any(r.node == "crashes" for r in observer.reports), timeout=10)
    assert next(r for r in observer.reports if r.node == "crashes").result == "failed"
    await crashing.stop()


async def test_ignored_sigterm_gets_sigkill_after_grace(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    runner = runners(
        node_spec("stubborn", command=_argv("--ignore-sigterm"), stop=StopSpec(grace=Duration(0.5)))
    )
    await observer.wait_for(lambda: runner.state is NodeState.READY)
    started = time.monotonic()
    await runner.stop()
    took = time.monotonic() - started
    assert runner.state is NodeState.STOPPED
    _, exit_info, will_restart = observer.exits[-1]
    assert exit_info.reason is ExitReason.STOPPED and exit_info.signal == signal.SIGKILL
    assert not will_restart
    assert took >= 0.5


async def test_grandchild_holding_stdout_does_not_delay_detection(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    runner = runners(node_spec("gc", command=_argv("--grandchild-holds-stdout")))
    await observer.wait_for(lambda: runner.state is NodeState.READY)
    pid = runner.status().pid
    assert pid is not None
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    await observer.wait_for(lambda: observer.exits, timeout=5)
    # The grandchild lives 30 s and keeps the pipe open; detection must not wait for it.
    assert time.monotonic() - killed < 1.0


async def test_node_wrapped_in_sh_becomes_ready(runners: RunnerFactory, observer: RecordingObserver) -> None:
    # `;true` keeps sh from exec-ing python, so the READY really comes from a child of the wrapper.
    wrapped = ["sh", "-c", f"{sys.executable} {TEST_NODE}; true"]
    runner = runners(node_spec("wrapped", command=wrapped))
    await observer.wait_for(lambda: runner.state is NodeState.READY)
    assert runner.rejected_notify == 0


async def test_fatal_quarantines_without_restart(runners: RunnerFactory, observer: RecordingObserver) -> None:
    runner = runners(node_spec("fatal", command=_argv("--fatal", "corrupt cache entry positions:x")))
    await observer.wait_for(lambda: runner.state is NodeState.QUARANTINED)
    assert len(observer.exits) == 1
    _, exit_info, will_restart = observer.exits[0]
    assert exit_info.reason is ExitReason.FATAL
    assert "corrupt cache entry" in exit_info.detail
    assert not will_restart


async def test_exit_78_quarantines_without_restart(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    runner = runners(node_spec("ex78", command=_argv("--crash-after", "0", "--exit-code", "78")))
    await observer.wait_for(lambda: runner.state is NodeState.QUARANTINED)
    assert [info.reason for _, info, _ in observer.exits] == [ExitReason.FATAL]


async def test_foreign_process_cannot_send_ready(runners: RunnerFactory, observer: RecordingObserver) -> None:
    spec = node_spec("foreign", command=_argv("--foreign-ready", "--no-ready"), ready_timeout=Duration(1.0))
    runner = runners(spec)
    await observer.wait_for(lambda: runner.rejected_notify >= 1, timeout=5)
    assert runner.state is NodeState.RECOVERING
    await observer.wait_for(lambda: observer.exits, timeout=5)
    assert observer.exits[0][1].reason is ExitReason.READY_TIMEOUT


async def test_phases_are_timed_and_reported(runners: RunnerFactory, observer: RecordingObserver) -> None:
    runner = runners(node_spec("ph", command=_argv("--phases", "cache_loaded,reconciled")))
    await observer.wait_for(lambda: runner.state is NodeState.READY)
    names = [p.name for node, p in observer.phases if node == "ph"]
    assert names == ["spawned", "cache_loaded", "reconciled", "ready"]
    pid = runner.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await observer.wait_for(lambda: len(observer.reports) >= 2 and observer.reports[-1].result == "ready")
    report = observer.reports[-1]
    assert [p.name for p in report.phases] == ["detected", "spawned", "cache_loaded", "reconciled", "ready"]
    assert report.position_recovery_ms is not None and report.full_recovery_ms is not None
    assert 0 < report.position_recovery_ms <= report.full_recovery_ms
    since = [p.ms_since_detection for p in report.phases]
    assert since == sorted(since)  # type: ignore[type-var]


async def test_long_lines_are_split_not_blocking(runners: RunnerFactory, observer: RecordingObserver) -> None:
    runner = runners(node_spec("long", command=_argv("--long-line", str(200 * 1024))))
    log_file = runner.paths.log_file
    # The file is written by a background thread: wait until it has the line printed after the long one.
    await observer.wait_for(lambda: log_file.exists() and "test node ready" in log_file.read_text())
    pieces = [line.split(" ")[-1] for line in log_file.read_text().splitlines() if line.endswith("xxxx")]
    assert [len(p) for p in pieces] == [64 * 1024, 64 * 1024, 64 * 1024, 8 * 1024]
    assert set("".join(pieces)) == {"x"}


async def test_mainpid_is_taken_only_from_the_main_pid(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    handed = runners(node_spec("handed", command=_argv("--mainpid-child")))
    await observer.wait_for(lambda: handed.state is NodeState.READY)
    # The spawned process (the process group's leader) handed over to its child: the node's pid is now the
    # child's, a member of the group but not its leader.
    new_main = handed.status().pid
    assert new_main is not None and os.getpgid(new_main) != new_main

    claimed = runners(node_spec("claimed", command=_argv("--mainpid-from-child")))
    await observer.wait_for(lambda: claimed.state is NodeState.READY)
    # Another process of the group may send READY or phases, but not take over as main pid.
    spawned_pid = claimed.status().pid
    assert spawned_pid is not None
    assert os.getpgid(spawned_pid) == spawned_pid
    assert claimed.status().pid == spawned_pid


PLAIN_PROGRAM = [sys.executable, "-c", "import time; print('plain program up', flush=True); time.sleep(60)"]


async def test_a_plain_program_under_notify_readiness_is_killed_at_ready_timeout(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    """What issue 9 reported: a program that does not speak sd_notify never becomes ready."""
    runners(node_spec("plain", command=PLAIN_PROGRAM, ready_timeout=Duration(0.5)))
    await observer.wait_for(lambda: observer.exits, timeout=10)
    assert observer.exits[0][1].reason is ExitReason.READY_TIMEOUT


async def test_a_plain_program_is_ready_after_running_for_a_while(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    spec = node_spec(
        "plain",
        command=PLAIN_PROGRAM,
        ready_timeout=Duration(0.5),
        readiness=ReadinessSpec(mode="running", after=Duration(0.3)),
    )
    runner = runners(spec)
    await observer.wait_for(lambda: runner.state is NodeState.READY, timeout=10)
    [report] = observer.reports
    assert report.result == "ready"
    ready_ms = next(p for p in report.phases if p.name == "ready").epoch_ns
    spawned_ms = next(p for p in report.phases if p.name == "spawned").epoch_ns
    assert (ready_ms - spawned_ms) / 1e9 >= 0.3
    # Past its ready timeout and its watchdog timeout (1 s) without a ping: still running, not killed.
    await asyncio.sleep(1.5)
    assert runner.state is NodeState.READY and observer.exits == []


async def test_a_plain_program_that_exits_before_it_counts_as_ready_is_a_crash(
    runners: RunnerFactory, observer: RecordingObserver
) -> None:
    spec = node_spec(
        "brief",
        command=[sys.executable, "-c", "import sys, time; time.sleep(0.1); sys.exit(4)"],
        readiness=ReadinessSpec(mode="running", after=Duration(1.0)),
    )
    runners(spec)
    await observer.wait_for(lambda: observer.exits, timeout=10)
    _, exit_info, will_restart = observer.exits[0]
    assert (exit_info.reason, exit_info.code, will_restart) == (ExitReason.EXIT, 4, True)
    assert observer.reports[0].result == "failed"
