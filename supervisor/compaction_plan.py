"""Which closed history of one trader to archive: a pure decision over plain values.

The rules, each needed for nautilus 1.231 to load the rest without an error or an integrity failure
(`Cache.check_integrity`, `Cache.cache_orders`), and for nothing a restarted node relies on to move:

- A position is archived only if it is closed by its fills (net quantity zero) AND the index agrees
  (`index:positions_closed`, not `index:positions_open`). The `keep_closed_positions` most recently closed
  ones stay. Open and unreadable positions always stay.
- An order is archived only if its events end closed (canceled, expired, rejected, denied, fully filled)
  AND the index agrees (in `index:orders_closed`; not open, in flight or emulated).
- Orders that stay although closed:
  - every order whose fills make up a position that stays (nautilus checks that every instrument with a
    position has an order);
  - every order linked (`index:order_position`) to a position that stays, if it was still live when that
    position opened: its protective orders and fills. Under NETTING one position id serves every round trip
    on an instrument, so orders of earlier round trips are history, not part of the open position;
  - every order closed at or after `venue_window_start_ns`: the venue still reports it at reconciliation
    (Binance: the last 7 days of orders and trades by default), and nautilus 1.231 re-creates a reported
    order it does not know as an EXTERNAL order and applies its fills: a phantom position;
  - the `keep_closed_orders` most recently closed others;
  - every order of a contingency group, order list or exec-algorithm spawn of which any member stays; a group
    that goes, goes as one unit (one atomic move), so a parent never loads without its children.
- Positions are archived before orders, oldest first: an interrupted run leaves a smaller history in which
  every remaining item still has what it needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from supervisor.cache_history import AccountRecord, OrderRecord, PositionRecord


@dataclass(frozen=True, kw_only=True)
class OrderIndex:
    """nautilus' own order/position index entries, as read from Redis."""

    orders_open: frozenset[str] = frozenset()
    orders_closed: frozenset[str] = frozenset()
    orders_inflight: frozenset[str] = frozenset()
    orders_emulated: frozenset[str] = frozenset()
    order_position: Mapping[str, str] = field(default_factory=dict)
    positions_open: frozenset[str] = frozenset()
    positions_closed: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Plan:
    positions: tuple[str, ...]  # to archive, oldest first
    order_groups: tuple[tuple[str, ...], ...]  # to archive, each group atomically, oldest first
    kept: Mapping[str, int]  # why items stay: reason -> count

    @property
    def orders(self) -> int:
        return sum(len(g) for g in self.order_groups)


def plan_compaction(
    *,
    orders: Mapping[str, OrderRecord],
    positions: Mapping[str, PositionRecord],
    index: OrderIndex,
    unreadable_orders: Iterable[str] = (),
    unreadable_positions: Iterable[str] = (),
    keep_closed_positions: int,
    keep_closed_orders: int,
    venue_window_start_ns: int = 0,
) -> Plan:
    if keep_closed_positions < 0 or keep_closed_orders < 0:
        raise ValueError("keep counts must be >= 0")
    kept: dict[str, int] = {}
    archive_positions, stay_positions = _plan_positions(
        positions, index, frozenset(unreadable_positions), keep_closed_positions, kept
    )
    archive_groups = _plan_orders(
        orders,
        index,
        stay=set(unreadable_orders),
        stay_positions=stay_positions,
        keep=keep_closed_orders,
        window_start_ns=venue_window_start_ns,
        kept=kept,
    )
    return Plan(positions=archive_positions, order_groups=archive_groups, kept=kept)


def _note(kept: dict[str, int], reason: str, n: int = 1) -> None:
    if n:
        kept[reason] = kept.get(reason, 0) + n


def _plan_positions(
    positions: Mapping[str, PositionRecord],
    index: OrderIndex,
    unreadable: frozenset[str],
    keep: int,
    kept: dict[str, int],
) -> tuple[tuple[str, ...], dict[str, PositionRecord | None]]:
    """(positions to archive oldest first, positions that stay: id -> record, None when unreadable)."""
    _note(kept, "positions_unreadable", len(unreadable))
    stay: dict[str, PositionRecord | None] = dict.fromkeys(unreadable)
    closed: list[PositionRecord] = []
    for pid, pos in positions.items():
        if pos.closed and pid in index.positions_closed and pid not in index.positions_open:
            closed.append(pos)
        else:
            _note(kept, "positions_open")
            stay[pid] = pos
    closed.sort(key=lambda p: (p.ts_last, p.position_id))
    split = max(0, len(closed) - keep)
    for pos in closed[split:]:
        stay[pos.position_id] = pos
    _note(kept, "positions_recent", len(closed) - split)
    return tuple(p.position_id for p in closed[:split]), stay


def _plan_orders(
    orders: Mapping[str, OrderRecord],
    index: OrderIndex,
    *,
    stay: set[str],
    stay_positions: Mapping[str, PositionRecord | None],
    keep: int,
    window_start_ns: int,
    kept: dict[str, int],
) -> tuple[tuple[str, ...], ...]:
    """Groups of orders to archive, oldest first. `stay` starts as the unreadable orders."""
    unreadable = frozenset(stay)
    _note(kept, "orders_unreadable", len(stay))
    live_indexes = index.orders_open | index.orders_inflight | index.orders_emulated
    closed: list[OrderRecord] = []
    for cid, order in orders.items():
        if not (order.closed and cid in index.orders_closed and cid not in live_indexes):
            _note(kept, "orders_open")
            stay.add(cid)
        elif _serves_kept_position(order, index.order_position.get(cid), stay_positions):
            _note(kept, "orders_of_kept_positions")
            stay.add(cid)
        elif order.ts_last >= window_start_ns > 0:
            _note(kept, "orders_in_venue_window")
            stay.add(cid)
        else:
            closed.append(order)
    closed.sort(key=lambda o: (o.ts_last, o.client_order_id))
    split = max(0, len(closed) - keep)
    stay.update(o.client_order_id for o in closed[split:])
    _note(kept, "orders_recent", len(closed) - split)

    groups = _groups(orders, unreadable=unreadable)
    archive: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for order in closed[:split]:
        group = groups.get(order.client_order_id, (order.client_order_id,))
        if group[0] in seen:
            continue
        seen.add(group[0])
        if any(cid in stay for cid in group):
            _note(kept, "orders_grouped_with_kept", sum(1 for cid in group if cid not in stay))
            continue
        archive.append(group)
    return tuple(archive)


def _serves_kept_position(
    order: OrderRecord, indexed_position: str | None, stay_positions: Mapping[str, PositionRecord | None]
) -> bool:
    for pid in {indexed_position, *order.position_ids} - {None}:
        assert pid is not None
        if pid not in stay_positions:
            continue
        pos = stay_positions[pid]
        # An unreadable position: keep everything linked to it, the node will report the corrupt entry.
        if pos is None or order.client_order_id in pos.client_order_ids or order.ts_last >= pos.ts_opened:
            return True
    return False


def _groups(orders: Mapping[str, OrderRecord], *, unreadable: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Connected orders (by linked ids, parent, order list, spawn): cid -> the sorted group, for groups > 1.

    Group tokens ("list:..", "spawn:..") and ids of orders that are not in `orders` join groups too; a group
    that references an unreadable order gets it as a member (so it stays).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for cid, order in orders.items():
        for ref in order.group_refs:
            parent[find(ref)] = find(cid)
    members: dict[str, list[str]] = {}
    unreadable_set = set(unreadable)
    for node in list(parent):
        if node in orders or node in unreadable_set:
            members.setdefault(find(node), []).append(node)
    return {cid: tuple(sorted(group)) for group in members.values() if len(group) > 1 for cid in group}


def account_cut(record: AccountRecord, *, keep_events: int) -> int:
    """How many events after the first to archive from an account's event list (0: none).

    The first event stays: nautilus builds the account from it and takes its starting balances from it. Of
    the rest, the last `keep_events` stay, and so does every event that is the latest to set some currency's
    balance, and the latest that sets any state at all (balances are replaced per currency, margins per
    event), so the account nautilus rebuilds has exactly the balances and margins it had.
    """
    if keep_events < 1:
        raise ValueError("keep_events must be >= 1")
    n = len(record.currencies)
    end = n - keep_events  # events [1, end) may go
    latest: dict[str, int] = {}
    last_state = 0
    for i, currencies in enumerate(record.currencies):
        for currency in currencies:
            latest[currency] = i
        if record.sets_state[i]:
            last_state = i
    # Event 0 always stays, so only later "latest" events bound the cut.
    end = min([end, *(i for i in (last_state, *latest.values()) if i > 0)])
    return max(0, end - 1)
