"""The matching engine: orders, fills, positions and balances, and the events they emit.

Synchronous and free of I/O: HTTP handlers and the admin API call it, it mutates `VenueState` and reports what
happened to an `EventSink` (user-stream events, public trade prints). Decisions it delegates to pure modules:
`matching` (what crosses or triggers), `accounting` (positions, PnL, fees), `risk` (margins).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from emulator import accounting, errors, events, matching
from emulator.algos import AlgoService
from emulator.commands import NewOrder
from emulator.events import Execution
from emulator.numbers import ZERO, round_balance
from emulator.risk import QUOTE, AccountRisk, account_risk, position_risk
from emulator.state import (
    Account,
    Attempts,
    Income,
    Order,
    Trade,
    VenueState,
    token,
)
from emulator.symbols import SymbolSpec

log = logging.getLogger(__name__)

CLIENT_ID_LENGTH = 22


class EventSink(Protocol):
    def user_event(self, account: str, payload: dict[str, object], delay_ms: int = 0) -> None: ...

    def trade_print(
        self, symbol: str, price: Decimal, qty: Decimal, buyer_maker: bool, time: int
    ) -> None: ...


class PriceSource(Protocol):
    def last(self, symbol: str) -> Decimal: ...

    def mark(self, symbol: str) -> Decimal: ...


class Exchange:
    """All trading state transitions of the venue. One instance per emulator process."""

    def __init__(
        self,
        state: VenueState,
        specs: dict[str, SymbolSpec],
        prices: PriceSource,
        sink: EventSink,
        clock: Callable[[], int],
        *,
        algo_finish_delay_ms: int = 0,
    ) -> None:
        self.state = state
        self.specs = specs
        self.prices = prices
        self.sink = sink
        self.now = clock
        self._rebuild_indexes()
        self.algos = AlgoService(self, finish_delay_ms=algo_finish_delay_ms)
        # Liquidity per price level by symbol (admin `depth`); absent: one level of unlimited liquidity.
        self.level_qty: dict[str, Decimal] = {}

    # ------------------------------------------------------------------ indexes

    def _rebuild_indexes(self) -> None:
        self._by_key = {a.api_key: a for a in self.state.accounts.values()}
        self._open_orders: dict[str, dict[int, Order]] = defaultdict(dict)
        self._open_by_account: dict[str, dict[int, Order]] = defaultdict(dict)
        self._orders_of: dict[tuple[str, str], list[Order]] = defaultdict(list)
        self._trades_of: dict[tuple[str, str], list[Trade]] = defaultdict(list)
        self._income_of: dict[str, list[Income]] = defaultdict(list)
        self._client_ids: dict[tuple[str, str, str], Order] = {}
        for order in sorted(self.state.orders.values(), key=lambda o: o.order_id):
            self._index_order(order)
        for trade in self.state.trades:
            self._trades_of[(trade.account, trade.symbol)].append(trade)
        for record in self.state.income:
            self._income_of[record.account].append(record)

    def _index_order(self, order: Order) -> None:
        self._orders_of[(order.account, order.symbol)].append(order)
        self._client_ids[(order.account, order.symbol, order.client_order_id)] = order
        if order.is_open:
            self._open_orders[order.symbol][order.order_id] = order
            self._open_by_account[order.account][order.order_id] = order

    def _order_closed(self, order: Order) -> None:
        self._open_orders[order.symbol].pop(order.order_id, None)
        self._open_by_account[order.account].pop(order.order_id, None)

    # ------------------------------------------------------------------ accounts

    def account_by_key(self, api_key: str) -> Account | None:
        return self._by_key.get(api_key)

    def account(self, name: str) -> Account:
        try:
            return self.state.accounts[name]
        except KeyError:
            raise KeyError(f"no account named {name!r}") from None

    def add_account(self, account: Account, deposit: Decimal) -> None:
        self.state.accounts[account.name] = account
        self._by_key[account.api_key] = account
        if deposit:
            self.deposit(account, deposit, "Initial deposit")

    def deposit(self, account: Account, amount: Decimal, info: str) -> None:
        now = self.now()
        account.wallet[QUOTE] = account.wallet.get(QUOTE, ZERO) + amount
        account.update_time = now
        self._income(account.name, "", "TRANSFER", amount, now=now, info=info)

    def active_symbols(self, account: Account) -> list[str]:
        """Symbols where the account has a position or open orders (what risk and positionRisk v3 cover)."""
        symbols = {s for s, p in account.positions.items() if p.amount != 0}
        symbols.update(o.symbol for o in self._open_by_account[account.name].values())
        return sorted(symbols)

    def open_orders_of(self, account: str, symbol: str) -> list[Order]:
        return [o for o in self._open_orders[symbol].values() if o.account == account]

    def risk(self, account: Account, symbols: Iterable[str] | None = None) -> AccountRisk:
        return account_risk(
            account,
            self.specs,
            self.prices.mark,
            lambda symbol: self.open_orders_of(account.name, symbol),
            self.active_symbols(account) if symbols is None else symbols,
        )

    # ------------------------------------------------------------------ queries

    def orders_of(self, account: str, symbol: str) -> list[Order]:
        return self._orders_of[(account, symbol)]

    def trades_of(self, account: str, symbol: str) -> list[Trade]:
        return self._trades_of[(account, symbol)]

    def income_of(self, account: str) -> list[Income]:
        return self._income_of[account]

    def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        orders = self._open_by_account[account].values()
        return sorted((o for o in orders if symbol is None or o.symbol == symbol), key=lambda o: o.order_id)

    def find_order(
        self, account: str, symbol: str, order_id: int | None, client_id: str | None
    ) -> Order | None:
        if order_id is not None:
            order = self.state.orders.get(order_id)
            return order if order and order.account == account and order.symbol == symbol else None
        if client_id is not None:
            return self._client_ids.get((account, symbol, client_id))
        raise errors.mandatory_missing("orderId")

    # ------------------------------------------------------------------ attempts

    def record_attempt(
        self, account: str, client_id: str, order_id: int | None, error_code: int | None
    ) -> None:
        per_account = self.state.attempts.setdefault(account, {})
        record = per_account.setdefault(client_id, Attempts())
        record.attempts += 1
        if order_id is not None:
            record.accepted += 1
            record.order_ids.append(order_id)
        else:
            record.rejected += 1
            record.last_error = error_code or 0

    # ------------------------------------------------------------------ ids

    def next_order_id(self) -> int:
        self.state.counters.order_id += 1
        return self.state.counters.order_id

    def _next_trade_id(self) -> int:
        self.state.counters.trade_id += 1
        return self.state.counters.trade_id

    def _next_tran_id(self) -> int:
        self.state.counters.tran_id += 1
        return self.state.counters.tran_id

    def auto_client_id(self) -> str:
        self.state.counters.auto_id += 1
        return token(self.state.seed, "client-id", self.state.counters.auto_id, CLIENT_ID_LENGTH)

    def new_listen_key(self) -> str:
        self.state.counters.listen_key += 1
        return token(self.state.seed, "listen-key", self.state.counters.listen_key, 64)

    # ------------------------------------------------------------------ order placement

    def place_order(self, account: Account, cmd: NewOrder, source: str = "api") -> Order:
        spec = self.specs[cmd.symbol]
        client_id = cmd.client_order_id or self.auto_client_id()
        existing = self._client_ids.get((account.name, cmd.symbol, client_id))
        if existing is not None and existing.is_open:
            raise errors.duplicate_client_order_id()
        last = self.prices.last(cmd.symbol)
        quantity = self._check_reduce_only(account, cmd.symbol, cmd.side, cmd.quantity, cmd.reduce_only)
        if cmd.type == "LIMIT":
            assert cmd.price is not None
            self._check_percent_price(spec, cmd.side, cmd.price)
            crosses = matching.limit_crosses(cmd.side, cmd.price, last)
            if cmd.time_in_force == "GTX" and crosses:
                raise errors.post_only_rejected()
        exec_price = cmd.price if cmd.type == "LIMIT" and cmd.price is not None else last
        self._check_notional(spec, quantity, exec_price, cmd.reduce_only)
        self.check_margin(account, cmd.symbol, cmd.side, quantity, exec_price, reduce_only=cmd.reduce_only)
        now = self.now()
        order = Order(
            order_id=self.next_order_id(),
            account=account.name,
            symbol=cmd.symbol,
            client_order_id=client_id,
            side=cmd.side,
            type=cmd.type,
            orig_type=cmd.type,
            time_in_force=cmd.time_in_force,
            orig_qty=quantity,
            price=cmd.price or ZERO,
            reduce_only=cmd.reduce_only,
            good_till_date=cmd.good_till_date,
            time=now,
            update_time=now,
            source=source,
        )
        self.submit(order, last)
        return order

    def submit(self, order: Order, last: Decimal) -> None:
        """Accept a new order into the book and match it (also how triggered algo orders arrive)."""
        self._accept(order)
        self._execute_new(order, last)

    def _accept(self, order: Order) -> None:
        self.state.orders[order.order_id] = order
        self._index_order(order)
        self._emit_order(order, Execution("NEW"))

    def _execute_new(self, order: Order, last: Decimal) -> None:
        """Match a new order: market and crossing limits take liquidity, IOC/FOK leftovers expire."""
        if order.type == "MARKET" or matching.limit_crosses(order.side, order.price, last):
            self._take(order, last)
        elif order.time_in_force in ("IOC", "FOK"):
            self._finish(order, "EXPIRED")

    def _check_reduce_only(
        self, account: Account, symbol: str, side: str, qty: Decimal, reduce_only: bool
    ) -> Decimal:
        """A reduce-only order is cut to the position size, and rejected when it cannot reduce at all."""
        if not reduce_only:
            return qty
        position = account.positions.get(symbol)
        allowed = accounting.reduce_only_quantity(position.amount if position else ZERO, side, qty)
        if allowed == 0:
            raise errors.reduce_only_rejected()
        return allowed

    def _check_percent_price(self, spec: SymbolSpec, side: str, price: Decimal) -> None:
        mark = self.prices.mark(spec.symbol)
        if side == "BUY":
            bound = (mark * spec.multiplier_up).quantize(spec.tick_size)
            if price > bound:
                raise errors.limit_price_too_high(str(bound))
        else:
            bound = (mark * spec.multiplier_down).quantize(spec.tick_size)
            if price < bound:
                raise errors.limit_price_too_low(str(bound))

    @staticmethod
    def _check_notional(spec: SymbolSpec, qty: Decimal, price: Decimal, reduce_only: bool) -> None:
        if not reduce_only and qty * price < spec.min_notional:
            raise errors.notional_too_small(str(spec.min_notional.normalize()))

    def check_margin(
        self, account: Account, symbol: str, side: str, qty: Decimal, price: Decimal, *, reduce_only: bool
    ) -> None:
        if reduce_only:
            return
        position = account.positions.get(symbol)
        extra = accounting.increases_exposure(position.amount if position else ZERO, side, qty)
        if extra == 0:
            return
        required = accounting.initial_margin(extra * price, account.leverage_for(symbol))
        if required > self.risk(account).available:
            raise errors.margin_insufficient()

    # ------------------------------------------------------------------ fills

    def _take(self, order: Order, last: Decimal) -> None:
        """Fill a taker order against the book: one trade, or one per price level it walks through, all in
        the same transaction time (as the venue reports a market order that sweeps several levels)."""
        limit = order.price if order.type == "LIMIT" else None
        trades = matching.sweep(
            order.side,
            order.orig_qty - order.executed_qty,
            last,
            tick=self.specs[order.symbol].tick_size,
            level_qty=self.level_qty.get(order.symbol),
            limit=limit,
        )
        now = self.now()
        for price, qty in trades:
            self._fill(order, qty, price, maker=False, at=now)

    def _fill(
        self, order: Order, qty: Decimal, price: Decimal, *, maker: bool, at: int | None = None
    ) -> Trade:
        account = self.state.accounts[order.account]
        now = self.now() if at is None else at
        position = account.position(order.symbol)
        effect = accounting.apply_fill(position.amount, position.entry_price, order.side, qty, price)
        fee = accounting.commission(qty, price, account.maker_rate if maker else account.taker_rate)
        was_amount = position.amount
        position.amount, position.entry_price = effect.amount, effect.entry_price
        position.accumulated_realized += effect.realized_pnl
        position.update_time = now
        account.wallet[QUOTE] = account.wallet.get(QUOTE, ZERO) + effect.realized_pnl - fee
        account.update_time = now
        trade = Trade(
            trade_id=self._next_trade_id(),
            order_id=order.order_id,
            account=account.name,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=qty * price,
            commission=fee,
            commission_asset=QUOTE,
            realized_pnl=round_balance(effect.realized_pnl),
            maker=maker,
            time=now,
        )
        self.state.trades.append(trade)
        self._trades_of[(account.name, order.symbol)].append(trade)
        if effect.realized_pnl:
            self._income(
                account.name,
                order.symbol,
                "REALIZED_PNL",
                effect.realized_pnl,
                now=now,
                trade_id=trade.trade_id,
            )
        self._income(account.name, order.symbol, "COMMISSION", -fee, now=now, trade_id=trade.trade_id)
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.update_time = now
        order.status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._order_closed(order)
        self.sink.user_event(order.account, events.trade_lite(order, self.specs[order.symbol], trade))
        self._emit_order(order, Execution("TRADE", trade))
        self._emit_account(account, "ORDER", [order.symbol])
        self.sink.trade_print(order.symbol, price, qty, (order.side == "BUY") == maker, now)
        if (was_amount > 0) != (position.amount > 0) or position.amount == 0:
            self._expire_stale_reduce_only(account, order.symbol, order.order_id)
        if order.algo_id and order.status == "FILLED":
            self.algos.child_done(order)
        return trade

    def _expire_stale_reduce_only(self, account: Account, symbol: str, skip: int) -> None:
        """Resting reduce-only orders that can no longer reduce the position are expired by the venue."""
        amount = account.positions[symbol].amount
        for order in self.open_orders_of(account.name, symbol):
            stale = accounting.reduce_only_quantity(amount, order.side, order.orig_qty) == 0
            if order.order_id != skip and order.reduce_only and stale:
                self._finish(order, "EXPIRED")

    def _finish(self, order: Order, status: str) -> None:
        """Close an order without (further) fills: CANCELED or EXPIRED."""
        order.status = status
        order.update_time = self.now()
        self._order_closed(order)
        self._emit_order(order, Execution(status))
        if order.algo_id:
            self.algos.child_done(order)

    def _income(
        self,
        account: str,
        symbol: str,
        kind: str,
        amount: Decimal,
        *,
        now: int,
        info: str = "",
        trade_id: int = 0,
    ) -> None:
        record = Income(
            tran_id=self._next_tran_id(),
            account=account,
            symbol=symbol,
            income_type=kind,
            income=round_balance(amount),
            asset=QUOTE,
            info=info or kind,
            time=now,
            trade_id=str(trade_id) if trade_id else "",
        )
        self.state.income.append(record)
        self._income_of[account].append(record)

    # ------------------------------------------------------------------ cancels

    def cancel_order(
        self, account: Account, symbol: str, order_id: int | None, client_id: str | None
    ) -> Order:
        order = self.find_order(account.name, symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise errors.unknown_order_sent()
        self._finish(order, "CANCELED")
        return order

    def modify_order(self, order: Order, side: str, quantity: Decimal, price: Decimal) -> Order:
        """Amend a resting LIMIT order's price and quantity (x=AMENDMENT); it may then cross and fill."""
        if not order.is_open:
            raise errors.unknown_order_sent()
        if order.type != "LIMIT":
            raise errors.invalid_order_type()
        if side != order.side:
            raise errors.invalid_side()
        if quantity <= order.executed_qty:
            raise errors.qty_not_positive()
        if quantity == order.orig_qty and price == order.price:
            raise errors.no_need_to_modify()
        spec = self.specs[order.symbol]
        self._check_percent_price(spec, side, price)
        order.orig_qty, order.price = quantity, price
        order.update_time = self.now()
        self._emit_order(order, Execution("AMENDMENT"))
        last = self.prices.last(order.symbol)
        if matching.limit_crosses(order.side, order.price, last):
            self._fill(order, order.orig_qty - order.executed_qty, last, maker=False)
        return order

    def cancel_all_orders(self, account: Account, symbol: str) -> int:
        orders = self.open_orders(account.name, symbol)
        for order in orders:
            self._finish(order, "CANCELED")
        return len(orders)

    # ------------------------------------------------------------------ price-driven matching

    def on_price(self, symbol: str) -> None:
        """Fill resting limits the last price reached, then fire conditional orders it triggers."""
        last = self.prices.last(symbol)
        for order in list(self._open_orders[symbol].values()):
            if (
                order.type == "LIMIT"
                and order.is_open
                and matching.resting_limit_fills(order.side, order.price, last)
            ):
                self._fill_resting(order, order.price)
        self.algos.on_price(symbol)

    def _fill_resting(self, order: Order, price: Decimal, qty: Decimal | None = None) -> None:
        remaining = order.orig_qty - order.executed_qty
        if order.reduce_only:
            account = self.state.accounts[order.account]
            position = account.positions.get(order.symbol)
            remaining = accounting.reduce_only_quantity(
                position.amount if position else ZERO, order.side, remaining
            )
            if remaining == 0:
                self._finish(order, "EXPIRED")
                return
        self._fill(order, min(remaining, qty) if qty is not None else remaining, price, maker=True)

    def expire_due(self) -> None:
        """GTD orders and conditional orders whose goodTillDate has passed."""
        now = self.now()
        for orders in list(self._open_orders.values()):
            for order in list(orders.values()):
                if order.good_till_date and order.good_till_date <= now:
                    self._finish(order, "EXPIRED")
        self.algos.expire_due(now)

    # ------------------------------------------------------------------ account settings

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> int:
        spec = self.specs[symbol]
        if not 1 <= leverage <= spec.max_leverage:
            raise errors.invalid_value("leverage")
        account.leverage[symbol] = leverage
        return leverage

    def set_margin_type(self, account: Account, symbol: str, margin_type: str) -> None:
        if account.margin_type.get(symbol, "CROSSED") == margin_type:
            raise errors.no_need_to_change_margin_type()
        account.margin_type[symbol] = margin_type

    # ------------------------------------------------------------------ admin operations

    def admin_fill(self, order: Order, qty: Decimal | None, price: Decimal | None) -> None:
        """Fill a resting order now (fully, or `qty` of it) at its limit price or `price`, as maker."""
        if not order.is_open:
            raise errors.unknown_order_sent()
        fill_price = (
            price
            if price is not None
            else (order.price if order.type == "LIMIT" else self.prices.last(order.symbol))
        )
        self._fill_resting(order, fill_price, qty)

    def set_position(
        self, account: Account, symbol: str, amount: Decimal, entry_price: Decimal, notify: bool
    ) -> None:
        """Change a position without trades or income (as if done elsewhere); optionally announce it."""
        position = account.position(symbol)
        position.amount = amount
        position.entry_price = entry_price if amount else ZERO
        position.update_time = self.now()
        if notify:
            self._emit_account(account, "ADJUSTMENT", [symbol])

    def backdate_order(self, order: Order, ms: int) -> None:
        """Move an order (and its trades) `ms` into the past, e.g. to age it beyond a history window."""
        order.time -= ms
        order.update_time -= ms
        for trade in self._trades_of[(order.account, order.symbol)]:
            if trade.order_id == order.order_id:
                trade.time -= ms

    def set_wallet(self, account: Account, amount: Decimal, notify: bool) -> None:
        """Set the wallet (admin): the difference is booked as a transfer, so income still explains it."""
        change = amount - account.wallet.get(QUOTE, ZERO)
        account.wallet[QUOTE] = amount
        account.update_time = now = self.now()
        if change:
            self._income(account.name, "", "TRANSFER", change, now=now, info="Admin transfer")
        if notify:
            self._emit_account(account, "DEPOSIT" if change >= 0 else "WITHDRAW", [], change)

    def apply_funding(self, symbol: str, rate: Decimal) -> int:
        """Settle funding on every open position in `symbol`: longs pay `rate * notional` (shorts receive)."""
        mark = self.prices.mark(symbol)
        now = self.now()
        settled = 0
        for account in self.state.accounts.values():
            position = account.positions.get(symbol)
            if position is None or position.amount == 0:
                continue
            amount = round_balance(-position.amount * mark * rate)
            account.wallet[QUOTE] = account.wallet.get(QUOTE, ZERO) + amount
            account.update_time = now
            self._income(account.name, symbol, "FUNDING_FEE", amount, now=now)
            self._emit_account(account, "FUNDING_FEE", [symbol], amount)
            settled += 1
        return settled

    # ------------------------------------------------------------------ events

    def _side_notionals(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        bid = ask = ZERO
        for order in self.open_orders_of(account, symbol):
            if order.type == "LIMIT":
                notional = (order.orig_qty - order.executed_qty) * order.price
                if order.side == "BUY":
                    bid += notional
                else:
                    ask += notional
        return bid, ask

    def _emit_order(self, order: Order, execution: Execution) -> None:
        bid, ask = self._side_notionals(order.account, order.symbol)
        payload = events.order_trade_update(
            order, self.specs[order.symbol], execution, now=self.now(), bid=bid, ask=ask
        )
        self.sink.user_event(order.account, payload)

    def _emit_account(
        self, account: Account, reason: str, symbols: list[str], change: Decimal = ZERO
    ) -> None:
        rows = []
        for symbol in symbols:
            spec = self.specs[symbol]
            risk = position_risk(
                account, spec, self.prices.mark(symbol), self.open_orders_of(account.name, symbol)
            )
            position = account.position(symbol)
            break_even = accounting.break_even_price(
                position.amount, position.entry_price, account.taker_rate
            )
            rows.append((risk, spec, position.accumulated_realized, break_even))
        payload = events.account_update(reason, account.wallet.get(QUOTE, ZERO), change, rows, self.now())
        self.sink.user_event(account.name, payload)
