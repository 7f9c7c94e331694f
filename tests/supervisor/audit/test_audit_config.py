"""The `audit:` section of fleet.yaml: defaults, bounds, errors at the line and column."""

# ruff: noqa: E501 - the expected messages are kept whole, as a user reads them

from __future__ import annotations

import pytest

from tests.supervisor.config._util import messages, parse


def test_defaults_audit_every_five_minutes() -> None:
    spec = parse("fleet: demo\n")
    assert spec.audit.enabled is True
    assert spec.audit.interval == 300.0


def test_interval_and_enabled_are_read() -> None:
    spec = parse("fleet: demo\naudit: {enabled: false, interval: 90s}\n")
    assert (spec.audit.enabled, spec.audit.interval) == (False, 90.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "fleet: demo\naudit:\n  interval: 2s\n",
            'fleet.yaml:3:13 audit.interval: expected a duration from 5s to 24h, got "2s"',
        ),
        (
            "fleet: demo\naudit:\n  interval: 25h\n",
            'fleet.yaml:3:13 audit.interval: expected a duration from 5s to 24h, got "25h"',
        ),
        (
            "fleet: demo\naudit: {interval: 300}\n",
            'fleet.yaml:2:19 audit.interval: expected a duration like "30s", got 300; add a unit, e.g. "300s"',
        ),
        (
            "fleet: demo\naudit: {enabled: no}\n",
            'fleet.yaml:2:18 audit.enabled: expected true or false, got "no"',
        ),
        (
            "fleet: demo\naudit: {intervall: 5m}\n",
            'fleet.yaml:2:9 audit.intervall: expected a known key, got "intervall"; did you mean "interval"?',
        ),
    ],
)
def test_bad_values_are_errors_at_their_place(text: str, expected: str) -> None:
    assert messages(text) == [expected]
