from __future__ import annotations

import pytest

from supervisor.states import TRANSITIONS, InvalidTransitionError, NodeState, check_transition, render_table


def test_every_state_has_a_row_and_can_reach_stopped() -> None:
    assert set(TRANSITIONS) == set(NodeState)
    # Every state can eventually be stopped by an operator.
    for state in NodeState:
        seen = {state}
        frontier = [state]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert NodeState.STOPPED in seen or state is NodeState.STOPPED


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (NodeState.STOPPED, NodeState.STARTING, True),
        (NodeState.STOPPED, NodeState.READY, False),
        (NodeState.RECOVERING, NodeState.READY, True),
        (NodeState.READY, NodeState.RECOVERING, False),
        (NodeState.BACKOFF, NodeState.STARTING, True),
        (NodeState.QUARANTINED, NodeState.READY, False),
        (NodeState.STOPPING, NodeState.STOPPED, True),
    ],
)
def test_transitions(old: NodeState, new: NodeState, ok: bool) -> None:
    if ok:
        check_transition("n", old, new)
    else:
        with pytest.raises(InvalidTransitionError):
            check_transition("n", old, new)


def test_table_prints_every_state() -> None:
    table = render_table()
    for state in NodeState:
        assert state.value in table
