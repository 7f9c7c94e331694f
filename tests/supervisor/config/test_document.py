"""YAML reading: strict scalars (no YAML 1.1 surprises), repeated keys, marks, aliases, merge keys, tags."""

# ruff: noqa: E501 - the expected messages are kept whole, as a user reads them

from __future__ import annotations

import math
from typing import Any

import pytest

from supervisor.config.document import MAX_VALUES, parse_document
from supervisor.config.errors import ConfigError, Location
from supervisor.config.scalars import resolve_plain

from ._util import yaml_text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.1 would make these booleans, a sexagesimal int, an octal int, a date, an int with "_".
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("N", "N"),
        ("1:30", "1:30"),
        ("0600", "0600"),
        ("1_000", "1_000"),
        ("2024-01-01", "2024-01-01"),
        ("0b101", "0b101"),
        ("30s", "30s"),
        # What is typed.
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("0", 0),
        ("-12", -12),
        ("+7", 7),
        ("0o600", 0o600),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.5", -0.5),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
    ],
)
def test_plain_scalars_resolve_strictly(text: str, value: Any) -> None:
    resolved = resolve_plain(text)
    assert resolved == value
    assert type(resolved) is type(value)


def test_nan_is_a_float() -> None:
    assert math.isnan(resolve_plain(".nan"))


def test_quoted_and_block_scalars_are_strings() -> None:
    doc = parse_document(yaml_text("a: \"1\"\nb: 'true'\nc: |\n  no\nd: !!str 5\n"), "f.yaml")
    assert doc.data == {"a": "1", "b": "true", "c": "no\n", "d": "5"}


def test_keys_are_strings_even_when_they_look_typed() -> None:
    doc = parse_document("no: 1\n1: 2\ntrue: 3\n", "f.yaml")
    assert doc.data == {"no": 1, "1": 2, "true": 3}


def test_marks_of_keys_and_values_are_one_based() -> None:
    doc = parse_document(
        yaml_text("""
        nodes:
          - name: a
            restart:
              backoff_max: fast
        """),
        "f.yaml",
    )
    assert doc.marks.values[("nodes", 0, "restart", "backoff_max")] == Location(4, 20)
    assert doc.marks.keys[("nodes", 0, "restart", "backoff_max")] == Location(4, 7)
    assert doc.marks.values[("nodes", 0)] == Location(2, 5)
    # A value the file does not have is placed at its nearest enclosing value.
    assert doc.marks.value(("nodes", 0, "stop", "grace")) == Location(2, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: 1\nb: 2\na: 3\n",
            'f.yaml:3:1 a: expected each key once in a mapping, got "a" again; first given at line 1, column 1',
        ),
        (
            "n:\n  - name: x\n    restart: {backoff_max: 1s, backoff_max: 2s}\n",
            "f.yaml:3:32 n[0].restart.backoff_max: expected each key once in a mapping, "
            'got "backoff_max" again; first given at line 3, column 15',
        ),
        # Keys are compared as written: PyYAML would keep only the last of these too.
        (
            "no: 1\n'no': 2\n",
            'f.yaml:2:1 no: expected each key once in a mapping, got "no" again; first given at line 1, column 1',
        ),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1 expected a single YAML document"),
        (
            "a: !!int 5\n",
            "f.yaml:1:4 a: expected a value without a YAML tag, got tag !!int; tags are not supported",
        ),
        (
            "a: !!python/object:os.system x\n",
            "f.yaml:1:4 a: expected a value without a YAML tag, got tag !!python/object:os.system; "
            "tags are not supported",
        ),
        ("[1, 2]: x\n", "f.yaml:1:1 expected a plain key (a string), got a list or mapping as a key"),
        (
            "a: &x [*x]\n",
            "f.yaml:1:4 a[0]: expected a value that does not contain itself, got a recursive alias",
        ),
        (
            "a: ok\nb: 1\x07\n",
            "f.yaml:2:5 expected valid YAML; character #x0007 is not allowed (control characters cannot appear in YAML)",
        ),
    ],
)
def test_document_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_document(text, "f.yaml")
    assert info.value.message == message


def test_an_unclosed_flow_list_is_placed_where_the_file_ends() -> None:
    # LibYAML (the PyYAML wheels' parser, used when present) and pure-Python PyYAML word it differently.
    with pytest.raises(ConfigError) as info:
        parse_document("a: [1\n", "f.yaml")
    assert info.value.message in (
        "f.yaml:2:1 expected valid YAML; did not find expected ',' or ']'",
        "f.yaml:2:1 expected valid YAML; expected ',' or ']', but got '<stream end>'",
    )


def test_aliases_expanding_too_far_are_refused() -> None:
    # Each level doubles the values: 2**20 leaves, far more than a fleet needs.
    lines = ["l0: &l0 [x, x]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 21)]
    with pytest.raises(ConfigError) as info:
        parse_document("\n".join(lines) + "\n", "f.yaml")
    assert info.value.expected == f"at most {MAX_VALUES} values"


def test_merge_keys_fill_in_without_overriding_explicit_keys() -> None:
    doc = parse_document(
        yaml_text("""
        base: &base {grace: 5s, signal: SIGINT}
        stop:
          signal: SIGTERM
          <<: *base
        """),
        "f.yaml",
    )
    assert doc.data["stop"] == {"signal": "SIGTERM", "grace": "5s"}
    # The merged value is placed where it is written (in the anchored mapping); the explicit one stays.
    assert doc.marks.values[("stop", "grace")] == Location(1, 21)
    assert doc.marks.values[("stop", "signal")] == Location(3, 11)
    assert doc.marks.values[("stop",)] == Location(3, 3)


def test_merge_of_several_sources_earlier_wins() -> None:
    doc = parse_document("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n", "f.yaml")
    assert doc.data["c"] == {"x": 1, "y": 2}


def test_empty_document_is_none() -> None:
    assert parse_document("# nothing\n", "f.yaml").data is None
