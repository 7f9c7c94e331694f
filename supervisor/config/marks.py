"""Where each value of a fleet.yaml was written, and the parsed document that errors are placed in."""

from __future__ import annotations

import dataclasses
from typing import Any

from supervisor.config.errors import ConfigError, FieldPath, Location, format_path


@dataclasses.dataclass
class Marks:
    """Positions of the values (and of the keys) in the file, by field path."""

    values: dict[FieldPath, Location] = dataclasses.field(default_factory=dict)
    keys: dict[FieldPath, Location] = dataclasses.field(default_factory=dict)

    def value(self, path: FieldPath) -> Location:
        """Where the value at `path` starts; for a value the file does not have (a default), where its
        nearest enclosing value starts."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Location(0, 0)

    def key(self, path: FieldPath) -> Location:
        """Where the key of a mapping entry starts (the value's position for list items and the root)."""
        return self.keys.get(path) or self.value(path)

    def alias_from(self, other: Marks, prefix: FieldPath) -> None:
        """Take over `other`'s marks at `prefix` and below."""
        n = len(prefix)
        for mine, theirs in ((self.values, other.values), (self.keys, other.keys)):
            for sub, loc in theirs.items():
                if sub[:n] == prefix:
                    mine[sub] = loc


@dataclasses.dataclass(frozen=True)
class Document:
    """A parsed fleet.yaml: its data (plain values) and where each value came from."""

    source: str
    data: Any
    marks: Marks
    # Values copied from elsewhere in the file (node settings taken from `defaults`): errors in them are
    # reported once, at the place they were written.
    origins: dict[FieldPath, FieldPath] = dataclasses.field(default_factory=dict)

    def origin(self, path: FieldPath) -> FieldPath:
        """The path where the value at `path` was written (itself, unless it was copied)."""
        for end in range(len(path), 0, -1):
            source = self.origins.get(path[:end])
            if source is not None:
                return source + path[end:]
        return path

    def written(self, path: FieldPath) -> bool:
        """Whether the file itself gives the value at `path` (not a copied default, not a schema default)."""
        return self.origin(path) == path and path in self.marks.values

    def error(
        self,
        path: FieldPath,
        expected: str,
        found: str | None,
        hint: str | None = None,
        *,
        at_key: bool = False,
    ) -> ConfigError:
        """A ConfigError at the value (or key) of `path` in this document."""
        where = self.origin(path)
        loc = self.marks.key(where) if at_key else self.marks.value(where)
        return ConfigError(
            file=self.source,
            line=loc.line,
            column=loc.column,
            field=format_path(where),
            expected=expected,
            found=found,
            hint=hint,
        )
