"""Bad input never takes the fleet down, and the CLI finds the fleet that runs (issue 9), with the real daemon
as a child process and `fleet` as a user runs it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from supervisor.config import ConfigError, check_fleet
from tests.supervisor.config.fuzz_corpus import Case, corpus
from tests.supervisor.conftest import run_fleet
from tests.supervisor.daemon_harness import DaemonUnderTest, fleet_yaml, node_yaml, write_atomically

pytestmark = pytest.mark.slow

RELOADED_CASES = 60


@pytest.fixture
async def daemon(short_dir: Path) -> AsyncIterator[DaemonUnderTest]:
    config = short_dir / "fleet.yaml"
    config.write_text(fleet_yaml(short_dir, [node_yaml("a"), node_yaml("b")]))
    # Its own discovery directory: other daemons of this user (other tests, other checkouts) stay out.
    under_test = DaemonUnderTest(short_dir, config, env={"XDG_RUNTIME_DIR": str(short_dir)})
    try:
        yield under_test
    finally:
        await under_test.close()


def pids(nodes: dict[str, dict[str, object]]) -> dict[str, object]:
    return {name: node["pid"] for name, node in nodes.items()}


def all_ready(nodes: dict[str, dict[str, object]]) -> bool:
    return bool(nodes) and all(n["state"] == "ready" for n in nodes.values())


def fleet(daemon: DaemonUnderTest, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    result = run_fleet(*args, env={"XDG_RUNTIME_DIR": str(daemon.base)}, cwd=cwd)
    return result.returncode, result.stdout, result.stderr


async def test_a_reload_nested_50000_deep_is_refused_and_the_fleet_runs_on(daemon: DaemonUnderTest) -> None:
    """The issue's case: `extra: ` and 50,000 `[` and `]` appended to a running fleet's file killed the daemon
    and its nodes (RecursionError in PyYAML's composer)."""
    await daemon.start()
    before = await daemon.wait_nodes(all_ready)
    valid = daemon.config.read_text()
    daemon.config.write_text(valid + "extra: " + "[" * 50_000 + "]" * 50_000 + "\n")
    code, _, err = fleet(daemon, "reload", "--config", str(daemon.config))
    assert code == 2, err
    assert "reload refused, the fleet runs on unchanged" in err and "nest" in err
    assert pids(await daemon.wait_nodes(all_ready)) == pids(before)
    assert daemon.process is not None and daemon.process.returncode is None

    # `fleet status` with the broken file still finds the daemon, and says the file has an error.
    code, out, err = fleet(daemon, "status", "--config", str(daemon.config))
    assert code == 0, err
    assert "a  " in out and "ready" in out
    assert f"note: {daemon.config}:" in err and "the daemon runs the version" in err
    assert "the last reload was refused" in out

    write_atomically(daemon.config, fleet_yaml(daemon.base, [node_yaml("a"), node_yaml("b"), node_yaml("c")]))
    code, out, _ = fleet(daemon, "reload", "--config", str(daemon.config))
    # The file watch may have applied it a moment before (then this one finds no changes).
    assert code == 0 and out.strip() in ("reloaded: start c", "reloaded: no changes")
    after = await daemon.wait_nodes(lambda n: "c" in n and all_ready(n))
    assert {k: v for k, v in pids(after).items() if k != "c"} == pids(before)


def invalid_cases(count: int) -> list[Case]:
    """Invalid files of every kind of mutation, the same ones every run."""
    by_kind: dict[str, list[Case]] = {}
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-probe-{os.getpid()}.yaml"
    try:
        for case in corpus():
            probe.write_bytes(
                case.text if isinstance(case.text, bytes) else case.text.encode("utf-8", "replace")
            )
            try:
                check_fleet(probe, {})
            except ConfigError:
                by_kind.setdefault(case.name.split(":")[0], []).append(case)
    finally:
        probe.unlink(missing_ok=True)
    picked: list[Case] = []
    while len(picked) < count and any(by_kind.values()):
        for cases in by_kind.values():
            if cases and len(picked) < count:
                picked.append(cases.pop(0))
    return picked


async def test_sixty_invalid_files_hot_reloaded_change_nothing(daemon: DaemonUnderTest) -> None:
    await daemon.start()
    before = await daemon.wait_nodes(all_ready)
    cases = invalid_cases(RELOADED_CASES)
    assert len(cases) == RELOADED_CASES
    for case in cases:
        data = case.text if isinstance(case.text, bytes) else case.text.encode("utf-8", "surrogatepass")
        tmp = daemon.config.with_name(".fleet.yaml.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, daemon.config)  # as editors save; the file watch reloads too
        reply = await daemon.request({"cmd": "reload"})
        assert reply["reload"]["result"] == "refused", (case.name, reply)
        assert daemon.process is not None and daemon.process.returncode is None, case.name
    assert pids(await daemon.wait_nodes(all_ready)) == pids(before)
    status = await daemon.request({"cmd": "status"})
    assert status["config"]["last_reload"]["result"] == "refused"


async def test_status_finds_a_daemon_whose_sockets_only_its_environment_knows(short_dir: Path) -> None:
    """`make demo` runs the daemon with RUNTIME_DIRECTORY in a temporary directory (as systemd would); a user
    who types `fleet status` in the repository, with no FLEET_SOCKET, must get that fleet."""
    config = short_dir / "fleet.yaml"
    text = fleet_yaml(short_dir, [node_yaml("a")])
    config.write_text("\n".join(line for line in text.splitlines() if not line.startswith("runtime_dir")))
    hidden = short_dir / "hidden-run"
    daemon = DaemonUnderTest(
        short_dir, config, env={"RUNTIME_DIRECTORY": str(hidden), "XDG_RUNTIME_DIR": str(short_dir / "xdg")}
    )
    daemon.client.path = hidden / "control.sock"
    try:
        await daemon.start()
        await daemon.wait_nodes(all_ready)
        env = {"XDG_RUNTIME_DIR": str(short_dir / "xdg")}
        for args, cwd in ((("status",), short_dir), (("status", "--config", str(config)), None)):
            result = run_fleet(*args, env=env, cwd=cwd)
            assert result.returncode == 0, result.stderr
            assert "1 node: 1 ready" in result.stdout
        # Another file: not this daemon, and the running one is named.
        other = short_dir / "other.yaml"
        other.write_text(config.read_text())
        result = run_fleet("status", "--config", str(other), env=env)
        assert result.returncode == 3
        assert f"running: fleet test ({config})" in result.stderr
    finally:
        await daemon.close()
