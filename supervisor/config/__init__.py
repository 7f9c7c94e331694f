"""fleet.yaml: the schema (`schema.py`), loading with precise errors (`loader.py`), semantic checks
(`validate.py`), derived values (`resolve.py`) and the resolved view and JSON Schema (`render.py`)."""

from supervisor.config.errors import ConfigError, ConfigErrors
from supervisor.config.loader import FleetCheck, check_fleet, load_fleet, parse_fleet
from supervisor.config.render import fleet_json_schema, render_fleet
from supervisor.config.resolve import (
    ResolvedPaths,
    instruments_of,
    resolve_paths,
    topic_prefix,
    venue_account,
)

__all__ = [
    "ConfigError",
    "ConfigErrors",
    "FleetCheck",
    "ResolvedPaths",
    "check_fleet",
    "fleet_json_schema",
    "instruments_of",
    "load_fleet",
    "parse_fleet",
    "render_fleet",
    "resolve_paths",
    "topic_prefix",
    "venue_account",
]
