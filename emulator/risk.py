"""Account risk figures (unrealized PnL, margins, available balance) computed from positions and marks.

Cross margin, one asset (USDT). Pure: inputs are the account record, its open orders and the mark prices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from emulator import accounting
from emulator.numbers import ZERO
from emulator.state import Account, Order
from emulator.symbols import SymbolSpec

QUOTE = "USDT"


@dataclass(frozen=True, slots=True)
class PositionRisk:
    symbol: str
    amount: Decimal
    entry_price: Decimal
    mark: Decimal
    notional: Decimal  # signed, at mark
    unrealized: Decimal
    leverage: int
    initial_margin: Decimal
    maint_margin: Decimal
    open_order_margin: Decimal
    bid_notional: Decimal
    ask_notional: Decimal
    max_notional: Decimal
    update_time: int


@dataclass(frozen=True, slots=True)
class AccountRisk:
    wallet: Decimal
    unrealized: Decimal
    position_initial: Decimal
    open_order_initial: Decimal
    maint: Decimal
    positions: dict[str, PositionRisk] = field(default_factory=dict)

    @property
    def margin_balance(self) -> Decimal:
        return self.wallet + self.unrealized

    @property
    def initial(self) -> Decimal:
        return self.position_initial + self.open_order_initial

    @property
    def available(self) -> Decimal:
        return max(ZERO, self.margin_balance - self.initial)

    @property
    def max_withdraw(self) -> Decimal:
        return max(ZERO, min(self.available, self.wallet))


def _order_notionals(orders: Iterable[Order]) -> tuple[Decimal, Decimal]:
    bid = ask = ZERO
    for order in orders:
        if order.type != "LIMIT":
            continue
        remaining = (order.orig_qty - order.executed_qty) * order.price
        if order.side == "BUY":
            bid += remaining
        else:
            ask += remaining
    return bid, ask


def position_risk(
    account: Account, spec: SymbolSpec, mark: Decimal, open_orders: list[Order]
) -> PositionRisk:
    pos = account.positions.get(spec.symbol)
    amount = pos.amount if pos else ZERO
    entry = pos.entry_price if pos else ZERO
    leverage = account.leverage_for(spec.symbol)
    notional = amount * mark
    bid, ask = _order_notionals(order for order in open_orders if not order.reduce_only)
    # Open orders reserve margin only for the side that would extend the position.
    extending = ask if amount < 0 else bid if amount > 0 else max(bid, ask)
    brackets = spec.brackets
    max_notional = max(
        (b.notional_cap for b in brackets if b.initial_leverage >= leverage), default=brackets[0].notional_cap
    )
    return PositionRisk(
        symbol=spec.symbol,
        amount=amount,
        entry_price=entry,
        mark=mark,
        notional=notional,
        unrealized=accounting.unrealized_pnl(amount, entry, mark),
        leverage=leverage,
        initial_margin=accounting.initial_margin(abs(notional), leverage),
        maint_margin=accounting.maint_margin(abs(notional), brackets),
        open_order_margin=accounting.initial_margin(extending, leverage),
        bid_notional=bid,
        ask_notional=ask,
        max_notional=max_notional,
        update_time=pos.update_time if pos else 0,
    )


def account_risk(
    account: Account,
    specs: dict[str, SymbolSpec],
    mark_of: Callable[[str], Decimal],
    open_orders_of: Callable[[str], list[Order]],
    symbols: Iterable[str],
) -> AccountRisk:
    """Risk of `account` over `symbols` (those with a position or open orders matter; others add nothing)."""
    positions: dict[str, PositionRisk] = {}
    unrealized = pos_im = order_im = maint = ZERO
    for symbol in symbols:
        risk = position_risk(account, specs[symbol], mark_of(symbol), open_orders_of(symbol))
        positions[symbol] = risk
        unrealized += risk.unrealized
        pos_im += risk.initial_margin
        order_im += risk.open_order_margin
        maint += risk.maint_margin
    return AccountRisk(
        wallet=account.wallet.get(QUOTE, ZERO),
        unrealized=unrealized,
        position_initial=pos_im,
        open_order_initial=order_im,
        maint=maint,
        positions=positions,
    )
