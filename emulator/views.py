"""REST response bodies in the venue's exact shapes (field names, string numbers, zero conventions)."""

from __future__ import annotations

from decimal import Decimal

from emulator import accounting
from emulator.numbers import ZERO, average_price, balance, fixed, plain
from emulator.risk import QUOTE, AccountRisk, PositionRisk
from emulator.state import Account, AlgoOrder, Income, Order, Trade
from emulator.symbols import SymbolSpec


def price_text(value: Decimal, spec: SymbolSpec) -> str:
    return "0" if value == 0 else fixed(value, spec.price_decimals)


def qty_text(value: Decimal, spec: SymbolSpec) -> str:
    return fixed(value, spec.qty_decimals)


def avg_text(value: Decimal, spec: SymbolSpec) -> str:
    return "0.00000" if value == 0 else average_price(value, spec.price_decimals)


def order(o: Order, spec: SymbolSpec, *, ack: bool = False) -> dict[str, object]:
    """An order row; `ack` gives the ACK answer to a placement (the order as accepted, before matching)."""
    if ack:
        body = order(o, spec)
        zero_qty = qty_text(ZERO, spec)
        body.update(
            status="NEW",
            executedQty=zero_qty,
            cumQty=zero_qty,
            cumQuote="0",
            avgPrice="0.00000",
            updateTime=o.time,
        )
        return body
    return {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": price_text(o.price, spec),
        "avgPrice": avg_text(o.avg_price, spec),
        "origQty": qty_text(o.orig_qty, spec),
        "executedQty": qty_text(o.executed_qty, spec),
        "cumQty": qty_text(o.executed_qty, spec),
        "cumQuote": fixed(o.cum_quote, 5) if o.cum_quote else "0",
        "timeInForce": o.time_in_force,
        "type": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": o.close_position,
        "side": o.side,
        "positionSide": o.position_side,
        "stopPrice": price_text(o.stop_price, spec),
        "workingType": o.working_type,
        "priceProtect": o.price_protect,
        "origType": o.orig_type,
        "priceMatch": o.price_match,
        "selfTradePreventionMode": o.stp_mode,
        "goodTillDate": o.good_till_date,
        "time": o.time,
        "updateTime": o.update_time,
    }


def algo(a: AlgoOrder, spec: SymbolSpec) -> dict[str, object]:
    body: dict[str, object] = {
        "algoId": a.algo_id,
        "clientAlgoId": a.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": a.order_type,
        "symbol": a.symbol,
        "side": a.side,
        "positionSide": a.position_side,
        "timeInForce": a.time_in_force,
        "quantity": qty_text(a.quantity, spec) if a.quantity else "0",
        "algoStatus": a.status,
        "actualOrderId": a.actual_order_id,
        "actualPrice": avg_text(a.actual_price, spec),
        "triggerPrice": fixed(a.trigger_price, spec.price_decimals) if a.trigger_price else "0",
        "price": fixed(a.price, spec.price_decimals) if a.price else "0",
        "icebergQuantity": None,
        "tpTriggerPrice": "0.000",
        "tpPrice": "0.000",
        "slTriggerPrice": "0.000",
        "slPrice": "0.000",
        "tpOrderType": "",
        "selfTradePreventionMode": a.stp_mode,
        "workingType": a.working_type,
        "priceMatch": a.price_match,
        "closePosition": a.close_position,
        "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only,
        "createTime": a.create_time,
        "updateTime": a.update_time,
        "triggerTime": a.trigger_time,
        "goodTillDate": a.good_till_date,
    }
    if a.order_type == "TRAILING_STOP_MARKET":
        body["activatePrice"] = fixed(a.activate_price, spec.price_decimals)
        body["callbackRate"] = plain(a.callback_rate)
    return body


def trade(t: Trade, spec: SymbolSpec) -> dict[str, object]:
    return {
        "buyer": t.side == "BUY",
        "commission": balance(t.commission),
        "commissionAsset": t.commission_asset,
        "id": t.trade_id,
        "maker": t.maker,
        "orderId": t.order_id,
        "price": fixed(t.price, spec.price_decimals),
        "qty": qty_text(t.qty, spec),
        "quoteQty": fixed(t.quote_qty, 5),
        "realizedPnl": balance(t.realized_pnl),
        "side": t.side,
        "positionSide": t.position_side,
        "symbol": t.symbol,
        "time": t.time,
    }


def income(i: Income) -> dict[str, object]:
    return {
        "symbol": i.symbol,
        "incomeType": i.income_type,
        "income": balance(i.income),
        "asset": i.asset,
        "info": i.info,
        "time": i.time,
        "tranId": i.tran_id,
        "tradeId": i.trade_id,
    }


def _mark_text(value: Decimal) -> str:
    return fixed(value, 8)


def position_v3(risk: PositionRisk, spec: SymbolSpec, account: Account, wallet: Decimal) -> dict[str, object]:
    mmr = accounting.bracket_for(abs(risk.notional), spec.brackets).maint_margin_ratio
    return {
        "symbol": risk.symbol,
        "positionSide": "BOTH",
        "positionAmt": qty_text(risk.amount, spec),
        "entryPrice": plain(risk.entry_price) if risk.amount else "0.0",
        "breakEvenPrice": plain(
            accounting.break_even_price(risk.amount, risk.entry_price, account.taker_rate)
        ),
        "markPrice": _mark_text(risk.mark),
        "unRealizedProfit": balance(risk.unrealized),
        "liquidationPrice": plain(
            accounting.liquidation_price(risk.amount, risk.entry_price, wallet, mmr).quantize(spec.tick_size)
        ),
        "isolatedMargin": "0",
        "notional": balance(risk.notional),
        "marginAsset": QUOTE,
        "isolatedWallet": "0",
        "initialMargin": balance(risk.initial_margin + risk.open_order_margin),
        "maintMargin": balance(risk.maint_margin),
        "positionInitialMargin": balance(risk.initial_margin),
        "openOrderInitialMargin": balance(risk.open_order_margin),
        "adl": 0 if risk.amount == 0 else 1,
        "bidNotional": balance(risk.bid_notional),
        "askNotional": balance(risk.ask_notional),
        "updateTime": risk.update_time,
    }


def position_v2(risk: PositionRisk, spec: SymbolSpec, account: Account, wallet: Decimal) -> dict[str, object]:
    v3 = position_v3(risk, spec, account, wallet)
    return {
        "symbol": risk.symbol,
        "positionAmt": v3["positionAmt"],
        "entryPrice": v3["entryPrice"],
        "breakEvenPrice": v3["breakEvenPrice"],
        "markPrice": v3["markPrice"],
        "unRealizedProfit": v3["unRealizedProfit"],
        "liquidationPrice": v3["liquidationPrice"],
        "leverage": str(risk.leverage),
        "maxNotionalValue": plain(risk.max_notional),
        "marginType": account.margin_type.get(risk.symbol, "CROSSED").lower().replace("crossed", "cross"),
        "isolatedMargin": "0.00000000",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": v3["notional"],
        "isolatedWallet": "0",
        "updateTime": risk.update_time,
    }


def _asset_row(account: Account, risk: AccountRisk) -> dict[str, object]:
    return {
        "asset": QUOTE,
        "walletBalance": balance(risk.wallet),
        "unrealizedProfit": balance(risk.unrealized),
        "marginBalance": balance(risk.margin_balance),
        "maintMargin": balance(risk.maint),
        "initialMargin": balance(risk.initial),
        "positionInitialMargin": balance(risk.position_initial),
        "openOrderInitialMargin": balance(risk.open_order_initial),
        "crossWalletBalance": balance(risk.wallet),
        "crossUnPnl": balance(risk.unrealized),
        "availableBalance": balance(risk.available),
        "maxWithdrawAmount": balance(risk.max_withdraw),
        "marginAvailable": True,
        "updateTime": account.update_time,
    }


def _totals(risk: AccountRisk) -> dict[str, object]:
    return {
        "totalInitialMargin": balance(risk.initial),
        "totalMaintMargin": balance(risk.maint),
        "totalWalletBalance": balance(risk.wallet),
        "totalUnrealizedProfit": balance(risk.unrealized),
        "totalMarginBalance": balance(risk.margin_balance),
        "totalPositionInitialMargin": balance(risk.position_initial),
        "totalOpenOrderInitialMargin": balance(risk.open_order_initial),
        "totalCrossWalletBalance": balance(risk.wallet),
        "totalCrossUnPnl": balance(risk.unrealized),
        "availableBalance": balance(risk.available),
        "maxWithdrawAmount": balance(risk.max_withdraw),
    }


def account_v2(account: Account, risk: AccountRisk, specs: dict[str, SymbolSpec]) -> dict[str, object]:
    positions = []
    for symbol, pos in risk.positions.items():
        positions.append(
            {
                "symbol": symbol,
                "initialMargin": balance(pos.initial_margin + pos.open_order_margin),
                "maintMargin": balance(pos.maint_margin),
                "unrealizedProfit": balance(pos.unrealized),
                "positionInitialMargin": balance(pos.initial_margin),
                "openOrderInitialMargin": balance(pos.open_order_margin),
                "leverage": str(pos.leverage),
                "isolated": False,
                "entryPrice": plain(pos.entry_price) if pos.amount else "0.0",
                "breakEvenPrice": plain(
                    accounting.break_even_price(pos.amount, pos.entry_price, account.taker_rate)
                ),
                "maxNotional": plain(pos.max_notional),
                "bidNotional": balance(pos.bid_notional),
                "askNotional": balance(pos.ask_notional),
                "positionSide": "BOTH",
                "positionAmt": qty_text(pos.amount, specs[symbol]),
                "updateTime": pos.update_time,
            }
        )
    return {
        "feeTier": account.fee_tier,
        "feeBurn": False,
        "canTrade": account.can_trade,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        **_totals(risk),
        "assets": [_asset_row(account, risk)],
        "positions": positions,
    }


def account_v3(account: Account, risk: AccountRisk, specs: dict[str, SymbolSpec]) -> dict[str, object]:
    positions = [
        {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": qty_text(pos.amount, specs[symbol]),
            "unrealizedProfit": balance(pos.unrealized),
            "isolatedMargin": "0",
            "notional": balance(pos.notional),
            "isolatedWallet": "0",
            "initialMargin": balance(pos.initial_margin + pos.open_order_margin),
            "maintMargin": balance(pos.maint_margin),
            "updateTime": pos.update_time,
        }
        for symbol, pos in risk.positions.items()
        if pos.amount != 0 or pos.bid_notional or pos.ask_notional
    ]
    return {**_totals(risk), "assets": [_asset_row(account, risk)], "positions": positions}


def balances(account: Account, risk: AccountRisk) -> list[dict[str, object]]:
    return [
        {
            "accountAlias": "SgsR",
            "asset": QUOTE,
            "balance": balance(risk.wallet),
            "crossWalletBalance": balance(risk.wallet),
            "crossUnPnl": balance(risk.unrealized),
            "availableBalance": balance(risk.available),
            "maxWithdrawAmount": balance(risk.max_withdraw),
            "marginAvailable": True,
            "updateTime": account.update_time,
        }
    ]
