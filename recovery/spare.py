"""A warm spare: `python -m recovery.spare --handoff-fd N [--strategy package.module:Class]...`.

It does what costs a strategy node most of its start (Python, nautilus, this library and the strategies'
modules: about 1.3 s of imports), then waits on an inherited socket for the supervisor to hand it a node.
Until then it holds no venue or Redis connection, no spec and no secrets, and writes nothing. On the
handoff it becomes that node through the same `recovery.node.main` that `python -m recovery.node` runs.

The socket carries one JSON line each way, and each is used once:

    spare -> supervisor   {"event": "ready", "pid": ..., "import_ms": ...}   (or "failed" with an error)
    supervisor -> spare   {"args": [...node args...], "env": {...}, "cwd": ... | null}
    spare -> supervisor   {"event": "taken"} and the spare closes its end (or "refused" with a reason)

A refusal means the spare's imports may not be what a cold start would import now: a source file of an
imported module changed on disk, or an environment variable read while importing (or by the interpreter
at its start, PYTHON*/LD_*) has another value in the node's environment. The supervisor then starts the
node cold. EOF before a handoff (the supervisor went away or retired it) ends the spare with exit 0.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# What `python -m recovery.node` imports before it reports anything, plus what the node imports on its way
# to READY (lazily, inside functions): a spare pays for all of it in advance.
PRELOAD = (
    "nautilus_trader.live.node",
    "recovery.node",
    "recovery.lifecycle",
    "recovery.build",
    "recovery.binance.client",
    "recovery.binance.factory",
    "recovery.gate",
    "recovery.fleet_limiter",
    "recovery.fill_window",
    "recovery.cache_scan",
    "recovery.cache_repair",
    "supervisor.rate_budget",
    "supervisor.config.loader",
    "redis.asyncio",
    "nautilus_trader.adapters.binance",
    "nautilus_trader.cache.database",
    "nautilus_trader.serialization.serializer",
)
# Read by native code while the spare starts and imports, where the recording below cannot see it: the
# interpreter (PYTHON*), the dynamic linker (LD_*), numpy's OpenBLAS (its thread pool starts on import) and
# the jemalloc that nautilus' Rust library starts a thread of on import (MALLOC_CONF, _RJEM_MALLOC_CONF).
# nautilus' own variables (NAUTILUS_WORKER_THREADS, RUST_LOG, RUST_BACKTRACE, ...) are read when the node
# builds its runtime and logger, after the handoff, so the node's values apply to them.
START_ENV_PREFIXES = ("PYTHON", "LD_", "OPENBLAS_", "OMP_", "MKL_", "MALLOC_", "_RJEM_", "LC_")
# The interpreter sets its locale from these when it starts, and the time module reads TZ when imported.
START_ENV_KEYS = frozenset({"LANG", "LANGUAGE", "TZ"})
# A handoff message is a spec path, a few flags and an environment; this bounds what the spare reads.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
EXIT_IMPORT_FAILED = 78  # EX_CONFIG: a strategy module that does not import will not import next time


class EnvReads:
    """The environment variables looked up (not merely iterated over) while a block runs."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    @contextmanager
    def recording(self) -> Iterator[None]:
        cls = type(os.environ)
        original = cls.__getitem__
        keys = self.keys

        def getitem(env: Any, key: str) -> Any:
            # `dict(os.environ)` and friends read every key through __iter__: that is a copy, not a
            # dependency on a value (and a copy made now would keep the spare's values, which we check below
            # only for keys actually looked up).
            if sys._getframe(1).f_code.co_name != "__iter__":
                keys.add(key)
            return original(env, key)

        cls.__getitem__ = getitem  # type: ignore[method-assign]
        try:
            yield
        finally:
            cls.__getitem__ = original  # type: ignore[method-assign]


def code_files() -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every imported module's source outside the interpreter's own installation: the
    project's and the user's code (an editable install or a strategy package beside fleet.yaml)."""
    roots = tuple({sys.base_prefix, sys.prefix, sys.exec_prefix})
    files: dict[str, tuple[int, int]] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or path.startswith(roots):
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        files[path] = (stat.st_mtime_ns, stat.st_size)
    return files


def changed_files(before: Mapping[str, tuple[int, int]]) -> list[str]:
    changed = []
    for path, seen in before.items():
        try:
            stat = os.stat(path)
        except OSError:
            changed.append(path)
            continue
        if (stat.st_mtime_ns, stat.st_size) != seen:
            changed.append(path)
    return changed


def refusal(
    message: Mapping[str, Any],
    *,
    started_env: Mapping[str, str],
    env_reads: Iterable[str],
    code: Mapping[str, tuple[int, int]],
) -> str | None:
    """Why this spare cannot become the node it is handed (None: it can)."""
    malformed = _malformed(message)
    if malformed is not None:
        return malformed
    env, cwd = message["env"], message.get("cwd")
    if cwd is not None and Path(cwd).resolve() != Path.cwd().resolve():
        return f"the node runs in {cwd}, the spare was started in {os.getcwd()}"
    keys = set(env_reads) | START_ENV_KEYS
    keys |= {k for k in (*env, *started_env) if k.startswith(START_ENV_PREFIXES)}
    differing = sorted(k for k in keys if env.get(k) != started_env.get(k))
    if differing:
        return f"environment read at import differs: {', '.join(differing)}"
    changed = changed_files(code)
    if changed:
        return f"code changed on disk since the spare imported it: {', '.join(sorted(changed)[:5])}"
    return None


def _malformed(message: Mapping[str, Any]) -> str | None:
    args, env, cwd = message.get("args"), message.get("env"), message.get("cwd")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return "the handoff has no node arguments"
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        return "the handoff has no environment"
    if cwd is not None and not isinstance(cwd, str):
        return "the handoff's working directory is not a path"
    return None


def preload(strategies: Sequence[str], *, node_modules: bool = True) -> None:
    for name in PRELOAD if node_modules else ():
        importlib.import_module(name)
    for path in strategies:
        module, _, _attr = path.partition(":")
        importlib.import_module(module)


def read_line(channel: socket.socket) -> dict[str, Any] | None:
    """One JSON line from the supervisor; None on EOF (retired, or the supervisor is gone). Reads byte
    batches but never past the first newline's message: anything after it is ignored, never a second
    handoff."""
    buf = bytearray()
    while b"\n" not in buf:
        chunk = channel.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > MAX_MESSAGE_BYTES:
            return {}
    line = bytes(buf[: buf.index(b"\n")])
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def send(channel: socket.socket, message: Mapping[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def become_node(message: Mapping[str, Any]) -> int:
    """From here on this process is the node, exactly as `python -m recovery.node ARGS` with that
    environment would be (its imports already done)."""
    env: dict[str, str] = message["env"]
    os.environ.clear()  # unsetenv for each: what nautilus' Rust side reads later sees the node's values
    os.environ.update(env)
    args: list[str] = list(message["args"])
    import recovery.node

    sys.argv = [recovery.node.__file__ or sys.argv[0], *args]  # as `python -m recovery.node ARGS` sets it
    return recovery.node.main(args)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m recovery.spare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--handoff-fd", type=int, required=True, help="the inherited socket's descriptor")
    parser.add_argument("--strategy", action="append", default=[], help="a strategy import path to preload")
    parser.add_argument(
        "--strategies-only",
        action="store_true",
        help="preload the strategies only, not nautilus and the node (tests of the protocol: fast, and slow "
        "at the handoff instead)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    channel = socket.socket(fileno=args.handoff_fd)
    os.set_inheritable(channel.fileno(), False)  # the node's own children never see it
    started_env = dict(os.environ)
    began = time.monotonic()
    reads = EnvReads()
    try:
        with reads.recording():
            preload(args.strategy, node_modules=not args.strategies_only)
    except Exception as exc:  # an import error is the user's strategy failing: say which, then stop
        send(channel, {"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return EXIT_IMPORT_FAILED
    code = code_files()
    # What the imports built lives as long as the process: keep the node's collections from walking it.
    gc.collect()
    gc.freeze()
    import_ms = round((time.monotonic() - began) * 1000, 1)
    try:
        send(channel, {"event": "ready", "pid": os.getpid(), "import_ms": import_ms})
    except OSError:
        return 0  # the supervisor went away while we imported
    message = read_line(channel)
    if message is None:
        return 0
    problem = refusal(message, started_env=started_env, env_reads=reads.keys, code=code)
    if problem is not None:
        send(channel, {"event": "refused", "reason": problem})
        channel.close()
        return 0
    send(channel, {"event": "taken", "pid": os.getpid()})
    channel.close()  # the one handoff is consumed: nothing can reach this process through it again
    return become_node(message)


if __name__ == "__main__":
    sys.exit(main())
