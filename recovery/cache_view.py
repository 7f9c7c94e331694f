"""Plain values read from nautilus' cache: net positions per instrument, order counts, balances."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recovery.positions_hash import PositionPart
from recovery.postcheck import net_by_instrument

# Reconciliation puts orders nobody claims under this strategy id (and INTERNAL-DIFF before 1.222).
EXTERNAL_STRATEGIES = frozenset({"EXTERNAL", "INTERNAL-DIFF"})


@dataclass(frozen=True, kw_only=True)
class CacheSummary:
    """The cache as loaded (before connecting): what a restarted node believed."""

    positions_open: int
    orders_open: int
    orders_inflight: int
    orders_total: int
    net: dict[str, Decimal]
    balances: dict[str, str]
    client_order_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        return self.positions_open == 0 and self.orders_open == 0 and self.orders_inflight == 0

    def detail(self) -> dict[str, Any]:
        return {
            "positions": self.positions_open,
            "orders_open": self.orders_open,
            "orders_inflight": self.orders_inflight,
            "orders": self.orders_total,
            "balances": self.balances,
        }


def summarize(cache: Any, account_id: Any) -> CacheSummary:
    orders = cache.orders()
    return CacheSummary(
        positions_open=len(cache.positions_open()),
        orders_open=len(cache.orders_open()),
        orders_inflight=len(cache.orders_inflight()),
        orders_total=len(orders),
        net=net_positions(cache, account_id),
        balances=balances(cache, account_id),
        client_order_ids=frozenset(o.client_order_id.value for o in orders),
    )


def net_positions(cache: Any, account_id: Any, *, external_only: bool = False) -> dict[str, Decimal]:
    """Signed net quantity per instrument over the open positions of the account."""
    return net_by_instrument(
        (str(p.instrument_id), Decimal(str(p.signed_decimal_qty())))
        for p in cache.positions_open(account_id=account_id)
        if not external_only or p.strategy_id.value in EXTERNAL_STRATEGIES
    )


def balances(cache: Any, account_id: Any) -> dict[str, str]:
    """Currency -> total balance, from the account's last state in the cache ({} when none is known)."""
    account = cache.account(account_id)
    if account is None:
        return {}
    return {str(currency): str(money.as_decimal()) for currency, money in account.balances_total().items()}


def position_parts(
    cache: Any, *, instrument_id: Any = None, unrealized: dict[str, Decimal] | None = None
) -> list[PositionPart]:
    kwargs = {"instrument_id": instrument_id} if instrument_id is not None else {}
    parts = []
    for p in cache.positions_open(**kwargs):
        instrument = str(p.instrument_id)
        parts.append(
            PositionPart(
                instrument_id=instrument,
                signed_qty=Decimal(str(p.signed_decimal_qty())),
                avg_px_open=_price(cache, p),
                realized_pnl=Decimal(str(p.realized_pnl.as_decimal()))
                if p.realized_pnl is not None
                else Decimal(0),
                unrealized_pnl=(unrealized or {}).get(instrument),
                ts_opened=int(p.ts_opened),
                ts_last=int(p.ts_last),
            )
        )
    return parts


def _price(cache: Any, position: Any) -> Decimal:
    """The average entry price at the instrument's price precision (nautilus keeps it as a float)."""
    value = Decimal(str(position.avg_px_open))
    instrument = cache.instrument(position.instrument_id)
    if instrument is None:
        return value
    return value.quantize(Decimal(1).scaleb(-instrument.price_precision))


def _money(value: Any) -> Decimal:
    return Decimal(str(value.as_decimal())) if value is not None else Decimal(0)
