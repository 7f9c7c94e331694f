"""The REST endpoint table: method, path, security level and handler of every endpoint the venue serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emulator import handlers_account as account
from emulator import handlers_market as market
from emulator import handlers_trade as trade
from emulator.context import RequestContext

NONE = "none"  # public
KEY = "key"  # API key header only (listenKey management)
SIGNED = "signed"  # API key, timestamp and HMAC signature

Handler = Callable[[RequestContext], object]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    security: str
    handler: Handler
    is_order: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/fapi/v1/ping", NONE, market.ping),
    Endpoint("GET", "/fapi/v1/time", NONE, market.server_time),
    Endpoint("GET", "/fapi/v1/exchangeInfo", NONE, market.exchange_info),
    Endpoint("GET", "/fapi/v1/klines", NONE, market.klines_endpoint),
    Endpoint("GET", "/fapi/v1/ticker/price", NONE, market.ticker_price),
    Endpoint("GET", "/fapi/v2/ticker/price", NONE, market.ticker_price),
    Endpoint("GET", "/fapi/v1/ticker/bookTicker", NONE, market.book_ticker),
    Endpoint("GET", "/fapi/v1/premiumIndex", NONE, market.premium_index),
    Endpoint("GET", "/fapi/v1/depth", NONE, market.depth),
    Endpoint("GET", "/fapi/v2/account", SIGNED, account.account_v2),
    Endpoint("GET", "/fapi/v3/account", SIGNED, account.account_v3),
    Endpoint("GET", "/fapi/v2/balance", SIGNED, account.balance_v2),
    Endpoint("GET", "/fapi/v3/balance", SIGNED, account.balance_v2),
    Endpoint("GET", "/fapi/v2/positionRisk", SIGNED, account.position_risk_v2),
    Endpoint("GET", "/fapi/v3/positionRisk", SIGNED, account.position_risk_v3),
    Endpoint("GET", "/fapi/v1/symbolConfig", SIGNED, account.symbol_config),
    Endpoint("GET", "/fapi/v1/positionSide/dual", SIGNED, account.position_mode),
    Endpoint("POST", "/fapi/v1/positionSide/dual", SIGNED, account.change_position_mode),
    Endpoint("GET", "/fapi/v1/multiAssetsMargin", SIGNED, account.multi_assets_margin),
    Endpoint("GET", "/fapi/v1/leverageBracket", SIGNED, account.leverage_bracket),
    Endpoint("POST", "/fapi/v1/leverage", SIGNED, account.change_leverage),
    Endpoint("POST", "/fapi/v1/marginType", SIGNED, account.change_margin_type),
    Endpoint("GET", "/fapi/v1/commissionRate", SIGNED, account.commission_rate),
    Endpoint("GET", "/fapi/v1/income", SIGNED, account.income),
    Endpoint("POST", "/fapi/v1/listenKey", KEY, account.create_listen_key),
    Endpoint("PUT", "/fapi/v1/listenKey", KEY, account.keepalive_listen_key),
    Endpoint("DELETE", "/fapi/v1/listenKey", KEY, account.close_listen_key),
    Endpoint("POST", "/fapi/v1/order", SIGNED, trade.new_order, is_order=True),
    Endpoint("GET", "/fapi/v1/order", SIGNED, trade.query_order),
    Endpoint("DELETE", "/fapi/v1/order", SIGNED, trade.cancel_order),
    Endpoint("PUT", "/fapi/v1/order", SIGNED, trade.modify_order),
    Endpoint("GET", "/fapi/v1/openOrder", SIGNED, trade.query_open_order),
    Endpoint("GET", "/fapi/v1/openOrders", SIGNED, trade.open_orders),
    Endpoint("GET", "/fapi/v1/allOrders", SIGNED, trade.all_orders),
    Endpoint("DELETE", "/fapi/v1/allOpenOrders", SIGNED, trade.cancel_all_orders),
    Endpoint("GET", "/fapi/v1/userTrades", SIGNED, trade.user_trades),
    Endpoint("POST", "/fapi/v1/batchOrders", SIGNED, trade.batch_orders, is_order=True),
    Endpoint("DELETE", "/fapi/v1/batchOrders", SIGNED, trade.cancel_batch),
    Endpoint("POST", "/fapi/v1/algoOrder", SIGNED, trade.new_algo_order, is_order=True),
    Endpoint("GET", "/fapi/v1/algoOrder", SIGNED, trade.query_algo_order),
    Endpoint("DELETE", "/fapi/v1/algoOrder", SIGNED, trade.cancel_algo_order),
    Endpoint("GET", "/fapi/v1/openAlgoOrders", SIGNED, trade.open_algo_orders),
    Endpoint("GET", "/fapi/v1/allAlgoOrders", SIGNED, trade.all_algo_orders),
    Endpoint("DELETE", "/fapi/v1/algoOpenOrders", SIGNED, trade.cancel_all_algo_orders),
)

TABLE: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS}
