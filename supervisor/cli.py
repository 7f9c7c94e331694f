"""The `fleet` command. Light at start: only what a subcommand needs is imported, and never nautilus_trader or
ccxt except by the node entry point, so `fleet status` answers at once."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_CONFIGS = (Path("fleet.yaml"), Path("/etc/nautilus-fleet/fleet.yaml"))
EXIT_USAGE = 2
EXIT_NO_DAEMON = 3
# sysexits' EX_CONFIG: `fleet run` with an invalid fleet.yaml. The systemd unit does not restart on it
# (RestartPreventExitStatus=78): restarting cannot fix a file.
EXIT_CONFIG = 78
# sysexits' EX_SOFTWARE: an internal error (a bug), said in one line.
EXIT_SOFTWARE = 70


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["emulator"]:
        # Every argument after `emulator` is the emulator's own (argparse cannot pass options through).
        from emulator.__main__ import main as emulator_main

        return int(emulator_main(given[1:]))
    args = _parser().parse_args(given)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # A bug, not the operator's mistake: one line, no traceback (FLEET_DEBUG=1 shows it).
        if os.environ.get("FLEET_DEBUG"):
            raise
        what = f"{type(exc).__name__}: {exc}"
        print(f"fleet {args.command}: internal error: {what} (FLEET_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_SOFTWARE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet", description="Supervise a fleet of NautilusTrader nodes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the supervisor daemon")
    _config_arg(run)
    run.add_argument("--log-level", default=os.environ.get("FLEET_LOG_LEVEL", "INFO"))
    run.add_argument(
        "--host-id",
        default=None,
        help="this supervisor's host id: lease holder and placement name (default: $FLEET_HOST_ID, else the "
        "host name)",
    )
    run.add_argument(
        "--no-watch", action="store_true", help="do not reload when the file changes (SIGHUP still does)"
    )
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate fleet.yaml and print the resolved fleet")
    check.add_argument("file", nargs="?", type=Path, help="the fleet file (or --config)")
    check.add_argument(
        "--strict",
        action="store_true",
        help="also fail when this host cannot run the fleet (unset secrets, missing directories)",
    )
    check.add_argument(
        "--deep",
        action="store_true",
        help="also dry-run each strategy node's build (imports, configs, credentials, instruments)",
    )
    _config_arg(check)
    check.set_defaults(func=_cmd_check)

    schema = sub.add_parser("schema", help="print the JSON Schema of fleet.yaml (for editors)")
    schema.set_defaults(func=_cmd_schema)

    status = sub.add_parser("status", help="show every node's state")
    _daemon_args(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_cmd_status)

    for name, text in (
        ("start", "start a node (also releases it from quarantine)"),
        ("stop", "stop a node and keep it stopped"),
        ("restart", "restart a node gracefully"),
        ("reset", "forget a node's crash history and quarantine"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("node")
        _daemon_args(cmd)
        cmd.set_defaults(func=_cmd_node)

    logs = sub.add_parser("logs", help="show a node's output")
    logs.add_argument("node")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=50)
    _daemon_args(logs)
    logs.set_defaults(func=_cmd_logs)

    reload = sub.add_parser("reload", help="re-read fleet.yaml now (as SIGHUP does)")
    _daemon_args(reload)
    reload.set_defaults(func=_cmd_reload)

    drill = sub.add_parser(
        "drill",
        help="prove recovery: kill the fleet's strategy nodes against the emulator and check every recovery",
    )
    _config_arg(drill)
    drill.add_argument("--kills", type=int, default=5, help="kill actions to run (default 5)")
    drill.add_argument("--seed", type=int, default=None, help="the same seed repeats the same actions")
    drill.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the JSON report here")
    drill.add_argument("--keep-work", action="store_true", help="keep the run's directory (logs, fleet file)")
    drill.set_defaults(func=_cmd_drill)

    # Dispatched in main() before parsing; listed here for --help.
    sub.add_parser("emulator", help="run the Binance USD-M futures emulator (`fleet emulator --help`)")
    return parser


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="fleet.yaml (default: $FLEET_CONFIG, ./fleet.yaml, /etc/nautilus-fleet/fleet.yaml)",
    )


def _daemon_args(parser: argparse.ArgumentParser) -> None:
    _config_arg(parser)
    parser.add_argument("--socket", type=Path, default=None, help="the daemon's control socket")


def _config_path(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("FLEET_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIGS:
        if candidate.exists():
            return candidate
    return DEFAULT_CONFIGS[0]


def _load(path: Path) -> Any:
    """The validated fleet, host checks included, or the precise error on stderr (the caller decides the exit
    code)."""
    from supervisor.config import ConfigError, load_fleet

    try:
        return load_fleet(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return None


# ---- daemon ---------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from supervisor.logs import configure_logging

    configure_logging(args.log_level)
    path = _config_path(args.config)
    spec = _load(path)
    if spec is None:
        return EXIT_CONFIG
    import re

    from supervisor.config.schema import HOST_ID_PATTERN
    from supervisor.daemon import Daemon, default_host_id

    host_id = args.host_id or default_host_id(os.environ)
    if not re.fullmatch(HOST_ID_PATTERN, host_id):
        source = "--host-id" if args.host_id else "$FLEET_HOST_ID or the host name"
        print(
            f"fleet run: host id {host_id!r} (from {source}): expected 1 to 63 letters, digits, "
            '"_", "." or "-", starting with a letter or digit',
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def run() -> int:
        daemon = Daemon(config_path=path, spec=spec, watch=not args.no_watch, host_id=host_id)
        return await daemon.run()

    return asyncio.run(run())


def _cmd_check(args: argparse.Namespace) -> int:
    """Is the file valid (always), and can this host run it (reported; an error only with --strict)?"""
    from supervisor.config import ConfigError, check_fleet, render_fleet, resolve_paths

    path = args.file or _config_path(args.config)
    try:
        checked = check_fleet(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        paths = resolve_paths(checked.spec)
    except ConfigError:
        paths = None  # socket paths too long here: among the host problems below
    print(render_fleet(checked.spec, paths))
    if args.deep:
        problems = _deep_check(checked.spec)
        if problems:
            for problem in problems:
                print(problem, file=sys.stderr)
            return EXIT_USAGE
    if checked.host_problems:
        verdict = "fails" if args.strict else "passes (--strict fails on them)"
        print(
            f"{path}: the file is valid; on this host `fleet run` would refuse to start, and this check "
            f"{verdict}:",
            file=sys.stderr,
        )
        for host_problem in checked.host_problems:
            print(f"  {host_problem}", file=sys.stderr)
        if args.strict:
            return EXIT_USAGE
        print(f"{path}: valid ({len(checked.host_problems)} problems on this host, above)")
        return 0
    print(f"{path}: OK (valid, and this host can run it)")
    return 0


def _deep_check(spec: Any) -> list[str]:
    """Imports nautilus (only here): a typo in a strategy config is found before a restart, not during one."""
    from recovery.deep_check import check_node

    problems: list[str] = []
    for node in spec.nodes:
        if node.strategies is not None and node.enabled:
            print(f"checking node {node.name} ...", file=sys.stderr)
            problems.extend(check_node(spec, node))
    return problems


def _cmd_schema(args: argparse.Namespace) -> int:
    from supervisor.config import fleet_json_schema

    print(json.dumps(fleet_json_schema(), indent=2))
    return 0


def _cmd_drill(args: argparse.Namespace) -> int:
    if args.kills < 0:
        print("fleet drill: --kills must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    # Imports nautilus (only here): the drill reads each node's cache the way the node loads it.
    from recovery.drill.cli import main as drill_main

    return drill_main(
        _config_path(args.config),
        kills=args.kills,
        seed=args.seed,
        json_path=args.json,
        keep_work=args.keep_work,
    )


# ---- talking to the daemon ------------------------------------------------------------------------


def _find_daemon(args: argparse.Namespace) -> Any:
    """A client for the daemon the user means, or None (said on stderr).

    `--socket` / `$FLEET_SOCKET` are used as given. Otherwise: the socket fleet.yaml names (in this shell's
    environment), then a running daemon that announced it runs this fleet.yaml (its socket may live where
    only its own environment says: `$RUNTIME_DIRECTORY`, a demo's temporary directory), then, when no file
    was named, the only daemon running. A fleet.yaml with an error does not stop this: the daemon runs the
    version it last loaded, and the error is shown as a note."""
    from supervisor.control_client import ControlClient, DaemonNotRunningError

    explicit = args.socket or os.environ.get("FLEET_SOCKET")
    if explicit:
        return ControlClient(Path(explicit))
    config = _config_path(args.config)
    named = args.config is not None or bool(os.environ.get("FLEET_CONFIG"))
    spec, problem = _load_quietly(config)
    candidates: list[Path] = []
    if spec is not None:
        from supervisor.config import ConfigError, resolve_paths

        with contextlib.suppress(ConfigError):
            candidates.append(resolve_paths(spec, os.environ).control_socket)
    from supervisor.discovery import running_daemons

    daemons = running_daemons()
    wanted = str(config.resolve())
    candidates += [Path(d.socket) for d in daemons if d.config == wanted]
    if not named and len(daemons) == 1:
        candidates.append(Path(daemons[0].socket))
    for path in dict.fromkeys(candidates):
        client = ControlClient(path)
        try:
            client.probe()
        except DaemonNotRunningError:
            continue
        except PermissionError as exc:
            print(exc, file=sys.stderr)
            return None
        if problem is not None:
            print(
                f"note: {problem}\nnote: the daemon runs the version of {config} it loaded before "
                "(`fleet reload` once the file is fixed)",
                file=sys.stderr,
            )
        return client
    if problem is not None:
        print(problem, file=sys.stderr)
    where = f" on {candidates[0]}" if candidates else ""
    print(f"no fleet daemon for {config} is listening{where}; start one with `fleet run`", file=sys.stderr)
    others = [d for d in daemons if d.config != wanted]
    for daemon in others:
        print(f"  running: fleet {daemon.fleet} ({daemon.config}): fleet status --socket {daemon.socket}",
              file=sys.stderr)  # fmt: skip
    return None


def _load_quietly(path: Path) -> tuple[Any, str | None]:
    """The fleet without host checks, or None and why (for finding the daemon, errors are only notes)."""
    from supervisor.config import ConfigError, parse_fleet

    try:
        return parse_fleet(path.read_text(), str(path), base_dir=path.resolve().parent), None
    except ConfigError as exc:
        return None, str(exc)
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
    except Exception as exc:  # never a traceback in front of an operator looking for the fleet
        return None, f"{path}: cannot be read: {type(exc).__name__}: {exc}"


def _ask(args: argparse.Namespace, message: dict[str, Any]) -> dict[str, Any] | None:
    from supervisor.control_client import DaemonNotRunningError

    client = _find_daemon(args)
    if client is None:
        return None
    try:
        reply: dict[str, Any] = client.request(message)
    except DaemonNotRunningError as exc:
        print(exc, file=sys.stderr)
        return None
    if not reply.get("ok"):
        print(f"fleet: {reply.get('error', 'request failed')}", file=sys.stderr)
        return None
    return reply


def _cmd_status(args: argparse.Namespace) -> int:
    reply = _ask(args, {"cmd": "status"})
    if reply is None:
        return EXIT_NO_DAEMON
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    print(render_status(reply["nodes"], now=time.time(), hosts=len(reply.get("hosts") or {}) > 1))
    spares = reply.get("spares") or []
    if spares:
        print(render_spares(spares))
    print(reply["summary"])
    last = (reply.get("config") or {}).get("last_reload")
    if last and last.get("result") == "refused":
        ago = _ago(time.time() - last["at"])
        print(
            f"{reply['config']['path']}: the last reload was refused {ago} ago; the fleet runs the version "
            f"loaded before:\n  {last['detail']}"
        )
    return 0


def render_status(nodes: list[dict[str, Any]], *, now: float, hosts: bool = False) -> str:
    """One row per node; with `hosts` (several hosts run the fleet) a HOST column says which one runs it."""
    header: tuple[str, ...] = (
        "NODE",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST EXIT",
        "LAST RECOVERY",
        "AUDIT",
    )
    if hosts:
        header = ("NODE", "HOST", *header[1:])
    rows = [header]
    for node in nodes:
        exit_info = node.get("last_exit") or {}
        if exit_info:
            code = exit_info.get("code")
            sig = exit_info.get("signal")
            what = _signal_name(sig) if sig is not None else f"code {code}"
            last_exit = f"{exit_info['reason']} ({what}) {_ago(now - exit_info['at'])} ago"
        else:
            last_exit = "-"
        started = node.get("started_at")
        recovery = node.get("last_recovery_ms")
        state = node["state"]
        if state == "backoff" and node.get("next_start_in") is not None:
            state = f"backoff ({node['next_start_in']:.1f}s)"
        rows.append(
            (
                node["name"],
                *((node.get("host") or "-",) if hosts else ()),
                state,
                str(node["pid"]) if node.get("pid") else "-",
                _ago(now - started) if started else "-",
                str(node["restarts"]),
                last_exit,
                f"{recovery:.0f} ms" if recovery is not None else "-",
                _audit_cell(node.get("audit"), now),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    for node in nodes:
        if node.get("state") == "standby" and node.get("standby_reason"):
            lines.append(f"{node['name']}: standby: {node['standby_reason']}")
        if node.get("quarantine_reason"):
            lines.append(
                f"{node['name']}: quarantined: {node['quarantine_reason']} (fleet reset {node['name']})"
            )
    return "\n".join(lines)


def _audit_cell(audit: dict[str, Any] | None, now: float) -> str:
    """The venue audit of a node: `audited 40s ago`, `MISMATCH (2)`, `not audited` (not since its last
    start), `pending` / `deferred` / `running` (the first audit after READY), `error`, `skipped`, `off`."""
    if not audit:
        return "-"
    state = str(audit.get("state", "-"))
    if state == "audited" and audit.get("at") is not None:
        return f"audited {_ago(now - audit['at'])} ago"
    if state == "mismatch":
        return f"MISMATCH ({audit.get('differences', 0)})"
    if state in ("error", "skipped") and audit.get("last_ok_at") is not None:
        return f"{state} (ok {_ago(now - audit['last_ok_at'])} ago)"
    return {"-": "not audited"}.get(state, state)


def render_spares(spares: list[dict[str, Any]]) -> str:
    """Warm spares: which pool (a node's own, or the fleet's), pid, state and memory."""
    rows = [("SPARE", "PID", "STATE", "RSS", "PRIVATE")]
    for spare in spares:
        rows.append(
            (
                spare["pool"],
                str(spare["pid"]),
                spare["state"],
                _mib(spare.get("rss_bytes")),
                _mib(spare.get("private_bytes")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.0f} MiB" if value is not None else "-"


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _cmd_node(args: argparse.Namespace) -> int:
    reply = _ask(args, {"cmd": args.command, "node": args.node})
    if reply is None:
        return EXIT_NO_DAEMON
    note = f" ({reply['note']})" if reply.get("note") else ""
    print(f"{args.node}: {reply.get('state')}{note}")
    return 0


def _cmd_reload(args: argparse.Namespace) -> int:
    reply = _ask(args, {"cmd": "reload"})
    if reply is None:
        return EXIT_NO_DAEMON
    outcome = reply["reload"]
    if outcome["result"] == "applied":
        print(f"reloaded: {outcome['detail']}")
        return 0
    print(f"reload refused, the fleet runs on unchanged:\n{outcome['detail']}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_logs(args: argparse.Namespace) -> int:
    from supervisor.control_client import DaemonNotRunningError

    client = _find_daemon(args)
    if client is None:
        return EXIT_NO_DAEMON
    request = {"cmd": "logs", "node": args.node, "lines": args.lines, "follow": args.follow}
    try:
        for reply in client.stream(request, timeout=None if args.follow else 30.0):
            if "line" in reply:
                print(reply["line"], flush=args.follow)
            elif not reply.get("ok", True):
                print(f"fleet: {reply.get('error')}", file=sys.stderr)
                return EXIT_USAGE
    except DaemonNotRunningError as exc:
        print(exc, file=sys.stderr)
        return EXIT_NO_DAEMON
    return 0


if __name__ == "__main__":
    sys.exit(main())
