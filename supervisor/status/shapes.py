"""The dict shapes the status publishers read from recovery reports and phase details.

`RecoveryReport.discrepancies`, `RecoveryReport.actions` and the `X_DETAIL` of a node's `reconciled` phase are
plain JSON dicts (they cross a process boundary). The node's recovery library produces exactly these shapes;
the readers below are tolerant, because a node may also be a user's own command: a malformed entry is
skipped or defaulted, never allowed to break supervision.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Any, NotRequired, TypedDict

from supervisor.config.schema import VENUE_NAME_PATTERN

log = logging.getLogger(__name__)

_VENUE_RE = re.compile(VENUE_NAME_PATTERN)
UNKNOWN_VENUE = "unknown"


class DiscrepancyKind(enum.StrEnum):
    """How the cached position differed from the venue's at reconciliation."""

    QUANTITY = "quantity"  # both sides hold a position of the same side, sizes differ
    SIDE = "side"  # long in the cache, short at the venue (or the reverse)
    MISSING_IN_CACHE = "missing_in_cache"  # the venue holds a position the cache does not know
    MISSING_AT_VENUE = "missing_at_venue"  # the cache holds a position the venue closed (e.g. a stop hit)
    ORDER_HISTORY = "order_history"  # an order's venue fills fall short of the cache's (order ids given)
    OTHER = "other"  # anything else a node reports (metrics label value for unknown kinds)


class ActionKind(enum.StrEnum):
    """What recovery did to the venue (or was refused) before handing control to the strategy."""

    PROTECTIVE_PLACED = "protective_placed"  # a missing stop-loss/take-profit was placed
    PROTECTIVE_CANCELLED = "protective_cancelled"  # an orphaned protective order was cancelled
    PROTECTIVE_RELINKED = "protective_relinked"  # an existing venue order was re-attached to the strategy
    DUPLICATE_REJECTED = "duplicate_rejected"  # the venue refused a client order id it already had
    SYNTHETIC_FILL = "synthetic_fill"  # a fill the venue no longer reports was synthesized


class ReconciliationResult(enum.StrEnum):
    MATCHED = "matched"  # cache and venue agreed
    RESOLVED = "resolved"  # they differed; every difference was resolved
    UNRESOLVED = "unresolved"  # at least one difference is still open


class Discrepancy(TypedDict):
    """One entry of `RecoveryReport.discrepancies` and of a reconciliation detail's `discrepancies`."""

    venue: str
    instrument: str  # nautilus instrument id, e.g. "BTCUSDT-PERP.BINANCE"
    kind: str  # a DiscrepancyKind value
    cached_qty: NotRequired[str]  # signed decimal string; "0" when the cache had none
    venue_qty: NotRequired[str]  # signed decimal string; "0" when the venue had none
    resolved: bool
    resolution: NotRequired[str]  # what was done, e.g. "adopted_venue", "synthetic_fill"
    client_order_id: NotRequired[str]  # order_history: the order concerned
    venue_order_id: NotRequired[str]


class RecoveryAction(TypedDict):
    """One entry of `RecoveryReport.actions`."""

    action: str  # an ActionKind value
    venue: str
    instrument: NotRequired[str]
    client_order_id: NotRequired[str]
    order_type: NotRequired[str]  # e.g. "STOP_MARKET"
    detail: NotRequired[str]


class PositionSummary(TypedDict):
    instrument: str
    side: str  # "LONG", "SHORT" or "FLAT"
    quantity: str  # decimal string


class ReconciliationDetail(TypedDict):
    """The `X_DETAIL` a node sends with each `reconciled` phase: one per venue."""

    venue: str
    result: NotRequired[str]  # a ReconciliationResult value; derived from `discrepancies` when absent
    positions: NotRequired[list[PositionSummary]]  # the positions after reconciliation
    discrepancies: NotRequired[list[Discrepancy]]
    open_orders: NotRequired[int]


def venue_label(value: object) -> str:
    """A venue name safe for a metrics label; names outside the schema's pattern become `unknown`."""
    if isinstance(value, str) and _VENUE_RE.match(value):
        return value
    return UNKNOWN_VENUE


def discrepancy_kind(value: object) -> DiscrepancyKind:
    try:
        return DiscrepancyKind(str(value))
    except ValueError:
        return DiscrepancyKind.OTHER


def is_unresolved(entry: dict[str, Any]) -> bool:
    # Only an explicit `resolved: true` counts as resolved: a missing flag is treated as still open.
    return entry.get("resolved") is not True


def action_kind(value: object) -> ActionKind | None:
    try:
        return ActionKind(str(value))
    except ValueError:
        return None


def reconciliation_result(detail: dict[str, Any]) -> ReconciliationResult:
    """The detail's own `result` when valid, else derived from its discrepancies."""
    stated = detail.get("result")
    if stated is not None:
        try:
            return ReconciliationResult(str(stated))
        except ValueError:
            log.warning("reconciliation detail has an unknown result %r; deriving it", stated)
    entries = [d for d in detail.get("discrepancies") or () if isinstance(d, dict)]
    if not entries:
        return ReconciliationResult.MATCHED
    if any(is_unresolved(d) for d in entries):
        return ReconciliationResult.UNRESOLVED
    return ReconciliationResult.RESOLVED
