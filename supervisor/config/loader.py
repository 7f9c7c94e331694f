"""Load fleet.yaml: YAML with marks -> defaults merged -> paths anchored -> msgspec decode -> semantic checks.

Every problem found is reported with its file, line and column; several at once as `ConfigErrors`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.config.decode import decode_fleet
from supervisor.config.document import parse_document
from supervisor.config.environment import check_environment
from supervisor.config.errors import ConfigError, raise_all
from supervisor.config.files import anchor_paths
from supervisor.config.merge import merge_defaults
from supervisor.config.schema import FleetSpec
from supervisor.config.validate import validate_fleet


def load_fleet(path: str | Path, environ: Mapping[str, str] | None = None) -> FleetSpec:
    """Read and validate a fleet.yaml, including the host checks of `environment.py` against `environ`
    (default: this process' environment). Raises ConfigError (ConfigErrors for several problems)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            file=source, line=0, column=0, field="", expected="a readable UTF-8 file", found=reason
        ) from None
    return parse_fleet(text, source, environ=os.environ if environ is None else environ)


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
    doc = merge_defaults(parse_document(text, source))
    doc, errors = anchor_paths(doc, base)
    spec, decode_errors = decode_fleet(doc)
    errors += decode_errors
    if spec is not None:
        errors += validate_fleet(spec, doc)
        if environ is not None and not errors:
            errors += check_environment(spec, doc, environ)
    raise_all(errors)
    assert spec is not None  # no errors means the decode succeeded
    return spec
