"""`fleet drill --config fleet.yaml [--kills N] [--seed S] [--json PATH]`: progress on stderr, the table on
stdout, the JSON report in a file; exit 0 when every check held, 1 on any violation, 2 when refused."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

from recovery.drill.fleet_copy import DrillRefused
from recovery.drill.report import render_table
from recovery.drill.runner import DrillOptions, run_drill
from supervisor.config import ConfigError

EXIT_VIOLATIONS = 1
EXIT_REFUSED = 2


def main(config: Path, *, kills: int, seed: int | None, json_path: Path | None, keep_work: bool) -> int:
    # Library loggers (aiomqtt, the admin client) say nothing unless something is wrong.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    options = DrillOptions(config=config, kills=kills, seed=seed, keep_work=keep_work)
    try:
        report = asyncio.run(run_drill(options))
    except DrillRefused as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        print(f"fleet drill: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (RuntimeError, TimeoutError) as exc:  # the fleet did not come up: nothing was drilled
        print(f"fleet drill: {exc}", file=sys.stderr)
        return EXIT_VIOLATIONS
    print(render_table(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"report: {json_path}")
    return 0 if report.ok else EXIT_VIOLATIONS
