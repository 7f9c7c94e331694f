"""Anchor the file paths in a fleet.yaml to the directory of the file.

The daemon runs from wherever systemd starts it, and nodes get their spec without the file, so a relative path
like `secrets/api_key` means `<directory of fleet.yaml>/secrets/api_key` and is made absolute before decoding.
`~` is not expanded (neither does systemd): a path starting with it is an error.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

from supervisor.config.errors import ConfigError, FieldPath, quote
from supervisor.config.marks import Document

# Fields holding file system paths; "*" stands for any key of a mapping or index of a list.
PATH_FIELDS: tuple[FieldPath, ...] = (
    ("runtime_dir",),
    ("state_dir",),
    ("log_dir",),
    ("control", "socket"),
    ("redis", "password", "file"),
    ("mqtt", "password", "file"),
    ("mqtt", "tls", "ca_file"),
    ("mqtt", "tls", "cert_file"),
    ("mqtt", "tls", "key_file"),
    ("venues", "*", "api_key", "file"),
    ("venues", "*", "api_secret", "file"),
    ("nodes", "*", "cwd"),
)


def anchor_paths(doc: Document, base_dir: str) -> tuple[Document, list[ConfigError]]:
    """A copy of `doc` with relative paths joined to `base_dir` (absolute), and errors for `~` paths."""
    data = copy.deepcopy(doc.data)
    errors: list[ConfigError] = []
    for pattern in PATH_FIELDS:
        for path, parent, key in _matches(data, pattern, ()):
            value = parent[key]
            if not isinstance(value, str):
                continue  # a wrong type is reported by decoding
            if not value:
                errors.append(doc.error(path, "a path", quote(value)))
            elif value.startswith("~"):
                errors.append(
                    doc.error(
                        path,
                        "an absolute path or one relative to the file",
                        quote(value),
                        "~ is not expanded; write the full path",
                    )
                )
            elif not os.path.isabs(value):
                parent[key] = os.path.normpath(os.path.join(base_dir, value))
    return Document(doc.source, data, doc.marks, doc.origins), errors


def _matches(data: Any, pattern: FieldPath, at: FieldPath) -> Iterator[tuple[FieldPath, Any, Any]]:
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        items: list[tuple[Any, Any]] = (
            list(data.items())
            if isinstance(data, dict)
            else (list(enumerate(data)) if isinstance(data, list) else [])
        )
    else:
        items = [(head, data[head])] if isinstance(data, dict) and head in data else []
    for key, value in items:
        if not rest:
            yield (*at, key), data, key
        else:
            yield from _matches(value, rest, (*at, key))
