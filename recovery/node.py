"""The strategy node entry point: `python -m recovery.node --spec FILE` (what the supervisor runs; also
`$FLEET_NODE_SPEC`) or `python -m recovery.node --config fleet.yaml --node NAME` (standalone, e.g. under
plain systemd with Type=notify).

Exit codes: 0 after a requested stop, 1 when recovery failed or the node failed while trading (a restart
may help), 78 (EX_CONFIG, with X_FATAL) when it cannot help: a bad spec or strategy config, a corrupt cache
entry. This module is the only place that imports nautilus before the node runs (a warm spare,
`recovery.spare`, imports it in advance and then calls `main` here).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from recovery.errors import SpecError
from recovery.spec import NodeRun, load_from_fleet, load_handed_spec
from supervisor.notify import EXIT_FATAL, Notifier

log = logging.getLogger("recovery.node")

ENV_SPEC = "FLEET_NODE_SPEC"
ENV_LOG_LEVEL = "FLEET_NODE_LOG_LEVEL"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m recovery.node", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--spec", help=f"the node spec the supervisor wrote (default: ${ENV_SPEC})")
    source.add_argument("--config", help="fleet.yaml (standalone use, with --node)")
    parser.add_argument("--node", help="the node's name in --config")
    parser.add_argument("--connect-timeout", type=float, help="seconds (default: a share of ready_timeout)")
    parser.add_argument("--reconcile-timeout", type=float, help="seconds (default: a share of ready_timeout)")
    parser.add_argument("--portfolio-timeout", type=float, help="seconds (default: a share of ready_timeout)")
    parser.add_argument("--log-level", default=os.environ.get(ENV_LOG_LEVEL, "INFO"))
    diagnostics = parser.add_argument_group(
        "diagnostics (reproduce upstream nautilus defects; never in production)"
    )
    diagnostics.add_argument(
        "--exec-client", choices=["fleet", "stock"], default="fleet", help="stock: nautilus' own exec client"
    )
    diagnostics.add_argument("--reconciliation-lookback-mins", type=int, default=None)
    args = parser.parse_args(argv)
    if args.config and not args.node:
        parser.error("--config needs --node")
    if args.node and not args.config:
        parser.error("--node needs --config")
    return args


def load_run(args: argparse.Namespace) -> NodeRun:
    if args.config:
        return load_from_fleet(args.config, args.node)
    path = args.spec or os.environ.get(ENV_SPEC)
    if not path:
        raise SpecError(
            f"no node spec: give --spec FILE, set ${ENV_SPEC}, or --config fleet.yaml --node NAME"
        )
    return load_handed_spec(path)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        run = load_run(args)
    except SpecError as exc:
        log.error("%s", exc.message)
        notifier = Notifier()
        notifier.fatal(exc.message, {"reason": exc.message})
        notifier.close()
        return EXIT_FATAL

    # nautilus' kernel module selects uvloop's event loop policy on import: import it before the loop exists.
    import nautilus_trader.live.node  # noqa: F401

    from recovery.lifecycle import ExecClientKind, NodeLifecycle, RunOptions

    options = RunOptions(
        exec_client=ExecClientKind(args.exec_client),
        reconciliation_lookback_mins=args.reconciliation_lookback_mins,
        timeouts={
            "connect": args.connect_timeout,
            "reconcile": args.reconcile_timeout,
            "portfolio": args.portfolio_timeout,
        },
        log_level=args.log_level.upper(),
    )
    return asyncio.run(NodeLifecycle(run, options).run())


if __name__ == "__main__":
    sys.exit(main())
