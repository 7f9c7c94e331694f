"""The real daemon (`python -m supervisor run`) as a benchmark's child process."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path

from supervisor.control_client import ControlClient

REPO = Path(__file__).resolve().parents[1]


async def start_daemon(
    config: Path, env: Mapping[str, str], log_path: Path, client: ControlClient
) -> asyncio.subprocess.Process:
    """Start the daemon in a session of its own (its log, stderr, to `log_path`) and return once its control
    socket answers (at most 60 s)."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "supervisor", "run", "--config", str(config),
            env=dict(env), cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(OSError, ValueError):
                await asyncio.to_thread(client.probe)
                return process
            await asyncio.sleep(0.2)
