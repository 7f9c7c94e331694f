"""The algo service: conditional orders (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET,
TRAILING_STOP_MARKET) placed through `/fapi/v1/algoOrder`, kept apart from the matching engine as on the
venue since 2025-12.

Lifecycle: NEW -> (trigger reached) TRIGGERING -> TRIGGERED, with a child order in the matching engine
whose clientOrderId is the clientAlgoId and whose id becomes `actualOrderId` -> FINISHED once the child is
filled or canceled (reported a little after the child's own events). CANCELED by the client; EXPIRED when
it can no longer act (a reduce-only/close-position stop with no position left, goodTillDate passed);
REJECTED when the child would fail the margin check.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from emulator import accounting, errors, events, matching
from emulator.commands import NewAlgo
from emulator.numbers import ZERO
from emulator.state import Account, AlgoOrder, Order

if TYPE_CHECKING:
    from emulator.engine import Exchange


class AlgoService:
    """Conditional orders of every account; hands triggered ones to the `Exchange` as child orders."""

    def __init__(self, exchange: Exchange, *, finish_delay_ms: int = 0) -> None:
        self.exchange = exchange
        # The algo service learns that its child order finished after the matching engine reported the fill;
        # clients (nautilus) rely on the child's ORDER_TRADE_UPDATE arriving first.
        self.finish_delay_ms = finish_delay_ms
        self._open: dict[str, dict[int, AlgoOrder]] = defaultdict(dict)
        self._of: dict[tuple[str, str], list[AlgoOrder]] = defaultdict(list)
        self._client_ids: dict[tuple[str, str], AlgoOrder] = {}
        for algo in sorted(exchange.state.algos.values(), key=lambda a: a.algo_id):
            self._index(algo)

    def _index(self, algo: AlgoOrder) -> None:
        self._of[(algo.account, algo.symbol)].append(algo)
        self._client_ids[(algo.account, algo.client_algo_id)] = algo
        if algo.is_open:
            self._open[algo.symbol][algo.algo_id] = algo

    # ------------------------------------------------------------------ queries

    def of(self, account: str, symbol: str) -> list[AlgoOrder]:
        return self._of[(account, symbol)]

    def open(self, account: str, symbol: str | None) -> list[AlgoOrder]:
        symbols = [symbol] if symbol is not None else list(self._open)
        found = [a for s in symbols for a in self._open[s].values() if a.account == account]
        return sorted(found, key=lambda a: a.algo_id)

    def find(self, account: str, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder | None:
        """By algoId, else by clientAlgoId (also when the algoId is unknown, e.g. a child order's id)."""
        if algo_id is None and client_algo_id is None:
            raise errors.mandatory_missing("algoId")
        if algo_id is not None:
            algo = self.exchange.state.algos.get(algo_id)
            if algo is not None and algo.account == account:
                return algo
        if client_algo_id is not None:
            return self._client_ids.get((account, client_algo_id))
        return None

    # ------------------------------------------------------------------ placement and cancels

    def place(self, account: Account, cmd: NewAlgo, source: str = "api") -> AlgoOrder:
        exchange = self.exchange
        spec = exchange.specs[cmd.symbol]
        client_id = cmd.client_algo_id or exchange.auto_client_id()
        existing = self._client_ids.get((account.name, client_id))
        if existing is not None and existing.is_open:
            raise errors.duplicate_client_order_id()
        if len(self.open(account.name, cmd.symbol)) >= spec.max_algo_orders:
            raise errors.max_stop_orders()
        reference = self._reference(cmd.symbol, cmd.working_type)
        if cmd.trigger_price is not None and matching.is_triggered(
            cmd.order_type, cmd.side, cmd.trigger_price, reference
        ):
            raise errors.would_immediately_trigger()
        now = exchange.now()
        exchange.state.counters.algo_id += 1
        algo = AlgoOrder(
            algo_id=exchange.state.counters.algo_id,
            account=account.name,
            client_algo_id=client_id,
            symbol=cmd.symbol,
            side=cmd.side,
            order_type=cmd.order_type,
            time_in_force=cmd.time_in_force,
            quantity=cmd.quantity or ZERO,
            trigger_price=cmd.trigger_price or ZERO,
            price=cmd.price or ZERO,
            working_type=cmd.working_type,
            close_position=cmd.close_position,
            price_protect=cmd.price_protect,
            reduce_only=cmd.reduce_only,
            activate_price=(cmd.activate_price or reference)
            if cmd.order_type == "TRAILING_STOP_MARKET"
            else ZERO,
            callback_rate=cmd.callback_rate or ZERO,
            trailing_extreme=reference,
            create_time=now,
            update_time=now,
            good_till_date=cmd.good_till_date,
            source=source,
        )
        exchange.state.algos[algo.algo_id] = algo
        self._index(algo)
        self._emit(algo)
        return algo

    def cancel(self, account: Account, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
        """Only untriggered orders can be canceled here; a triggered one is canceled through its child."""
        algo = self.find(account.name, algo_id, client_algo_id)
        if algo is None or algo.status != "NEW":
            raise errors.unknown_order_sent()
        self._close(algo, "CANCELED")
        return algo

    def cancel_all(self, account: Account, symbol: str) -> int:
        algos = [a for a in self.open(account.name, symbol) if a.status == "NEW"]
        for algo in algos:
            self._close(algo, "CANCELED")
        return len(algos)

    def _close(self, algo: AlgoOrder, status: str, actual_type: str = "") -> None:
        algo.status = status
        algo.update_time = self.exchange.now()
        self._open[algo.symbol].pop(algo.algo_id, None)
        self._emit(algo, actual_type, self.finish_delay_ms if status == "FINISHED" else 0)

    # ------------------------------------------------------------------ triggering

    def _reference(self, symbol: str, working_type: str) -> Decimal:
        prices = self.exchange.prices
        return prices.mark(symbol) if working_type == "MARK_PRICE" else prices.last(symbol)

    def on_price(self, symbol: str) -> None:
        for algo in list(self._open[symbol].values()):
            if algo.status == "NEW" and self._fires(algo):
                self.trigger(algo)

    def _fires(self, algo: AlgoOrder) -> bool:
        reference = self._reference(algo.symbol, algo.working_type)
        if algo.order_type != "TRAILING_STOP_MARKET":
            return matching.is_triggered(algo.order_type, algo.side, algo.trigger_price, reference)
        if not algo.trailing_active:
            if not matching.trailing_activated(algo.side, algo.activate_price, reference):
                return False
            algo.trailing_active = True
            algo.trailing_extreme = reference
        algo.trailing_extreme = matching.update_extreme(algo.side, algo.trailing_extreme, reference)
        return matching.trailing_fires(algo.side, algo.trailing_extreme, algo.callback_rate, reference)

    def trigger(self, algo: AlgoOrder, fill_price: Decimal | None = None) -> None:
        """Hand a triggered conditional order to the matching engine as a child order."""
        exchange = self.exchange
        account = exchange.state.accounts[algo.account]
        now = exchange.now()
        algo.status = "TRIGGERING"
        algo.trigger_time = algo.update_time = now
        self._emit(algo)
        child_qty = self._child_quantity(account, algo)
        if child_qty == 0:
            self._close(algo, "EXPIRED")
            return
        last = fill_price if fill_price is not None else exchange.prices.last(algo.symbol)
        child_type = "LIMIT" if algo.order_type in ("STOP", "TAKE_PROFIT") else "MARKET"
        reducing = algo.reduce_only or algo.close_position
        try:
            exchange.check_margin(
                account,
                algo.symbol,
                algo.side,
                child_qty,
                algo.price if child_type == "LIMIT" else last,
                reduce_only=reducing,
            )
        except errors.VenueError:
            self._close(algo, "REJECTED")
            return
        child = Order(
            order_id=exchange.next_order_id(),
            account=account.name,
            symbol=algo.symbol,
            client_order_id=algo.client_algo_id,
            side=algo.side,
            type=child_type,
            orig_type=algo.order_type,
            time_in_force=algo.time_in_force if child_type == "LIMIT" else "GTC",
            orig_qty=child_qty,
            price=algo.price if child_type == "LIMIT" else ZERO,
            stop_price=algo.trigger_price,
            reduce_only=reducing,
            close_position=algo.close_position,
            working_type=algo.working_type,
            price_protect=algo.price_protect,
            time=now,
            update_time=now,
            algo_id=algo.algo_id,
            source=algo.source,
        )
        algo.status = "TRIGGERED"
        algo.actual_order_id = str(child.order_id)
        self._emit(algo, child_type)
        exchange.submit(child, last)

    @staticmethod
    def _child_quantity(account: Account, algo: AlgoOrder) -> Decimal:
        position = account.positions.get(algo.symbol)
        amount = position.amount if position else ZERO
        if algo.close_position:
            return accounting.reduce_only_quantity(amount, algo.side, abs(amount))
        if algo.reduce_only:
            return accounting.reduce_only_quantity(amount, algo.side, algo.quantity)
        return algo.quantity

    def child_done(self, child: Order) -> None:
        """The child order was filled or closed: the algo order is FINISHED (with what the child executed)."""
        algo = self.exchange.state.algos.get(child.algo_id)
        if algo is None or algo.status != "TRIGGERED":
            return
        algo.executed_qty = child.executed_qty
        algo.actual_price = child.avg_price
        self._close(algo, "FINISHED", child.type)

    def expire_due(self, now: int) -> None:
        for algos in list(self._open.values()):
            for algo in list(algos.values()):
                if algo.status == "NEW" and algo.good_till_date and algo.good_till_date <= now:
                    self._close(algo, "EXPIRED")

    def backdate(self, algo: AlgoOrder, ms: int) -> None:
        """Move an algo order (and its child) `ms` into the past."""
        algo.create_time -= ms
        algo.update_time -= ms
        if algo.trigger_time:
            algo.trigger_time -= ms
        if algo.actual_order_id:
            child = self.exchange.state.orders.get(int(algo.actual_order_id))
            if child is not None:
                self.exchange.backdate_order(child, ms)

    def _emit(self, algo: AlgoOrder, actual_type: str = "", delay_ms: int = 0) -> None:
        payload = events.algo_update(algo, self.exchange.specs[algo.symbol], self.exchange.now(), actual_type)
        self.exchange.sink.user_event(algo.account, payload, delay_ms)
