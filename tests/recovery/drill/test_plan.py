"""The drill's plan is a function of the seed, the node names and the count alone."""

from __future__ import annotations

import pytest

from recovery.drill.plan import MAX_MARKET_STEPS, Moment, VenueMove, plan_drill

NODES = ("ema-btc", "ema-eth", "ema-sol")


def test_the_same_seed_gives_the_same_actions() -> None:
    assert plan_drill(7, NODES, 20) == plan_drill(7, NODES, 20)


def test_the_order_of_the_nodes_does_not_matter() -> None:
    assert plan_drill(7, NODES, 20) == plan_drill(7, tuple(reversed(NODES)), 20)


def test_another_seed_gives_other_actions() -> None:
    assert plan_drill(7, NODES, 20) != plan_drill(8, NODES, 20)


def test_a_longer_drill_starts_with_the_shorter_one() -> None:
    assert plan_drill(7, NODES, 20)[:5] == plan_drill(7, NODES, 5)


def test_a_long_plan_covers_every_moment_move_and_node_within_bounds() -> None:
    plan = plan_drill(1, NODES, 60)
    assert [a.index for a in plan] == list(range(1, 61))
    assert {a.moment for a in plan} == set(Moment)
    assert {a.move for a in plan} == set(VenueMove)
    assert {a.node for a in plan} == set(NODES)
    assert all(1 <= a.market_steps <= MAX_MARKET_STEPS and 0 <= a.pick < 1 for a in plan)


def test_a_seed_in_a_report_repeats_its_drill_in_another_process() -> None:
    # What `fleet drill --seed 3 --kills 2` ran on the example fleet (random.Random is stable for int seeds).
    assert [a.to_json() for a in plan_drill(3, NODES, 2)] == [
        {
            "index": 1,
            "node": "ema-btc",
            "moment": "idle",
            "move": "position_changed",
            "market_steps": 1,
            "pick": 0.369955,
        },
        {
            "index": 2,
            "node": "ema-sol",
            "moment": "recovering",
            "move": "position_changed",
            "market_steps": 3,
            "pick": 0.065529,
        },
    ]


def test_zero_kills_is_an_empty_plan_and_negative_is_refused() -> None:
    assert plan_drill(1, NODES, 0) == ()
    with pytest.raises(ValueError, match="kills"):
        plan_drill(1, NODES, -1)
    with pytest.raises(ValueError, match="no nodes"):
        plan_drill(1, (), 1)
