"""Errors of the strategy half of recovery; each carries what an operator needs to act."""

from __future__ import annotations


class StrategyRecoveryError(Exception):
    """A RecoverableStrategy could not be brought back; `fatal` means a restart would fail the same way."""

    fatal: bool = False

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.detail: dict[str, object] = dict(detail or {})


class StateDecodeError(StrategyRecoveryError):
    """A persisted strategy state value that cannot be decoded. Never answered by a silent reset."""

    fatal = True

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(
            f"strategy state {key!r} cannot be decoded: {reason}", detail={"key": key, "error": reason}
        )
        self.key = key
        self.reason = reason


class WarmupTimeout(StrategyRecoveryError):
    def __init__(self, seconds: float, pending: list[str]) -> None:
        super().__init__(
            f"no warm-up answer within {seconds:g}s: {', '.join(pending)}",
            detail={"timeout_s": seconds, "not_initialized": pending},
        )


class WarmupIncomplete(StrategyRecoveryError):
    def __init__(self, pending: list[str]) -> None:
        super().__init__(
            f"the venue's history did not initialize: {', '.join(pending)}",
            detail={"not_initialized": pending},
        )


class ProtectiveOrderError(StrategyRecoveryError):
    """A protective order could not be placed, cancelled or confirmed."""


class StateWriteError(StrategyRecoveryError):
    """A durable write (strategy state, protective ledger) was not acknowledged."""
