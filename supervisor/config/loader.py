"""Load fleet.yaml: YAML with marks -> defaults merged -> paths anchored -> msgspec decode -> semantic checks.

Every problem found is reported with its file, line and column; several at once as `ConfigErrors`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.config.decode import decode_fleet
from supervisor.config.document import parse_document
from supervisor.config.environment import check_environment
from supervisor.config.errors import ConfigError, raise_all
from supervisor.config.files import anchor_paths
from supervisor.config.marks import Document
from supervisor.config.merge import merge_defaults
from supervisor.config.schema import FleetSpec
from supervisor.config.validate import validate_fleet


def load_fleet(path: str | Path, environ: Mapping[str, str] | None = None) -> FleetSpec:
    """Read and validate a fleet.yaml, including the host checks of `environment.py` against `environ`
    (default: this process' environment). Raises ConfigError (ConfigErrors for several problems)."""
    source = str(path)
    return parse_fleet(_read(path), source, environ=os.environ if environ is None else environ)


@dataclasses.dataclass(frozen=True)
class FleetCheck:
    """A valid fleet file, and what would stop it from running on this host (unset secrets, missing
    directories, socket paths too long): `fleet check` reports those separately from errors in the file."""

    spec: FleetSpec
    host_problems: tuple[ConfigError, ...]


def check_fleet(path: str | Path, environ: Mapping[str, str] | None = None) -> FleetCheck:
    """Validate the file (raises ConfigError for its errors), then list the host problems without raising."""
    source = str(path)
    base = os.path.dirname(os.path.abspath(source))
    spec, doc = _validated(_read(path), source, base)
    host = check_environment(spec, doc, os.environ if environ is None else environ)
    return FleetCheck(spec=spec, host_problems=tuple(sorted(set(host), key=ConfigError.sort_key)))


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            file=str(path), line=0, column=0, field="", expected="a readable UTF-8 file", found=reason
        ) from None


def parse_fleet(
    text: str,
    source: str,
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: str | Path | None = None,
) -> FleetSpec:
    """Validate fleet.yaml content. `source` names it in messages; relative paths in it are taken relative
    to `base_dir` (default: the directory of `source`). Host checks run only when `environ` is given."""
    base = os.path.abspath(base_dir if base_dir is not None else os.path.dirname(source) or ".")
    spec, doc = _validated(text, source, base)
    if environ is not None:
        raise_all(check_environment(spec, doc, environ))
    return spec


def _validated(text: str, source: str, base: str) -> tuple[FleetSpec, Document]:
    """The spec and its document, or ConfigError(s) for every problem of the file itself."""
    doc = merge_defaults(parse_document(text, source))
    doc, errors = anchor_paths(doc, base)
    spec, decode_errors = decode_fleet(doc)
    errors += decode_errors
    if spec is not None:
        errors += validate_fleet(spec, doc)
    raise_all(errors)
    assert spec is not None  # no errors means the decode succeeded
    return spec, doc
