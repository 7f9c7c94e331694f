"""Whatever fails while reloading fleet.yaml, the running fleet stays as it was: an in-process daemon with a
real node, reloaded through a failure of every kind (issue 9). The failures the file itself can cause are
in test_bad_input_daemon.py and the fuzz corpus; here the reading step is made to raise what no valid or
invalid file raises today, to prove that the reload does not depend on knowing the exception."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import supervisor.daemon as daemon_module
from supervisor.config import load_fleet
from supervisor.daemon import Daemon
from supervisor.states import NodeState
from tests.supervisor.conftest import RecordingObserver
from tests.supervisor.daemon_harness import fleet_yaml, node_yaml

pytestmark = pytest.mark.slow


@pytest.fixture
async def running(short_dir: Path) -> AsyncIterator[tuple[Daemon, RecordingObserver]]:
    config = short_dir / "fleet.yaml"
    config.write_text(fleet_yaml(short_dir, [node_yaml("a")]))
    observer = RecordingObserver()
    daemon = Daemon(
        config_path=config,
        spec=load_fleet(config, {"HOME": str(short_dir)}),
        environ={"HOME": str(short_dir), "PATH": "/usr/bin:/bin"},
        observers=[observer],
        watch=False,
    )
    stop = asyncio.Event()

    async def stopped() -> None:
        await stop.wait()

    task = asyncio.create_task(daemon.run(shutdown_trigger=stopped), name="test.daemon")
    try:
        await observer.wait_for(lambda: NodeState.READY in observer.states("a"), timeout=20)
        yield daemon, observer
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


@pytest.mark.parametrize(
    "failure",
    [RecursionError("maximum recursion depth exceeded"), MemoryError(), ValueError("odd"), KeyError("x")],
    ids=lambda e: type(e).__name__,
)
async def test_any_exception_while_reloading_leaves_the_fleet_as_it_was(
    running: tuple[Daemon, RecordingObserver], monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    daemon, observer = running
    runner = daemon.runner("a")
    assert runner is not None
    pid = runner.status().pid
    spec = daemon.spec

    def failing_load(*_: object) -> None:
        raise failure

    monkeypatch.setattr(daemon_module, "load_fleet", failing_load)
    outcome = await daemon.reload(trigger="sighup")
    assert not outcome.applied
    assert type(failure).__name__ in outcome.detail
    assert observer.reloads[-1] == outcome and daemon.last_reload() == outcome
    assert daemon.spec is spec and runner.status().pid == pid and runner.state is NodeState.READY

    monkeypatch.undo()  # the file is fine again: the next reload applies
    config = daemon.config_path
    config.write_text(fleet_yaml(config.parent, [node_yaml("a"), node_yaml("b")]))
    applied = await daemon.reload()
    assert applied.applied and applied.detail == "start b"
    assert runner.status().pid == pid
    await observer.wait_for(lambda: NodeState.READY in observer.states("b"), timeout=20)
