"""Node lifecycle states and the transitions allowed between them.

`recovering` is a started process that has not yet said READY=1. The table is data, so it can be printed
(`python -m supervisor.states`) and tested.
"""

from __future__ import annotations

import enum


class NodeState(enum.StrEnum):
    STARTING = "starting"
    RECOVERING = "recovering"
    READY = "ready"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    QUARANTINED = "quarantined"
    # Wanted, but another host holds its lease or its placement excludes this host: it starts here when this
    # host acquires the lease (failover).
    STANDBY = "standby"


class ExitReason(enum.StrEnum):
    """Why a node process ended (or was ended)."""

    EXIT = "exit"  # exited by itself with a code
    SIGNAL = "signal"  # killed by a signal someone else sent (kill -9, OOM killer)
    WATCHDOG = "watchdog"  # stopped pinging within its watchdog timeout; we killed it
    READY_TIMEOUT = "ready_timeout"  # not READY within ready_timeout; we killed it
    FATAL = "fatal"  # said X_FATAL=, or exited 78 (EX_CONFIG): do not restart
    STOPPED = "stopped"  # an operator or a reload asked it to stop
    FENCED = "fenced"  # its lease was lost (exit 75, or the supervisor killed it): not restarted here


_S = NodeState
TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    _S.STOPPED: frozenset({_S.STARTING, _S.STANDBY}),
    # A spawn can fail outright (exec error) and go to backoff or quarantine. A crash whose restart
    # delay is zero goes straight back to starting.
    _S.STARTING: frozenset({_S.RECOVERING, _S.BACKOFF, _S.QUARANTINED, _S.STOPPING, _S.STOPPED, _S.STANDBY}),
    _S.RECOVERING: frozenset(
        {_S.READY, _S.STARTING, _S.BACKOFF, _S.QUARANTINED, _S.STOPPING, _S.STOPPED, _S.STANDBY}
    ),
    _S.READY: frozenset({_S.BACKOFF, _S.STARTING, _S.QUARANTINED, _S.STOPPING, _S.STOPPED, _S.STANDBY}),
    _S.BACKOFF: frozenset({_S.STARTING, _S.STOPPED, _S.QUARANTINED, _S.STANDBY}),
    # A restart request passes through stopping; a node that said X_FATAL is stopped into quarantine.
    _S.STOPPING: frozenset({_S.STOPPED, _S.STARTING, _S.QUARANTINED, _S.STANDBY}),
    _S.QUARANTINED: frozenset({_S.STARTING, _S.STOPPED, _S.STANDBY}),
    # Another host holds the lease (or placement excludes this host): waits; starts once it acquires it.
    _S.STANDBY: frozenset({_S.STARTING, _S.STOPPED}),
}


class InvalidTransitionError(RuntimeError):
    def __init__(self, node: str, old: NodeState, new: NodeState) -> None:
        super().__init__(f"node {node}: no transition {old} -> {new}")
        self.node = node
        self.old = old
        self.new = new


def check_transition(node: str, old: NodeState, new: NodeState) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransitionError(node, old, new)


def render_table() -> str:
    width = max(len(s) for s in NodeState)
    return "\n".join(f"{old:<{width}} -> {', '.join(sorted(TRANSITIONS[old]))}" for old in NodeState)


if __name__ == "__main__":
    print(render_table())
