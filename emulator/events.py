"""User-stream event payloads (ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE, listenKeyExpired).

Field sets follow the venue's documentation and what nautilus_trader 1.231 decodes with strict schemas
(every field it requires is always present).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from emulator.numbers import ZERO, balance, fixed, plain
from emulator.risk import QUOTE, PositionRisk
from emulator.state import AlgoOrder, Order, Trade
from emulator.symbols import SymbolSpec
from emulator.views import avg_text, price_text, qty_text


@dataclass(frozen=True, slots=True)
class Execution:
    """What happened to an order in one update: the execution type and, for trades, the fill."""

    exec_type: str  # NEW, TRADE, CANCELED, EXPIRED, REJECTED, AMENDMENT
    trade: Trade | None = None


def order_trade_update(
    order: Order, spec: SymbolSpec, execution: Execution, *, now: int, bid: Decimal, ask: Decimal
) -> dict[str, object]:
    trade = execution.trade
    body: dict[str, object] = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": qty_text(order.orig_qty, spec),
        "p": price_text(order.price, spec),
        "ap": "0" if order.executed_qty == 0 else avg_text(order.avg_price, spec),
        "sp": price_text(order.stop_price, spec),
        "x": execution.exec_type,
        "X": order.status,
        "i": order.order_id,
        "l": qty_text(trade.qty, spec) if trade else qty_text(ZERO, spec),
        "z": qty_text(order.executed_qty, spec),
        "L": fixed(trade.price, spec.price_decimals) if trade else "0",
        "T": trade.time if trade else now,
        "t": trade.trade_id if trade else 0,
        "b": balance(bid),
        "a": balance(ask),
        "m": trade.maker if trade else False,
        "R": order.reduce_only,
        "wt": order.working_type,
        "ot": order.orig_type,
        "ps": order.position_side,
        "cp": order.close_position,
        "rp": balance(trade.realized_pnl) if trade else "0",
        "pP": order.price_protect,
        "si": 0,
        "ss": 0,
        "V": order.stp_mode,
        "pm": order.price_match,
        "gtd": order.good_till_date,
    }
    if trade is not None:
        body["N"] = trade.commission_asset
        body["n"] = balance(trade.commission)
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": body}


def trade_lite(order: Order, spec: SymbolSpec, trade: Trade) -> dict[str, object]:
    """The venue's low-latency fill event; it precedes the fill's ORDER_TRADE_UPDATE."""
    return {
        "e": "TRADE_LITE",
        "E": trade.time,
        "T": trade.time,
        "s": order.symbol,
        "q": qty_text(order.orig_qty, spec),
        "p": price_text(order.price, spec),
        "m": trade.maker,
        "c": order.client_order_id,
        "S": order.side,
        "L": fixed(trade.price, spec.price_decimals),
        "l": qty_text(trade.qty, spec),
        "t": trade.trade_id,
        "i": order.order_id,
    }


def algo_update(algo: AlgoOrder, spec: SymbolSpec, now: int, actual_type: str = "") -> dict[str, object]:
    body: dict[str, object] = {
        "caid": algo.client_algo_id,
        "aid": algo.algo_id,
        "at": "CONDITIONAL",
        "o": algo.order_type,
        "s": algo.symbol,
        "S": algo.side,
        "ps": algo.position_side,
        "f": algo.time_in_force,
        "q": qty_text(algo.quantity, spec) if algo.quantity else "0",
        "X": algo.status,
        "ai": algo.actual_order_id,
        "ap": avg_text(algo.actual_price, spec),
        "aq": qty_text(algo.executed_qty, spec),
        "act": actual_type,
        "tp": fixed(algo.trigger_price, spec.price_decimals) if algo.trigger_price else "0",
        "p": fixed(algo.price, spec.price_decimals) if algo.price else "0",
        "V": algo.stp_mode,
        "wt": algo.working_type,
        "pm": algo.price_match,
        "cp": algo.close_position,
        "pP": algo.price_protect,
        "R": algo.reduce_only,
        "tt": algo.trigger_time,
        "gtd": algo.good_till_date,
    }
    if algo.order_type == "TRAILING_STOP_MARKET":
        body["cr"] = plain(algo.callback_rate)
    return {"e": "ALGO_UPDATE", "E": now, "T": now, "o": body}


def account_update(
    reason: str,
    wallet: Decimal,
    balance_change: Decimal,
    positions: list[tuple[PositionRisk, SymbolSpec, Decimal, Decimal]],
    now: int,
) -> dict[str, object]:
    """`positions` holds (risk, spec, accumulated realized, break-even price) for each changed symbol."""
    rows = [
        {
            "s": risk.symbol,
            "pa": qty_text(risk.amount, spec),
            "ep": plain(risk.entry_price) if risk.amount else "0",
            "bep": plain(break_even) if risk.amount else "0",
            "cr": balance(accumulated),
            "up": balance(risk.unrealized),
            "mt": "cross",
            "iw": "0",
            "ps": "BOTH",
        }
        for risk, spec, accumulated, break_even in positions
    ]
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": reason,
            "B": [{"a": QUOTE, "wb": balance(wallet), "cw": balance(wallet), "bc": balance(balance_change)}],
            "P": rows,
        },
    }


def listen_key_expired(listen_key: str, now: int) -> dict[str, object]:
    return {"e": "listenKeyExpired", "E": str(now), "listenKey": listen_key}
