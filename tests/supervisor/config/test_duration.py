"""Durations: the accepted forms, the refused ones, and formatting that parses back."""

from __future__ import annotations

import pytest

from supervisor.config.duration import format_duration, parse_duration
from supervisor.config.schema import Duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("2s500ms", 2.5),
        ("1h2m3s4ms", 3723.004),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    value = parse_duration(text)
    assert isinstance(value, Duration)
    assert value == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30",
        "fast",
        "1:30",
        "30 s",
        " 30s",
        "-5s",
        "+5s",
        ".5s",
        "5.s",
        "1d",
        "30sec",
        "5M",
        "30s1h",
        "1s1s",
        "1e3s",
        "1_000ms",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|units"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.25, "250ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (10.125, "10.125s"),
        (60.0, "1m"),
        (90.0, "1m30s"),
        (60.5, "1m0.5s"),
        (3600.0, "1h"),
        (5400.0, "1h30m"),
        (86400.0, "24h"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_format_parses_back_to_the_millisecond() -> None:
    for millis in [*range(0, 2000, 7), *range(59_000, 61_000, 13), 3_599_999, 3_600_001]:
        seconds = millis / 1000
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9), millis
