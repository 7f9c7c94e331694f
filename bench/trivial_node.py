"""The node both supervisors run in bench/detect_restart.py: stdlib only, so it starts as fast as Python can.

On start it says READY=1 on NOTIFY_SOCKET (when set) and tells the benchmark its pid and CLOCK_MONOTONIC on
BENCH_SOCKET, then sleeps until killed.
"""

import os
import socket
import time


def main() -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify = os.environ.get("NOTIFY_SOCKET")
    if notify:
        sock.sendto(b"READY=1\n", notify)
    sock.sendto(f"{os.getpid()} {time.monotonic_ns()}".encode(), os.environ["BENCH_SOCKET"])
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
