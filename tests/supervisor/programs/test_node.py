"""A small real node for supervisor tests: speaks the notify protocol and misbehaves on request.

Usage: python test_node.py [--ready-after S] [--no-ready] [--crash-after S] [--exit-code N] [--hang-after S]
       [--ignore-sigterm] [--fatal TEXT] [--ping/--no-ping] [--grandchild-holds-stdout] [--foreign-ready]
       [--phases a,b,c] [--long-line N] [--spawn-via-sh]

Signals: SIGUSR1 makes it print a numbered line ("test node says N"); SIGUSR2 makes it stop pinging.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from supervisor.notify import Notifier


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--no-ready", action="store_true")
    parser.add_argument("--crash-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--hang-after", type=float, default=None)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--fatal", default=None)
    parser.add_argument("--no-ping", action="store_true")
    parser.add_argument("--grandchild-holds-stdout", action="store_true")
    parser.add_argument("--foreign-ready", action="store_true")
    parser.add_argument("--phases", default="")
    parser.add_argument("--long-line", type=int, default=0)
    parser.add_argument("--extend-timeout", type=float, default=None)
    parser.add_argument("--mainpid-child", action="store_true", help="hand MAINPID to a child of ours")
    parser.add_argument("--mainpid-from-child", action="store_true", help="a child claims MAINPID for itself")
    args = parser.parse_args()

    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    notifier = Notifier()
    said = [0]
    silent = [False]

    def say(_sig: int, _frame: object) -> None:
        said[0] += 1
        print(f"test node says {said[0]}", flush=True)
        print(f"test node warns {said[0]}", file=sys.stderr, flush=True)

    def go_silent(_sig: int, _frame: object) -> None:
        silent[0] = True

    signal.signal(signal.SIGUSR1, say)
    signal.signal(signal.SIGUSR2, go_silent)
    print(f"test node {os.getpid()} starting", flush=True)
    if args.grandchild_holds_stdout:
        # A grandchild in its own session (so killing our group spares it) that keeps our stdout open.
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True, stdout=sys.stdout
        )
    if args.foreign_ready:
        # A process outside our process group tries to speak for us.
        subprocess.run(
            [sys.executable, "-c", "from supervisor.notify import Notifier; Notifier().ready()"],
            start_new_session=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        )
    if args.long_line:
        sys.stdout.write("x" * args.long_line + "\n")
        sys.stdout.flush()
    if args.mainpid_child or args.mainpid_from_child:
        # A child in our process group (no new session), like a wrapper's real worker.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        if args.mainpid_child:
            notifier.send({"MAINPID": str(child.pid)})
        else:
            claim = (
                "import os; from supervisor.notify import Notifier; "
                "Notifier().send({'MAINPID': str(os.getpid())})"
            )
            repo = str(Path(__file__).resolve().parents[3])
            subprocess.run([sys.executable, "-c", claim], check=True, env={**os.environ, "PYTHONPATH": repo})
    if args.extend_timeout is not None:
        notifier.extend_timeout(args.extend_timeout)
    for phase in filter(None, args.phases.split(",")):
        notifier.phase(phase, {"node_pid": os.getpid()})
    if args.fatal:
        notifier.fatal(args.fatal, {"key": "positions:x"})
        time.sleep(0.2)
        return 1
    time.sleep(args.ready_after)
    if not args.no_ready:
        notifier.ready(status="ready")
        print("test node ready", flush=True)
    interval = notifier.watchdog_interval or 0.5
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if args.crash_after is not None and elapsed >= args.crash_after:
            print(f"test node exiting with {args.exit_code}", flush=True)
            return int(args.exit_code)
        if args.hang_after is not None and elapsed >= args.hang_after:
            print("test node hanging", flush=True)
            while True:
                time.sleep(3600)
        if not args.no_ping and not silent[0]:
            notifier.watchdog()
        time.sleep(min(interval, 0.05))


if __name__ == "__main__":
    sys.exit(main())
