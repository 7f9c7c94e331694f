"""Injected faults for REST requests: latency (fixed plus jitter), HTTP errors, hangs, rate-limit answers
and order rejections, matched by method, path and account, for a number of requests or until cleared.

A rule with `execute=True` lets the venue process the request and then fails the answer: the order exists
but the client saw an error or a timeout ("execution status unknown"), the case that tests idempotent retries.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from emulator.pricepath import stable_key, unit01

ACTIONS = frozenset({"latency", "error", "hang", "rate_limit", "reject"})
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v1/batchOrders")
MAX_HANG_MS = 600_000


class FaultRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: str
    method: str | None = None
    path: str | None = None  # exact, or a prefix when it ends with "*"
    account: str | None = None
    count: int | None = None  # remaining applications; None = until removed
    skip: int = 0  # let this many matching requests through first
    latency_ms: int = 0
    jitter_ms: int = 0
    status: int = 0
    code: int = 0
    msg: str = ""
    execute: bool = False
    hang_ms: int = MAX_HANG_MS
    retry_after_s: int = 60
    id: int = 0
    applied: int = 0

    def matches(self, method: str, path: str, account: str | None) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.account is not None and self.account != account:
            return False
        if self.path is None:
            return self.action != "reject" or (method == "POST" and path in ORDER_PATHS)
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


def validate(rule: FaultRule) -> FaultRule:
    if rule.action not in ACTIONS:
        raise ValueError(f"unknown fault action {rule.action!r}; expected one of {sorted(ACTIONS)}")
    if rule.action == "error" and not 400 <= (rule.status or 500) <= 599:
        raise ValueError("an error fault needs an HTTP status between 400 and 599")
    if rule.count is not None and rule.count < 1:
        raise ValueError("count must be at least 1 (or omitted for 'until removed')")
    rule.hang_ms = min(rule.hang_ms, MAX_HANG_MS)
    return rule


class FaultRegistry:
    """The active rules, applied in the order they were added (first match wins)."""

    def __init__(self, seed: int) -> None:
        self._rules: list[FaultRule] = []
        self._next_id = 0
        self._jitter_key = stable_key(seed, "jitter")
        self._jitter_count = 0

    def add(self, rule: FaultRule) -> FaultRule:
        validate(rule)
        self._next_id += 1
        rule.id = self._next_id
        self._rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> int:
        count = len(self._rules)
        self._rules.clear()
        return count

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def take(
        self, method: str, path: str, account: str | None, accept: Callable[[FaultRule], bool]
    ) -> FaultRule | None:
        """The first matching rule that applies to this request (consuming one of its uses)."""
        for rule in self._rules:
            if not rule.matches(method, path, account) or not accept(rule):
                continue
            if rule.skip > 0:
                rule.skip -= 1
                continue
            rule.applied += 1
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self._rules.remove(rule)
            return rule
        return None

    def jitter(self, rule: FaultRule) -> int:
        """Latency for one application of a latency rule: fixed plus seeded jitter (repeatable per seed)."""
        self._jitter_count += 1
        return rule.latency_ms + round(rule.jitter_ms * unit01(self._jitter_key, self._jitter_count))
