"""nautilus' kernel waits for its engines without spinning.

nautilus 1.231 (`NautilusKernel._check_engines_connected`, `_check_portfolio_initialized`,
`_check_engines_disconnected`) waits for a condition by looping on `await asyncio.sleep(0)`: the event loop
never blocks, so the node's main thread takes a whole core for as long as the condition is false. During a
recovery that is the whole connect (instruments, account, mass status: every venue round trip), and on a
host of two cores that core is taken from the venue's answers, Redis and the other nodes. `bench/recovery.py`
measured it: with 20 ms per venue request, a recovery through a warm spare used 420 ms of CPU against 240 ms
at 0 ms, all of the difference on the main thread.

The replacements check the same conditions with the same timeouts from the kernel's config, and sleep
`POLL_INTERVAL_S` between checks (the loop blocks in epoll meanwhile). A kernel without these methods (a
nautilus upgrade) is refused at start rather than left spinning or waiting on something else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# Between two checks: short against a recovery's few hundred ms, long enough that the wait costs no CPU.
POLL_INTERVAL_S = 0.001

_WAITS = ("_check_engines_connected", "_check_portfolio_initialized", "_check_engines_disconnected")


async def poll_until(
    condition: Callable[[], bool], timeout_s: float, interval_s: float = POLL_INTERVAL_S
) -> bool:
    """True once `condition()` is true, False if it is still false after `timeout_s`; checked at once, then
    every `interval_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval_s)
    return True


def stop_spinning(kernel: Any) -> None:
    """Replace the kernel's three spinning waits, on this instance only."""
    missing = [name for name in _WAITS if not callable(getattr(kernel, name, None))]
    if missing:
        raise RuntimeError(f"nautilus' kernel has no {', '.join(missing)}: review recovery/kernel_waits.py")
    config = kernel._config
    data, execution, portfolio = kernel.data_engine, kernel.exec_engine, kernel.portfolio

    async def engines_connected() -> bool:
        return await poll_until(
            lambda: bool(data.check_connected() and execution.check_connected()), config.timeout_connection
        )

    async def portfolio_initialized() -> bool:
        return await poll_until(lambda: bool(portfolio.initialized), config.timeout_portfolio)

    async def engines_disconnected() -> bool:
        return await poll_until(
            lambda: bool(data.check_disconnected() and execution.check_disconnected()),
            config.timeout_disconnection,
        )

    kernel._check_engines_connected = engines_connected
    kernel._check_portfolio_initialized = portfolio_initialized
    kernel._check_engines_disconnected = engines_disconnected
