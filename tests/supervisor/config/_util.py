"""Helpers for the fleet.yaml tests: parse a text, get back the error messages."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from supervisor.config.errors import ConfigError
from supervisor.config.loader import parse_fleet
from supervisor.config.schema import FleetSpec


def yaml_text(text: str) -> str:
    """Dedented, without the leading newline of a triple-quoted literal (so line 1 is the first line)."""
    return textwrap.dedent(text).lstrip("\n")


def parse(text: str, environ: Mapping[str, str] | None = None) -> FleetSpec:
    return parse_fleet(yaml_text(text), "fleet.yaml", environ=environ, base_dir="/srv/fleet")


def messages(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The messages of all errors `text` produces (fails the test when it parses)."""
    try:
        parse(text, environ)
    except ConfigError as exc:
        return [err.message for err in exc.errors]
    raise AssertionError("expected a ConfigError, the text parsed")
