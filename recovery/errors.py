"""The recovery package's errors: each carries what an operator needs to act, and says whether restarting the
node could help (`fatal`: no, quarantine it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RecoveryError(Exception):
    """Base: recovery did not complete. `detail` goes into the notify message as JSON."""

    fatal = False

    def __init__(self, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})


class SpecError(RecoveryError):
    """The spec cannot run (bad venue, missing secret, strategy does not import): a restart won't help."""

    fatal = True


class CacheCorruptError(RecoveryError):
    """A cache entry does not decode: the node refuses to trade and deletes nothing."""

    fatal = True

    def __init__(self, message: str, *, keys: Mapping[str, str], error: str) -> None:
        super().__init__(message, {"keys": dict(keys), "error": error})
        self.keys = dict(keys)
        self.error = error


class StartupTimeoutError(RecoveryError):
    """A startup step did not finish within our own bound."""

    def __init__(self, step: str, seconds: float, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{step} did not finish within {seconds:g}s", {"step": step, **dict(detail or {})})
        self.step = step
        self.seconds = seconds


class ReconciliationError(RecoveryError):
    """Reconciliation failed, or its result differs from the venue: never READY, report the diff."""


class RedisUnavailableError(RecoveryError):
    """Redis did not answer: the cache cannot be loaded (a restart may help once Redis is back)."""


class LeaseNotHeldError(RecoveryError):
    """The node was started under a lease it cannot confirm (another epoch, gone, Redis silent): it exits 75
    without touching its cache or the venue; the supervisor does not restart it on this host."""
