"""A seeded corpus of 1,100 mutated fleet files (`fuzz_corpus.py`): each one is either a clear error placed
at file:line:column (or the whole file) or a valid fleet, never a traceback, never a hang; `fleet check`, the
command, says the same without a traceback.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from supervisor.config import ConfigError, check_fleet, render_fleet
from tests.supervisor.config.fuzz_corpus import Case, corpus
from tests.supervisor.conftest import run_fleet

CASES = corpus()
# file:line:column, or the file alone for problems of the file as a whole; then what was expected.
POSITIONED = re.compile(r"^fleet\.yaml(:\d+:\d+)? .*expected ")
HANG_BOUND_S = 2.0


def write(tmp: Path, case: Case) -> Path:
    path = tmp / "fleet.yaml"
    path.write_bytes(
        case.text if isinstance(case.text, bytes) else case.text.encode("utf-8", "surrogatepass")
    )
    return path


def test_the_corpus_is_large_and_reproducible() -> None:
    assert len(CASES) >= 1000
    assert [c.name for c in corpus()] == [c.name for c in CASES]
    kinds = {c.name.split(":")[0] for c in CASES}
    assert {"swap", "delete", "rename", "tabs", "unicode", "huge", "deep", "anchors", "tag", "junk"} <= kinds


def test_every_mutation_is_a_placed_error_or_a_valid_fleet(tmp_path: Path) -> None:
    outcomes = {"valid": 0, "error": 0}
    for case in CASES:
        path = write(tmp_path, case)
        started = time.monotonic()
        try:
            checked = check_fleet(path, {})
        except ConfigError as exc:
            lines = str(exc).splitlines()
            bad = [line for line in lines if not POSITIONED.match(line.replace(str(path), "fleet.yaml"))]
            assert lines and not bad, f"{case.name}: not a placed error: {bad[:3]}"
            outcomes["error"] += 1
        except Exception as exc:
            pytest.fail(f"{case.name}: {type(exc).__name__}: {exc}")
        else:
            assert render_fleet(checked.spec)  # usable as it is
            outcomes["valid"] += 1
        elapsed = time.monotonic() - started
        assert elapsed < HANG_BOUND_S, f"{case.name}: {elapsed:.2f}s"
    # Both kinds occur: the corpus is neither all noise nor all harmless.
    assert outcomes["valid"] >= 50 and outcomes["error"] >= 900, outcomes


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        # The reload that killed the daemon. Our limit says "nested at most 64 deep"; LibYAML, when
        # PyYAML has it, stops first at its own 1,000 levels: either way a placed error.
        ("extra: " + "[" * 50_000 + "]" * 50_000, r"fleet\.yaml:{line}:\d+ expected .*nest"),
        (
            "extra: " + "[" * 70 + "]" * 70,
            r"fleet\.yaml:{line}:71 expected lists and mappings nested at most 64",
        ),
        ("extra: " + "9" * 5000, r"fleet\.yaml:{line}:8 extra: expected an integer of at most 100 digits"),
    ],
    ids=["nesting-50000", "nesting-70", "integer-5000-digits"],
)
def test_what_took_the_daemon_down_is_a_placed_error(tmp_path: Path, mutation: str, message: str) -> None:
    base = next(c for c in CASES if c.name == "unchanged").text
    assert isinstance(base, str)
    path = tmp_path / "fleet.yaml"
    path.write_text(base + mutation + "\n")
    with pytest.raises(ConfigError) as info:
        check_fleet(path, {})
    line = base.count("\n") + 1
    assert re.match(message.format(line=line), str(info.value).replace(str(path), "fleet.yaml"))


@pytest.mark.parametrize(
    ("host", "why"),
    [
        (
            "1606938044258990275541962092341162602522202993782792835301376s",
            "looks like a number or a duration",
        ),
        ("1883", "looks like a number or a duration"),
        ("my broker", "characters a host name cannot have"),
        ("", "it is empty"),
    ],
)
def test_mqtt_host_must_be_a_host(tmp_path: Path, host: str, why: str) -> None:
    base = next(c for c in CASES if c.name == "unchanged").text
    assert isinstance(base, str)
    path = tmp_path / "fleet.yaml"
    path.write_text(base.replace("  host: 127.0.0.1", f"  host: '{host}'"))
    with pytest.raises(ConfigError) as info:
        check_fleet(path, {})
    assert info.value.field == "mqtt.host" and why in str(info.value)


@pytest.mark.slow
def test_fleet_check_never_shows_a_traceback(tmp_path: Path) -> None:
    """The command a user runs, on every kind of mutation: exit 0 or 2, one message, no traceback."""
    picked: dict[str, Case] = {}
    for case in CASES:
        picked.setdefault(case.name.split(":")[0], case)
    picked.update({c.name: c for c in CASES if c.name.startswith("deep:flow-list:50000")}.items())
    for case in picked.values():
        path = write(tmp_path, case)
        result = run_fleet("check", str(path))
        output = result.stdout + result.stderr
        assert result.returncode in (0, 2), f"{case.name}: exit {result.returncode}: {output[-500:]}"
        assert "Traceback" not in output, f"{case.name}: {output[-2000:]}"
        assert "internal error" not in output, f"{case.name}: {output[-500:]}"
