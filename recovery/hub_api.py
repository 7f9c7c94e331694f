"""What a RecoverableStrategy needs from the node's recovery hub (`recovery.hub.RecoveryHub`).

Structural types only: the strategy side codes against the hub contract and accepts any object that has
these members, so it does not import the node runtime. Venue-side values are typed `object` and converted
with `str()` / `Decimal(str())` where they are read (`venue_open_orders`), which accepts both plain strings
and nautilus value types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from recovery.protective import OpenOrder


class DurableStore(Protocol):
    async def set(self, key: str, value: bytes) -> None:
        """Return only once Redis acknowledged the write (bounded by a timeout)."""

    async def delete(self, key: str) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The value as the nautilus cache loaded it at start (same keys as `cache.add`)."""


class VenueOpenOrder(Protocol):
    @property
    def client_order_id(self) -> object: ...
    @property
    def venue_order_id(self) -> object: ...
    @property
    def instrument_id(self) -> object: ...
    @property
    def side(self) -> object: ...
    @property
    def order_type(self) -> object: ...
    @property
    def quantity(self) -> object: ...
    @property
    def trigger_price(self) -> object: ...
    @property
    def reduce_only(self) -> bool: ...
    @property
    def close_position(self) -> bool: ...


class VenueReconciliation(Protocol):
    @property
    def venue(self) -> str: ...
    @property
    def positions(self) -> Sequence[Any]: ...
    @property
    def open_orders(self) -> Sequence[VenueOpenOrder]: ...
    @property
    def discrepancies(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def balances_before(self) -> Mapping[str, str]: ...
    @property
    def balances_after(self) -> Mapping[str, str]: ...


class RecoveryHub(Protocol):
    @property
    def trader_id(self) -> str: ...
    @property
    def reconciliation(self) -> Mapping[str, VenueReconciliation]: ...
    @property
    def lost_cache(self) -> bool: ...
    @property
    def durable(self) -> DurableStore: ...

    def attach(self, strategy_id: str) -> None: ...
    def strategy_phase(self, strategy_id: str, phase: str, detail: Mapping[str, Any]) -> None: ...
    def request_trading_state(self, strategy_id: str, state: str) -> None: ...
    def strategy_ready(self, strategy_id: str) -> None: ...
    def strategy_failed(
        self, strategy_id: str, reason: str, detail: Mapping[str, Any], *, fatal: bool
    ) -> None: ...


def venue_open_orders(reconciliation: VenueReconciliation) -> list[OpenOrder]:
    """The venue's open orders (conditional ones included) as plain values for `plan_protective`."""
    return [
        OpenOrder(
            client_order_id=str(o.client_order_id),
            instrument_id=str(o.instrument_id),
            side=_enum_text(o.side),
            order_type=_enum_text(o.order_type),
            quantity=Decimal(str(o.quantity)),
            trigger_price=None if o.trigger_price is None else Decimal(str(o.trigger_price)),
            reduce_only=bool(o.reduce_only),
            venue_order_id=None if o.venue_order_id is None else str(o.venue_order_id),
            close_position=bool(getattr(o, "close_position", False)),
        )
        for o in reconciliation.open_orders
    ]


def _enum_text(value: object) -> str:
    # Plain text or a StrEnum ("SELL"), else a nautilus enum, whose str() may be its number: use its name.
    if isinstance(value, str):
        return str(value)
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)
