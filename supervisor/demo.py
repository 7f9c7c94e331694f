"""`make demo`: run the example fleet, kill a node at a random moment, show the crash being detected and the
node restarted, then keep running until Ctrl-C.

Everything it starts lives in a temporary directory (runtime, state, logs) and is stopped on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from supervisor.cli import render_status
from supervisor.control_client import ControlClient
from supervisor.notify_server import NotifyEndpoint

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "fleet.yaml"
# The example fleet's venue credentials: the emulator's demo account (nothing real).
DEMO_ENV = {"EMULATOR_API_KEY": "demo-key", "EMULATOR_API_SECRET": "demo-secret"}


def say(text: str = "") -> None:
    print(text, flush=True)


async def fleet_status(client: ControlClient) -> dict[str, Any]:
    return await asyncio.to_thread(client.request, {"cmd": "status"})


async def wait_for(client: ControlClient, what: str, predicate: Any, within: float = 30.0) -> dict[str, Any]:
    """Ask the daemon every 100 ms until `predicate(nodes)` holds (a demo has no need for more)."""
    deadline = time.monotonic() + within
    while True:
        reply = await fleet_status(client)
        nodes = {n["name"]: n for n in reply["nodes"]}
        if predicate(nodes):
            return nodes
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nf-demo-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            **DEMO_ENV,
            "RUNTIME_DIRECTORY": str(work / "run"),
            "STATE_DIRECTORY": str(work / "state"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        say(f"demo: starting `fleet run --config {EXAMPLE.relative_to(REPO)}` (state in {work})")
        # Like systemd, the demo learns that the daemon is up from its READY=1.
        daemon_ready = asyncio.Event()

        def on_notify(fields: dict[str, str], _pid: int) -> None:
            if fields.get("READY") == "1":
                daemon_ready.set()

        endpoint = NotifyEndpoint(work / "systemd.sock", on_notify)
        endpoint.open()
        env["NOTIFY_SOCKET"] = str(endpoint.path)
        daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "supervisor",
            "run",
            "--config",
            str(EXAMPLE),
            env=env,
            start_new_session=True,
        )
        client = ControlClient(work / "run" / "control.sock")
        try:
            started = asyncio.create_task(daemon_ready.wait(), name="demo.daemon-ready")
            exited = asyncio.create_task(daemon.wait(), name="demo.daemon-exited")
            await asyncio.wait({started, exited}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            if not daemon_ready.is_set():
                exited.cancel()
                say("demo: the daemon did not start (see its log above)")
                return 1
            await run_demo(client, work)
            say("\ndemo: the fleet keeps running. In another shell, with")
            say(f"      export FLEET_SOCKET={work / 'run' / 'control.sock'}")
            say("      try `fleet status`, `fleet logs NODE -f`, `fleet restart NODE`. Ctrl-C stops all.")
            await daemon.wait()
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        finally:
            if daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(daemon.wait(), 30)
            endpoint.close()
            say(f"demo: daemon exited with {daemon.returncode}")
    return 0


async def run_demo(client: ControlClient, work: Path) -> None:
    nodes = await wait_for(
        client, "every node ready", lambda n: n and all(v["state"] == "ready" for v in n.values())
    )
    say("\n$ fleet status")
    say(render_status(list(nodes.values()), now=time.time()))

    victim = random.choice(sorted(nodes))
    pause = random.uniform(0.5, 3.0)
    say(f"\ndemo: in {pause:.1f}s, kill -9 node {victim} (pid {nodes[victim]['pid']})")
    await asyncio.sleep(pause)
    old_pid = nodes[victim]["pid"]
    killed = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    nodes = await wait_for(
        client,
        f"{victim} back",
        lambda n: n[victim]["state"] == "ready" and n[victim]["pid"] != old_pid,
    )
    node = nodes[victim]
    last_exit = node["last_exit"]
    say(
        f"demo: {victim} was detected dead ({last_exit['reason']}, signal {last_exit['signal']}) "
        f"and is ready again as pid {node['pid']}: kill -> ready {node['last_recovery_ms']:.0f} ms "
        f"(seen by this demo after {(time.monotonic() - killed) * 1000:.0f} ms of asking every 100 ms)"
    )
    say("\n$ fleet status")
    say(render_status(list(nodes.values()), now=time.time()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
