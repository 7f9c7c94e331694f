"""The venue's state as plain records: accounts, positions, orders, algo orders, trades, income, ids.

Everything here is data (msgspec structs), so the whole venue can be written to a file and read back
(`snapshot` / `restore`) and compared between runs (the determinism test). Behaviour lives in `engine`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from emulator.numbers import ZERO
from emulator.pricepath import mix, stable_key

OPEN_ORDER_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
OPEN_ALGO_STATUSES = frozenset({"NEW", "TRIGGERING", "TRIGGERED"})

# Maker/taker commission rates by fee tier (USD-M, paid in USDT).
FEE_TIERS: dict[int, tuple[Decimal, Decimal]] = {
    0: (Decimal("0.000200"), Decimal("0.000500")),
    1: (Decimal("0.000160"), Decimal("0.000400")),
    2: (Decimal("0.000140"), Decimal("0.000350")),
    3: (Decimal("0.000120"), Decimal("0.000320")),
    4: (Decimal("0.000100"), Decimal("0.000300")),
}


class Position(msgspec.Struct, kw_only=True):
    symbol: str
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    accumulated_realized: Decimal = ZERO
    update_time: int = 0


class Account(msgspec.Struct, kw_only=True):
    name: str
    api_key: str
    api_secret: str
    fee_tier: int = 0
    wallet: dict[str, Decimal] = msgspec.field(default_factory=dict)
    positions: dict[str, Position] = msgspec.field(default_factory=dict)
    leverage: dict[str, int] = msgspec.field(default_factory=dict)
    margin_type: dict[str, str] = msgspec.field(default_factory=dict)
    default_leverage: int = 20
    can_trade: bool = True
    update_time: int = 0

    @property
    def maker_rate(self) -> Decimal:
        return FEE_TIERS.get(self.fee_tier, FEE_TIERS[0])[0]

    @property
    def taker_rate(self) -> Decimal:
        return FEE_TIERS.get(self.fee_tier, FEE_TIERS[0])[1]

    def leverage_for(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = Position(symbol=symbol)
            self.positions[symbol] = pos
        return pos


class Order(msgspec.Struct, kw_only=True):
    order_id: int
    account: str
    symbol: str
    client_order_id: str
    side: str
    type: str
    orig_type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal = ZERO
    stop_price: Decimal = ZERO
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    reduce_only: bool = False
    close_position: bool = False
    position_side: str = "BOTH"
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    price_match: str = "NONE"
    stp_mode: str = "EXPIRE_MAKER"
    good_till_date: int = 0
    time: int = 0
    update_time: int = 0
    algo_id: int = 0  # the conditional order this one was spawned from (0 for direct orders)
    source: str = "api"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


class AlgoOrder(msgspec.Struct, kw_only=True):
    algo_id: int
    account: str
    client_algo_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal  # 0 for closePosition orders
    trigger_price: Decimal
    price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    position_side: str = "BOTH"
    close_position: bool = False
    price_protect: bool = False
    reduce_only: bool = False
    activate_price: Decimal = ZERO
    callback_rate: Decimal = ZERO
    trailing_extreme: Decimal = ZERO
    trailing_active: bool = False
    status: str = "NEW"
    actual_order_id: str = ""
    actual_price: Decimal = ZERO
    executed_qty: Decimal = ZERO
    create_time: int = 0
    update_time: int = 0
    trigger_time: int = 0
    good_till_date: int = 0
    stp_mode: str = "EXPIRE_MAKER"
    price_match: str = "NONE"
    source: str = "api"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ALGO_STATUSES


class Trade(msgspec.Struct, kw_only=True):
    trade_id: int
    order_id: int
    account: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time: int
    position_side: str = "BOTH"


class Income(msgspec.Struct, kw_only=True):
    tran_id: int
    account: str
    symbol: str
    income_type: str
    income: Decimal
    asset: str
    info: str
    time: int
    trade_id: str = ""


class ListenKey(msgspec.Struct, kw_only=True):
    key: str
    account: str
    created: int
    keepalive: int
    active: bool = True


class Attempts(msgspec.Struct, kw_only=True):
    """Every request that carried one client order id (or clientAlgoId), and what came of it."""

    attempts: int = 0
    accepted: int = 0
    rejected: int = 0
    order_ids: list[int] = msgspec.field(default_factory=list)
    last_error: int = 0


class Counters(msgspec.Struct, kw_only=True):
    order_id: int
    algo_id: int
    trade_id: int
    tran_id: int
    auto_id: int = 0
    listen_key: int = 0


class VenueState(msgspec.Struct, kw_only=True):
    seed: int
    accounts: dict[str, Account]
    counters: Counters
    orders: dict[int, Order] = msgspec.field(default_factory=dict)
    algos: dict[int, AlgoOrder] = msgspec.field(default_factory=dict)
    trades: list[Trade] = msgspec.field(default_factory=list)
    income: list[Income] = msgspec.field(default_factory=list)
    listen_keys: dict[str, ListenKey] = msgspec.field(default_factory=dict)
    attempts: dict[str, dict[str, Attempts]] = msgspec.field(default_factory=dict)


def initial_counters(seed: int) -> Counters:
    """Id counters start at seed-derived values that look like the venue's (large, increasing)."""
    key = stable_key(seed, "ids")
    return Counters(
        order_id=4_000_000_000 + key % 1_000_000_000,
        algo_id=2_000_000 + (key >> 20) % 1_000_000,
        trade_id=300_000_000 + (key >> 40) % 100_000_000,
        tran_id=9_000_000_000 + key % 777_777,
    )


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def token(seed: int, purpose: str, index: int, length: int) -> str:
    """A deterministic base62 token: the same (seed, purpose, index) always gives the same text."""
    out: list[str] = []
    key = stable_key(seed, purpose, index)
    while len(out) < length:
        key = mix(key)
        out.append(_ALPHABET[key % 62])
    return "".join(out)


def encode(state: VenueState) -> bytes:
    return msgspec.json.encode(state)


def decode(data: bytes) -> VenueState:
    return msgspec.json.decode(data, type=VenueState)


def write_file(path: Path, payload: bytes) -> None:
    """Write atomically: a crash mid-write leaves the previous snapshot intact."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.touch(mode=0o600)  # snapshots hold the accounts' API secrets
    tmp.chmod(0o600)
    tmp.write_bytes(payload)
    tmp.replace(path)
