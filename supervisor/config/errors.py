"""Errors in a fleet.yaml, each pointing at the spot a user has to change.

The message reads `fleet.yaml:14:7 nodes[1].restart.backoff_max: expected a duration like "30s", got "fast"`:
file, line and column (1-based, of the offending value; of the mapping when a key is missing), the field path,
what was expected and what was found, then an optional hint (`; did you mean "backoff_max"?`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

# A position in the document: keys of mappings and indexes of lists, from the top.
type FieldPath = tuple[str | int, ...]

# Characters of a value shown in a message; longer ones are cut.
MAX_SHOWN = 200
_PLAIN_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def format_path(path: FieldPath) -> str:
    """`("nodes", 1, "restart")` -> `nodes[1].restart`; odd keys are quoted: `env["A.B"]`."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and set(part) <= _PLAIN_KEY_CHARS and not part[0].isdigit():
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{quote(part)}]")
    return "".join(out)


def quote(text: str) -> str:
    """A string as it is shown in messages: double-quoted, with quotes and control characters escaped; a long
    one cut to its start and its length (a 200,000-character value must not become a 200 KB log line)."""
    shown = text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN]
    escaped = shown.replace("\\", "\\\\").replace('"', '\\"')
    quoted = '"' + "".join(c if c.isprintable() else repr(c)[1:-1] for c in escaped) + '"'
    return quoted if shown is text else f'{quoted[:-1]}..." ({len(text)} characters)'


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a value sits in the file (1-based). Line 0 means the file as a whole (e.g. it is unreadable)."""

    line: int
    column: int


class ConfigError(Exception):
    """One problem in a fleet.yaml. `str(err)` is the full, user-facing message."""

    def __init__(
        self,
        *,
        file: str,
        line: int,
        column: int,
        field: str,
        expected: str,
        found: str | None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        # Field path like `nodes[1].restart.backoff_max`; "" for problems of the document itself.
        self.field = field
        self.expected = expected
        # What the file had, formatted for the message (`"fast"`, `5`, `a list`); None for syntax errors.
        self.found = found
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = self.file if self.line <= 0 else f"{self.file}:{self.line}:{self.column}"
        head = " ".join(part for part in (where, f"{self.field}:" if self.field else "") if part)
        body = (
            f"expected {self.expected}"
            if self.found is None
            else f"expected {self.expected}, got {self.found}"
        )
        text = f"{head} {body}" if head else body
        return f"{text}; {self.hint}" if self.hint else text

    def relocated(self, file: str, location: Location) -> ConfigError:
        """The same problem, placed in a file (for errors found from a spec alone, like `resolve_paths`)."""
        return ConfigError(
            file=file,
            line=location.line,
            column=location.column,
            field=self.field,
            expected=self.expected,
            found=self.found,
            hint=self.hint,
        )

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """All problems found; a single error is its own list (see `ConfigErrors`)."""
        return (self,)

    def sort_key(self) -> tuple[int, int, str, str]:
        return (self.line, self.column, self.field, self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, ConfigError) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)


class ConfigErrors(ConfigError):
    """Several problems at once. Its own attributes are those of the first (by position in the file);
    `errors` lists them all and `str()` shows one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if len(errors) < 2:
            raise ValueError("ConfigErrors needs at least two errors; raise the single ConfigError instead")
        self._errors = tuple(errors)
        first = self._errors[0]
        super().__init__(
            file=first.file,
            line=first.line,
            column=first.column,
            field=first.field,
            expected=first.expected,
            found=first.found,
            hint=first.hint,
        )

    @property
    def message(self) -> str:
        return "\n".join(err.message for err in self._errors)

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors


def raise_all(errors: Iterable[ConfigError]) -> None:
    """Raise nothing, the one error, or all of them (in file order, without repeats)."""
    unique = sorted(set(errors), key=ConfigError.sort_key)
    if len(unique) == 1:
        raise unique[0]
    if unique:
        raise ConfigErrors(unique)
