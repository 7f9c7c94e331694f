"""What this supervisor build is (for the build-info metric and the supervisor-state payload)."""

from __future__ import annotations

import functools
import importlib.metadata
import platform

DISTRIBUTION = "nautilus-fleet"


@functools.cache
def version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def python_version() -> str:
    return platform.python_version()
