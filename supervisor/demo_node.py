"""A minimal node for `command:` entries: it speaks the notify protocol and does nothing else.

Useful to try the supervisor without nautilus, and as the smallest example of a node of your own:
say READY=1 when ready, ping the watchdog from the loop that does the work, exit non-zero on failure.

    python -m supervisor.demo_node [--name NAME] [--startup SECONDS] [--heartbeat SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time

from supervisor.notify import Notifier


async def run(name: str, startup: float, heartbeat: float) -> int:
    notifier = Notifier()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{name}: pid {os.getpid()} starting", flush=True)
    if startup > 0:
        notifier.status("starting")
        await asyncio.sleep(startup)
    notifier.ready(status="running")
    print(f"{name}: ready", flush=True)
    interval = notifier.watchdog_interval or 1.0
    last_beat = time.monotonic()
    while not stop.is_set():
        notifier.watchdog()
        if time.monotonic() - last_beat >= heartbeat:
            print(f"{name}: alive", flush=True)
            last_beat = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(interval, heartbeat))
    notifier.stopping()
    print(f"{name}: stopping", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.demo_node")
    parser.add_argument("--name", default=os.environ.get("FLEET_NODE", "demo"))
    parser.add_argument("--startup", type=float, default=0.2, help="seconds before READY=1")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds between 'alive' lines")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.name, args.startup, args.heartbeat))


if __name__ == "__main__":
    sys.exit(main())
