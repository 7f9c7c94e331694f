"""The fleet-wide view: every node once, with the host that runs it; `fleet status` with a HOST column."""

from __future__ import annotations

from typing import Any

from supervisor.cli import render_status
from supervisor.fleet_view import merge_nodes, view_key


def node(name: str, state: str, host: str = "", pid: int | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "pid": pid,
        "host": host,
        "restarts": 0,
        "started_at": None,
        "last_exit": None,
        "last_recovery_ms": None,
        "standby_reason": "placement: hosts c exclude this host (a)" if state == "standby" else "",
    }


def test_a_node_in_standby_here_is_shown_as_the_host_running_it_has_it() -> None:
    local = [node("alpha", "ready", "a", 10), node("beta", "standby", "a"), node("gamma", "standby", "a")]
    views = {
        "a": {"host": "a", "nodes": local},
        "b": {"host": "b", "nodes": [node("alpha", "standby", "b"), node("beta", "recovering", "b", 20)]},
    }
    merged = merge_nodes(local, views, "a")
    assert [(n["name"], n["host"], n["state"], n["pid"]) for n in merged] == [
        ("alpha", "a", "ready", 10),
        ("beta", "b", "recovering", 20),
        ("gamma", "a", "standby", None),  # runs nowhere: as this host has it
    ]


def test_status_has_a_host_column_only_for_several_hosts() -> None:
    nodes = [node("alpha", "ready", "a", 10), node("gamma", "standby", "a")]
    single = render_status(nodes, now=0.0)
    assert single.splitlines()[0].split() == [
        "NODE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT", "LAST", "RECOVERY", "AUDIT"
    ]  # fmt: skip
    several = render_status(nodes, now=0.0, hosts=True).splitlines()
    assert several[0].split()[:3] == ["NODE", "HOST", "STATE"]
    assert several[1].split()[:3] == ["alpha", "a", "ready"]
    assert several[-1] == "gamma: standby: placement: hosts c exclude this host (a)"


def test_view_key() -> None:
    assert view_key("prod", "trading-1") == "fleet:view:prod:trading-1"
