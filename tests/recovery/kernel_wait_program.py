"""One wait of a real nautilus kernel, with or without `recovery.kernel_waits`, and the CPU it took.

    python tests/recovery/kernel_wait_program.py stock|polite SECONDS

Builds a `TradingNode` with no clients and no cache database, then awaits the kernel's own
`_check_portfolio_initialized` (the portfolio of a node that was never started does not initialize, so the
wait lasts the whole timeout) and `_check_engines_connected` (no clients: connected at once). Prints one JSON
line: what each returned, and the wall and main-thread CPU seconds of the portfolio wait.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from nautilus_trader.config import LoggingConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode

from recovery.kernel_waits import stop_spinning


async def main(mode: str, seconds: float) -> dict[str, Any]:
    config = TradingNodeConfig(
        trader_id="WAIT-001",
        logging=LoggingConfig(log_level="ERROR", log_colors=False),
        timeout_portfolio=seconds,
        load_state=False,
        save_state=False,
    )
    node = TradingNode(config=config, loop=asyncio.get_running_loop())
    kernel = node.kernel
    if mode == "polite":
        stop_spinning(kernel)
    wall, cpu = time.monotonic(), time.thread_time()
    initialized = await kernel._check_portfolio_initialized()
    result = {
        "portfolio_initialized": initialized,
        "wall_s": time.monotonic() - wall,
        "cpu_s": time.thread_time() - cpu,
    }
    result["engines_connected"] = await kernel._check_engines_connected()
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], float(sys.argv[2])))))
