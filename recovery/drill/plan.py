"""The drill's sequence of actions, drawn from a seed before anything runs (pure).

Each action kills one node with SIGKILL at one kind of moment, and may move the venue while that node is down:

- moments: `after_order` (as soon as the venue has accepted an order of the node's account), `recovering` (a
  first kill, then a second one when the restarted process reports a recovery phase, before READY), `idle`
  (when the market has settled and nothing of the node's is in flight);
- venue moves while down: `stop_triggered` (one of the node's open stop-loss/take-profit orders triggers and
  fills), `position_changed` (another client of the account trades: the position is flattened or doubled,
  or one is opened where the node was flat), or none;
- `market_steps` moves of the market before the kill (so that the strategies trade between kills), and `pick`,
  a number in [0, 1) that chooses among what exists at the time (which stop, which instrument) and the phase
  of a `recovering` kill.

The same seed, node names and count give the same plan: the report lists the seed, and a drill run again with
it repeats the same actions (what the strategies then do in between depends on timing).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass

MAX_MARKET_STEPS = 3


class Moment(enum.StrEnum):
    AFTER_ORDER = "after_order"
    RECOVERING = "recovering"
    IDLE = "idle"


class VenueMove(enum.StrEnum):
    NONE = "none"
    STOP_TRIGGERED = "stop_triggered"
    POSITION_CHANGED = "position_changed"


@dataclass(frozen=True, kw_only=True)
class PlannedKill:
    index: int  # 1-based
    node: str
    moment: Moment
    move: VenueMove
    market_steps: int
    pick: float

    def describe(self) -> str:
        move = "" if self.move is VenueMove.NONE else f", then {self.move.value.replace('_', ' ')} while down"
        return f"kill {self.node} {self.moment.value.replace('_', ' ')}{move}"

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "node": self.node,
            "moment": self.moment.value,
            "move": self.move.value,
            "market_steps": self.market_steps,
            "pick": self.pick,
        }


def plan_drill(seed: int, nodes: Sequence[str], kills: int) -> tuple[PlannedKill, ...]:
    """`kills` actions over `nodes` (names; their order does not matter), from `seed` alone."""
    if kills < 0:
        raise ValueError(f"kills must be >= 0, got {kills}")
    if not nodes and kills:
        raise ValueError("no nodes to kill")
    rng = random.Random(seed)
    names = sorted(set(nodes))
    moments = list(Moment)
    moves = list(VenueMove)
    plan = []
    for index in range(1, kills + 1):
        plan.append(
            PlannedKill(
                index=index,
                node=rng.choice(names),
                moment=rng.choice(moments),
                move=rng.choice(moves),
                market_steps=rng.randint(1, MAX_MARKET_STEPS),
                pick=round(rng.random(), 6),
            )
        )
    return tuple(plan)
