"""FR-003: the balance change over the downtime, and how much of it the missed fills explain (pure).

Binance USD-M reports `walletBalance` as the account's total (nautilus' `AccountBalance.total`). The wallet
moves by realized PnL minus commission on each fill, by funding and by transfers. Realized PnL is not on an
`OrderFilled`, so it is recomputed here by replaying the instrument's fills on a net (one-way) position with a
quantity-weighted entry price, which is how the venue computes `realizedPnl` for linear contracts.

What is left after the fills (funding, transfers, fills the cache never learned of) is reported as
`unexplained`, never hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NotRequired, TypedDict

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FillEffect:
    """One fill, as far as the wallet is concerned."""

    key: str  # recovery.missed.delivery_key
    instrument_id: str
    side: str  # "BUY" / "SELL"
    quantity: Decimal
    price: Decimal
    commission: Decimal
    commission_currency: str
    settlement_currency: str
    multiplier: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class Replay:
    realized: Mapping[str, Decimal]  # fill key -> realized PnL of that fill (settlement currency)
    signed_quantity: Decimal  # the net position after the last fill
    average_price: Decimal


class BalanceChange(TypedDict):
    """One currency's line in the recovery report."""

    venue: str
    currency: str
    before: str | None  # last known total (the cache's last AccountState before the restart)
    after: str | None  # the venue's total after connect
    change: str | None
    realized_pnl: str  # of the missed fills
    commission: str  # of the missed fills, in this currency
    explained: str  # realized_pnl - commission
    unexplained: str | None  # change - explained: funding, transfers, anything not a fill
    fills: int
    note: NotRequired[str]


def replay_realized(fills: Sequence[FillEffect]) -> Replay:
    """Realized PnL per fill on one instrument's net position, fills given in venue order from flat."""
    quantity = _ZERO
    average = _ZERO
    realized: dict[str, Decimal] = {}
    for fill in fills:
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        pnl = _ZERO
        if quantity == 0 or (quantity > 0) == (signed > 0):
            total = abs(quantity) + fill.quantity
            average = (abs(quantity) * average + fill.quantity * fill.price) / total
            quantity += signed
        else:
            closed = min(abs(quantity), fill.quantity)
            direction = 1 if quantity > 0 else -1
            pnl = closed * (fill.price - average) * direction * fill.multiplier
            quantity += signed
            if quantity == 0:
                average = _ZERO
            elif (quantity > 0) != (direction > 0):
                average = fill.price  # flipped: the remainder opened at this fill's price
        realized[fill.key] = pnl
    return Replay(realized, quantity, average)


def explain_balances(
    venue: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
    missed: Iterable[FillEffect],
    realized: Mapping[str, Decimal],
    *,
    incomplete: Iterable[str] = (),
) -> list[BalanceChange]:
    """One line per currency seen before, after or in the missed fills.

    `incomplete` lists instruments whose fill history in the cache does not add up to the position (older
    fills purged): their realized PnL is unknown and the line says so.
    """
    realized_by_ccy: dict[str, Decimal] = {}
    commission_by_ccy: dict[str, Decimal] = {}
    count_by_ccy: dict[str, int] = {}
    for fill in missed:
        realized_by_ccy[fill.settlement_currency] = realized_by_ccy.get(
            fill.settlement_currency, _ZERO
        ) + realized.get(fill.key, _ZERO)
        commission_by_ccy[fill.commission_currency] = (
            commission_by_ccy.get(fill.commission_currency, _ZERO) + fill.commission
        )
        count_by_ccy[fill.settlement_currency] = count_by_ccy.get(fill.settlement_currency, 0) + 1
    incomplete_set = sorted(set(incomplete))
    lines: list[BalanceChange] = []
    for currency in sorted(set(before) | set(after) | set(realized_by_ccy) | set(commission_by_ccy)):
        b = _dec(before.get(currency))
        a = _dec(after.get(currency))
        pnl = realized_by_ccy.get(currency, _ZERO)
        fee = commission_by_ccy.get(currency, _ZERO)
        explained = pnl - fee
        change = a - b if a is not None and b is not None else None
        line = BalanceChange(
            venue=venue,
            currency=currency,
            before=_text(b),
            after=_text(a),
            change=_text(change),
            realized_pnl=_text(pnl) or "0",
            commission=_text(fee) or "0",
            explained=_text(explained) or "0",
            unexplained=_text(change - explained) if change is not None else None,
            fills=count_by_ccy.get(currency, 0),
        )
        if incomplete_set:
            line["note"] = (
                f"fill history incomplete for {', '.join(incomplete_set)}: realized PnL not recomputed"
            )
        lines.append(line)
    return lines


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    if value == 0:
        return "0"
    return format(value.normalize(), "f")
