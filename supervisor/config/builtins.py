"""Specs to plain JSON-ready values and back, with durations as their text ("30s"), so that what the daemon
hands a node decodes with the very same rules as fleet.yaml."""

from __future__ import annotations

from typing import Any

import msgspec

from supervisor.config.decode import dec_hook
from supervisor.config.duration import format_duration
from supervisor.config.schema import Duration


def _enc_hook(value: Any) -> Any:
    if isinstance(value, Duration):
        return format_duration(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value, enc_hook=_enc_hook)


def from_builtins[T](data: Any, target: type[T]) -> T:
    return msgspec.convert(data, target, dec_hook=dec_hook)
