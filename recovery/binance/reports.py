"""From the venue's rows to nautilus reports, fixing what the stock client gets wrong:

- every trade once (the stock client fetches a symbol twice, under two names, and duplicates fills: defect 1);
- a stop (algo order) that triggered while the node was down is re-keyed to the cached order, so its fill
  applies to it (defect 2);
- open orders and open algo orders are never filtered by a lookback (defect 4);
- a cached order still "in flight" (SUBMITTED) that the venue has never seen is reported REJECTED, so it is
  resolved before strategies start instead of 20+ s later by the continuous check;
- an order the venue reports with less filled than the cache holds is withheld from nautilus (which would
  refuse the whole reconciliation, on every start) and reported as an `order_history` discrepancy: the
  positions, not one order's history, decide whether the node may trade (the node's post-check);
- what the venue holds (positions, open orders including conditional ones) is kept as plain values for the
  node's own check and for the strategies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_trader.adapters.binance.common.enums import BinanceOrderSide, BinanceOrderType
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import OrderStatusReport
from nautilus_trader.model.enums import OrderStatus, order_side_to_str, order_type_to_str
from nautilus_trader.model.identifiers import ClientOrderId, VenueOrderId
from nautilus_trader.model.objects import Quantity

from recovery.venue import VenueOpenOrder, VenuePosition

log = logging.getLogger(__name__)

# Why a cached in-flight order is rejected at startup (visible in the order's OrderRejected event).
NOT_AT_VENUE = "NOT_AT_VENUE_AFTER_RESTART"
NOT_AT_VENUE_PREFIX = "NOT-AT-VENUE-"


@dataclass(frozen=True, kw_only=True)
class ReportContext:
    """What parsing needs from the exec client."""

    account_id: Any
    instrument_id: Callable[[str], Any]  # venue symbol -> nautilus InstrumentId
    enum_parser: Any
    treat_expired_as_canceled: bool
    use_position_ids: bool
    cache: Any
    venue: Any
    ts_init: int


@dataclass(frozen=True, kw_only=True)
class HistoryMismatch:
    """A cached order the venue reports with less filled than the cache holds (duplicated or invented fills
    in the cache, or a venue that lost history): nautilus cannot reconcile it, so its report is withheld."""

    client_order_id: str
    venue_order_id: str
    instrument_id: str
    cached_filled: Decimal
    venue_filled: Decimal
    cached_trades: list[str]
    venue_trades: list[str]

    def detail(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "venue_order_id": self.venue_order_id,
            "instrument": self.instrument_id,
            "cached_filled": str(self.cached_filled),
            "venue_filled": str(self.venue_filled),
            "cached_trades": self.cached_trades,
            "venue_trades": self.venue_trades,
        }


@dataclass
class BuiltReports:
    orders: list[Any] = field(default_factory=list)
    fills: list[Any] = field(default_factory=list)
    positions: list[Any] = field(default_factory=list)
    venue_positions: list[VenuePosition] = field(default_factory=list)
    venue_open_orders: list[VenueOpenOrder] = field(default_factory=list)
    rekeyed: list[str] = field(default_factory=list)  # "cid: algoId <- child orderId"
    rejected_inflight: list[str] = field(default_factory=list)  # client order ids
    not_reported: list[str] = field(default_factory=list)  # venue orders nautilus cannot represent
    history_mismatches: list[HistoryMismatch] = field(default_factory=list)  # withheld from nautilus


def latest(rows: Iterable[Any], key: Callable[[Any], Any]) -> dict[Any, Any]:
    """One row per key, the most recently updated (an order can change between two listing calls)."""
    chosen: dict[Any, Any] = {}
    for row in rows:
        k = key(row)
        current = chosen.get(k)
        if current is None or (getattr(row, "updateTime", 0) or 0) >= (
            getattr(current, "updateTime", 0) or 0
        ):
            chosen[k] = row
    return chosen


def build_reports(
    ctx: ReportContext,
    *,
    position_risk: list[Any],
    open_orders: list[Any],
    open_algos: list[Any],
    all_orders: list[Any],
    all_algos: list[Any],
    trades: list[Any],
    fetched_symbols: set[str],
    in_scope: Callable[[str], bool],
) -> BuiltReports:
    built = BuiltReports()
    orders = latest((o for o in [*open_orders, *all_orders] if in_scope(o.symbol)), key=lambda o: o.orderId)
    algos = latest((a for a in [*open_algos, *all_algos] if in_scope(a.symbol)), key=lambda a: a.algoId)

    order_reports: dict[str, Any] = {}
    for row in orders.values():
        if row.origQty is not None and Decimal(row.origQty) == 0:
            continue  # nautilus cannot parse a zero-quantity order (the stock client skips them too)
        order_reports[str(row.orderId)] = row.parse_to_order_status_report(
            account_id=ctx.account_id,
            instrument_id=ctx.instrument_id(row.symbol),
            report_id=UUID4(),
            enum_parser=ctx.enum_parser,
            treat_expired_as_canceled=ctx.treat_expired_as_canceled,
            ts_init=ctx.ts_init,
        )

    fills: dict[str, Any] = {}
    for trade in trades:
        if trade.symbol is None or not in_scope(trade.symbol):
            continue
        fills.setdefault(
            str(trade.id),
            trade.parse_to_fill_report(
                account_id=ctx.account_id,
                instrument_id=ctx.instrument_id(trade.symbol),
                report_id=UUID4(),
                ts_init=ctx.ts_init,
                use_position_ids=ctx.use_position_ids,
            ),
        )
    fill_list = sorted(fills.values(), key=lambda f: (f.ts_event, f.trade_id.value))

    algo_reports: list[Any] = []
    for algo in algos.values():
        if algo.actualOrderId:
            # Triggered: the child order and its trades carry the fill. Re-key them to the cached stop.
            note = _rekey_triggered(ctx, algo, order_reports, fill_list)
            if note:
                built.rekeyed.append(note)
            continue
        if not algo.quantity or Decimal(algo.quantity) == 0:
            # closePosition: nautilus' report has no way to say "the whole position" (its parser raises).
            # Kept in the venue view (strategies see it), reported loudly, never silently dropped.
            built.not_reported.append(f"{algo.clientAlgoId} (algoId {algo.algoId}, closePosition)")
            continue
        if (algo.algoStatus or "").upper() == "FINISHED":
            # Finished without a child id would become a fill at price 0; the child order carries the truth.
            built.not_reported.append(f"{algo.clientAlgoId} (algoId {algo.algoId}, FINISHED without child)")
            continue
        algo_reports.append(
            algo.parse_to_order_status_report(
                account_id=ctx.account_id,
                instrument_id=ctx.instrument_id(algo.symbol),
                report_id=UUID4(),
                enum_parser=ctx.enum_parser,
                ts_init=ctx.ts_init,
            )
        )

    built.history_mismatches = _withhold_shorter_histories(ctx, order_reports, fill_list)
    built.orders = [*order_reports.values(), *algo_reports]
    built.orders.extend(
        _reject_unknown_inflight(ctx, orders.values(), algos.values(), fetched_symbols, built)
    )
    built.fills = fill_list
    built.positions, built.venue_positions = _positions(ctx, position_risk, in_scope)
    built.venue_open_orders = _open_orders(ctx, open_orders, open_algos, in_scope)
    for note in built.not_reported:
        log.warning("venue order not reconciled by nautilus (kept in the venue view): %s", note)
    return built


def _rekey_triggered(
    ctx: ReportContext, algo: Any, order_reports: dict[str, Any], fills: list[Any]
) -> str | None:
    algo_vid = VenueOrderId(str(algo.algoId))
    cid = ctx.cache.client_order_id(algo_vid)
    if cid is None and algo.clientAlgoId:
        cid = ClientOrderId(algo.clientAlgoId)
    cached = ctx.cache.order(cid) if cid is not None else None
    if cached is None or cached.venue_order_id != algo_vid:
        # Unknown to us (the child is adopted as it is), or the trigger was seen live (ids already promoted).
        return None
    child = order_reports.get(str(algo.actualOrderId))
    if child is not None:
        child.venue_order_id = algo_vid
        child.client_order_id = cached.client_order_id
        child.order_type = cached.order_type
        child.trigger_price = cached.trigger_price
        child.trigger_type = cached.trigger_type
    for fill in fills:
        if fill.venue_order_id.value == str(algo.actualOrderId):
            fill.venue_order_id = algo_vid
            fill.client_order_id = cached.client_order_id
    return f"{cached.client_order_id.value}: algoId {algo.algoId} <- order {algo.actualOrderId}"


def _withhold_shorter_histories(
    ctx: ReportContext, order_reports: dict[str, Any], fills: list[Any]
) -> list[HistoryMismatch]:
    """Remove (in place) the reports and fills of cached orders the venue says filled less than the cache
    holds, and say which. nautilus answers such a report with "report.filled_qty < order.filled_qty" and fails
    the whole reconciliation; the same report comes back at every start, so the node could never start."""
    found = []
    for key, report in list(order_reports.items()):
        cid = report.client_order_id or ctx.cache.client_order_id(report.venue_order_id)
        cached = ctx.cache.order(cid) if cid is not None else None
        if cached is None or Decimal(str(cached.filled_qty)) <= Decimal(str(report.filled_qty)):
            continue
        venue_trades = [f.trade_id.value for f in fills if f.venue_order_id == report.venue_order_id]
        del order_reports[key]
        fills[:] = [f for f in fills if f.venue_order_id != report.venue_order_id]
        mismatch = HistoryMismatch(
            client_order_id=cached.client_order_id.value,
            venue_order_id=report.venue_order_id.value,
            instrument_id=str(cached.instrument_id),
            cached_filled=Decimal(str(cached.filled_qty)),
            venue_filled=Decimal(str(report.filled_qty)),
            cached_trades=[t.value for t in cached.trade_ids],
            venue_trades=venue_trades,
        )
        log.error(
            "order %s (venue %s): the venue reports %s filled (trades %s), the cache holds %s (trades %s); "
            "its report is withheld from nautilus, the positions decide",
            mismatch.client_order_id,
            mismatch.venue_order_id,
            mismatch.venue_filled,
            venue_trades,
            mismatch.cached_filled,
            mismatch.cached_trades,
        )
        found.append(mismatch)
    return found


def _reject_unknown_inflight(
    ctx: ReportContext,
    orders: Iterable[Any],
    algos: Iterable[Any],
    fetched_symbols: set[str],
    built: BuiltReports,
) -> list[Any]:
    known = {o.clientOrderId for o in orders} | {a.clientAlgoId for a in algos}
    reports = []
    for order in ctx.cache.orders_inflight(venue=ctx.venue):
        if order.status != OrderStatus.SUBMITTED:
            continue  # PENDING_UPDATE/CANCEL: the venue has it; the continuous check resolves those
        symbol = venue_symbol(order.instrument_id)
        if symbol not in fetched_symbols or order.client_order_id.value in known:
            continue
        built.rejected_inflight.append(order.client_order_id.value)
        reports.append(
            OrderStatusReport(
                account_id=ctx.account_id,
                instrument_id=order.instrument_id,
                venue_order_id=VenueOrderId(NOT_AT_VENUE_PREFIX + order.client_order_id.value),
                order_side=order.side,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                order_status=OrderStatus.REJECTED,
                quantity=order.quantity,
                filled_qty=Quantity.zero(order.quantity.precision),
                report_id=UUID4(),
                ts_accepted=0,
                ts_last=ctx.ts_init,
                ts_init=ctx.ts_init,
                client_order_id=order.client_order_id,
                cancel_reason=NOT_AT_VENUE,
            )
        )
    return reports


def _positions(
    ctx: ReportContext, rows: list[Any], in_scope: Callable[[str], bool]
) -> tuple[list[Any], list[VenuePosition]]:
    reports = []
    net: dict[str, Decimal] = {}
    entry: dict[str, Decimal] = {}
    unrealized: dict[str, Decimal] = {}
    for row in rows:
        amount = Decimal(row.positionAmt)
        if amount == 0 or not in_scope(row.symbol):
            continue
        reports.append(
            row.parse_to_position_status_report(
                account_id=ctx.account_id,
                instrument_id=ctx.instrument_id(row.symbol),
                enum_parser=ctx.enum_parser,
                report_id=UUID4(),
                ts_init=ctx.ts_init,
            )
        )
        net[row.symbol] = net.get(row.symbol, Decimal(0)) + amount
        entry[row.symbol] = Decimal(row.entryPrice or 0)
        unrealized[row.symbol] = unrealized.get(row.symbol, Decimal(0)) + Decimal(row.unRealizedProfit or 0)
    positions = [
        VenuePosition(
            instrument_id=str(ctx.instrument_id(symbol)),
            signed_qty=qty,
            avg_px=entry[symbol],
            unrealized_pnl=unrealized[symbol],
        )
        for symbol, qty in sorted(net.items())
        if qty != 0
    ]
    return reports, positions


def _open_orders(
    ctx: ReportContext, orders: list[Any], algos: list[Any], in_scope: Callable[[str], bool]
) -> list[VenueOpenOrder]:
    found: list[VenueOpenOrder] = []
    for row in orders:
        if not in_scope(row.symbol) or row.type is None or row.side is None:
            continue
        trigger = Decimal(row.stopPrice) if row.stopPrice else Decimal(0)
        found.append(
            VenueOpenOrder(
                client_order_id=row.clientOrderId,
                venue_order_id=str(row.orderId),
                instrument_id=str(ctx.instrument_id(row.symbol)),
                side=order_side_to_str(ctx.enum_parser.parse_binance_order_side(row.side)),
                order_type=order_type_to_str(ctx.enum_parser.parse_binance_order_type(row.type)),
                quantity=Decimal(row.origQty or 0) - Decimal(row.executedQty or 0),
                trigger_price=trigger if trigger > 0 else None,
                price=Decimal(row.price) if row.price and Decimal(row.price) > 0 else None,
                reduce_only=bool(row.reduceOnly),
                close_position=bool(row.closePosition),
                is_algo=False,
            )
        )
    for algo in algos:
        if not in_scope(algo.symbol) or algo.actualOrderId:
            continue  # a triggered algo's resting child is listed among the regular open orders
        order_type = ctx.enum_parser.parse_binance_order_type(BinanceOrderType(algo.orderType))
        side = ctx.enum_parser.parse_binance_order_side(BinanceOrderSide(algo.side))
        found.append(
            VenueOpenOrder(
                client_order_id=algo.clientAlgoId,
                venue_order_id=str(algo.algoId),
                instrument_id=str(ctx.instrument_id(algo.symbol)),
                side=order_side_to_str(side),
                order_type=order_type_to_str(order_type),
                quantity=Decimal(algo.quantity or 0),
                trigger_price=Decimal(algo.triggerPrice) if algo.triggerPrice else None,
                price=Decimal(algo.price) if algo.price and Decimal(algo.price) > 0 else None,
                reduce_only=bool(algo.reduceOnly),
                close_position=bool(algo.closePosition),
                is_algo=True,
            )
        )
    return found


def venue_symbol(instrument_id: Any) -> str:
    """ "BTCUSDT-PERP.BINANCE" -> "BTCUSDT", the name the venue uses."""
    return str(BinanceSymbol(instrument_id.symbol.value))
