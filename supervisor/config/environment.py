"""Checks that depend on the host, not only on the file: are the secrets there, do directories exist, do the
socket paths fit. `load_fleet` runs them (a fleet that cannot start here should fail `fleet check` here);
`parse_fleet` runs them only when given an environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from supervisor.config.errors import ConfigError, FieldPath, quote
from supervisor.config.marks import Document
from supervisor.config.resolve import resolve_paths
from supervisor.config.schema import FleetSpec
from supervisor.config.validate import secret_refs

_PATH_FIELDS: dict[str, FieldPath] = {
    "control.socket": ("control", "socket"),
    "runtime_dir": ("runtime_dir",),
}


def check_environment(spec: FleetSpec, doc: Document, environ: Mapping[str, str]) -> list[ConfigError]:
    errors = list(_secrets(spec, doc, environ))
    errors += _cwds(spec, doc)
    try:
        resolve_paths(spec, environ)
    except ConfigError as exc:
        errors += [
            err.relocated(doc.source, doc.marks.value(_PATH_FIELDS.get(err.field, ()))) for err in exc.errors
        ]
    return errors


def _used_secret_paths(spec: FleetSpec) -> set[FieldPath]:
    """Secrets something will actually read: Redis', MQTT's when enabled, and those of venues that an enabled
    node uses (an unused venue may stay without credentials on this host)."""
    used: set[FieldPath] = {("redis", "password")}
    if spec.mqtt.enabled:
        used.add(("mqtt", "password"))
    for node in spec.nodes:
        if node.enabled:
            for venue in node.venues:
                used.update({("venues", venue, "api_key"), ("venues", venue, "api_secret")})
    return used


def _secrets(spec: FleetSpec, doc: Document, environ: Mapping[str, str]) -> Iterator[ConfigError]:
    used = _used_secret_paths(spec)
    for at, ref in secret_refs(spec):
        if at not in used:
            continue
        if ref.env is not None and ref.file is None and not environ.get(ref.env):
            # Only the variable's name is shown, never a value.
            found = "it unset" if ref.env not in environ else "it empty"
            yield doc.error((*at, "env"), f"environment variable {ref.env} to be set", found)
        elif (
            ref.file is not None
            and ref.env is None
            and not (os.path.isfile(ref.file) and os.access(ref.file, os.R_OK))
        ):
            yield doc.error(
                (*at, "file"), "a readable file", f"{quote(ref.file)}, which is missing or unreadable"
            )


def _cwds(spec: FleetSpec, doc: Document) -> Iterator[ConfigError]:
    for i, node in enumerate(spec.nodes):
        if node.enabled and node.cwd is not None and not os.path.isdir(node.cwd):
            yield doc.error(("nodes", i, "cwd"), "an existing directory", quote(node.cwd))
