"""nautilus' kernel waits for its engines and portfolio without taking a core (recovery/kernel_waits.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from recovery.kernel_waits import poll_until, stop_spinning
from tests.recovery.conftest import REPO

WAIT_S = 1.0


async def run_wait(mode: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "tests" / "recovery" / "kernel_wait_program.py"),
        mode,
        str(WAIT_S),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_a_real_kernels_wait_no_longer_spins_and_keeps_its_timeout_and_answers() -> None:
    """The stock kernel's wait takes its main thread's CPU for the whole wait; ours the same wait, the same
    answers (portfolio not initialized after the timeout, engines without clients connected), a small part
    of it."""
    stock, polite = await run_wait("stock"), await run_wait("polite")
    for result in (stock, polite):
        assert result["portfolio_initialized"] is False
        assert result["engines_connected"] is True
        assert result["wall_s"] >= WAIT_S * 0.95
    assert polite["wall_s"] < WAIT_S + 0.5
    assert polite["cpu_s"] < WAIT_S * 0.25, polite
    assert stock["cpu_s"] > 3 * polite["cpu_s"], (stock, polite)


async def test_poll_until_answers_as_soon_as_the_condition_holds() -> None:
    flag = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, flag.set)
    assert await poll_until(flag.is_set, timeout_s=5.0) is True
    assert flag.is_set()


async def test_poll_until_gives_up_after_its_timeout_and_checks_once_before_waiting() -> None:
    checks: list[int] = []

    def never() -> bool:
        checks.append(1)
        return False

    assert await poll_until(never, timeout_s=0.05) is False
    assert len(checks) >= 2
    assert await poll_until(lambda: True, timeout_s=0.0) is True


def test_a_kernel_without_the_waits_is_refused_rather_than_left_spinning() -> None:
    """A nautilus upgrade that renames the waits fails the node's start with the file to review."""
    kernel = SimpleNamespace(_check_engines_connected=lambda: None)
    with pytest.raises(RuntimeError, match="_check_portfolio_initialized, _check_engines_disconnected"):
        stop_spinning(kernel)
