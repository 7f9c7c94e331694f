"""Apply `defaults` to every node that does not set a value itself, before decoding.

The merge is deep: a node's partial `restart:` overrides only the keys it gives, the rest comes from
`defaults.restart`, then from the schema's own defaults. A node's explicit `null` (e.g. `watchdog: null`) is a
value and wins. Copied values are recorded in `Document.origins`, so an error in one is reported once, where
it was written (`defaults.restart.backoff_max`), not once per node.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from supervisor.config.errors import FieldPath
from supervisor.config.marks import Document
from supervisor.config.schema import NodeDefaults

NODE_DEFAULT_KEYS: tuple[str, ...] = tuple(f.encode_name for f in msgspec.structs.fields(NodeDefaults))


def merge_defaults(doc: Document) -> Document:
    """A copy of `doc` whose nodes carry the defaults they do not override."""
    data = copy.deepcopy(doc.data)
    origins = dict(doc.origins)
    if (
        isinstance(data, dict)
        and isinstance(data.get("defaults"), dict)
        and isinstance(data.get("nodes"), list)
    ):
        defaults = data["defaults"]
        for index, node in enumerate(data["nodes"]):
            if not isinstance(node, dict):
                continue
            for key in NODE_DEFAULT_KEYS:
                if key in defaults:
                    _merge(node, key, defaults[key], ("nodes", index, key), origins)
    return Document(doc.source, data, doc.marks, origins)


def _merge(
    target: dict[str, Any], key: str, value: Any, path: FieldPath, origins: dict[FieldPath, FieldPath]
) -> None:
    """Give `target[key]` the default `value` (written at the path `path` stands for in `defaults`)."""
    if key not in target:
        target[key] = copy.deepcopy(value)
        origins[path] = ("defaults", *path[2:])
    elif isinstance(target[key], dict) and isinstance(value, dict):
        for sub, item in value.items():
            _merge(target[key], sub, item, (*path, sub), origins)
