"""Secret values: resolved from env vars or files, and never printed."""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.config.schema import SecretRef

MASK = "***"


class Secret:
    """Holds a secret; str, repr and format show `***`. `reveal()` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretUnavailableError(LookupError):
    """A SecretRef that names an unset variable or an unreadable file."""


def resolve_secret(ref: SecretRef, environ: dict[str, str] | None = None) -> Secret:
    env = os.environ if environ is None else environ
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None:
            raise SecretUnavailableError(f"environment variable {ref.env} is not set")
        return Secret(value)
    if ref.file is not None:
        try:
            return Secret(Path(ref.file).read_text().rstrip("\n"))
        except OSError as exc:
            raise SecretUnavailableError(f"cannot read secret file {ref.file}: {exc.strerror}") from exc
    raise SecretUnavailableError("secret reference names neither env nor file")
