"""Read a trader's nautilus cache straight from Redis, independently of the node, as plain values: what the
drill (and the tests) compare with the venue. Uses nautilus' own cache database adapter, so what is read is
what a restarted node would load."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import msgspec
from nautilus_trader.cache.cache import Cache
from nautilus_trader.cache.database import CacheDatabaseAdapter
from nautilus_trader.config import CacheConfig, DatabaseConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.serialization.serializer import MsgSpecSerializer

from recovery.drill.values import CachedFill, CachedOrder, CachedPosition, CachedState


@dataclass(frozen=True)
class RedisLocation:
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = None
    ssl: bool = False

    @classmethod
    def from_url(cls, url: str, password: str | None = None) -> RedisLocation:
        """From a fleet's `redis.url` (and its resolved `redis.password`, which wins over one in the URL)."""
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            username=parts.username or None,
            password=password if password is not None else parts.password,
            ssl=parts.scheme == "rediss",
        )

    def __repr__(self) -> str:  # never print the password
        return f"RedisLocation({self.host}:{self.port})"


def read_cache(
    trader_id: str, *, host: str = "127.0.0.1", port: int = 6379, location: RedisLocation | None = None
) -> CachedState:
    """The trader's cache as a restarted node would load it (blocking: run it in a worker thread)."""
    where = location or RedisLocation(host=host, port=port)
    database = DatabaseConfig(
        host=where.host,
        port=where.port,
        username=where.username,
        password=where.password,
        ssl=where.ssl,
        connection_timeout=2,
        response_timeout=2,
    )
    config = CacheConfig(database=database)
    serializer = MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True)
    db = CacheDatabaseAdapter(TraderId(trader_id), UUID4(), serializer, config)
    try:
        cache = Cache(database=db, config=config)
        cache.cache_general()
        cache.cache_currencies()
        cache.cache_instruments()
        cache.cache_accounts()
        cache.cache_orders()
        cache.cache_positions()
        cache.build_index()
        orders = {}
        for order in cache.orders():
            fills = tuple(
                CachedFill(
                    trade_id=e.trade_id.value,
                    qty=Decimal(str(e.last_qty)),
                    px=Decimal(str(e.last_px)),
                    reconciliation=bool(e.reconciliation),
                )
                for e in order.events
                if isinstance(e, OrderFilled)
            )
            orders[order.client_order_id.value] = CachedOrder(
                client_order_id=order.client_order_id.value,
                strategy_id=order.strategy_id.value,
                status=order.status_string(),
                order_type=order.type_string(),
                venue_order_id=order.venue_order_id.value if order.venue_order_id else None,
                tags=tuple(order.tags or ()),
                fills=fills,
                avg_px=Decimal(str(order.avg_px)) if order.avg_px else None,
                instrument_id=str(order.instrument_id),
            )
        positions = [
            CachedPosition(
                position_id=p.id.value,
                instrument_id=str(p.instrument_id),
                strategy_id=p.strategy_id.value,
                side=p.side_string() if hasattr(p, "side_string") else p.side.name,
                signed_qty=Decimal(str(p.signed_decimal_qty())),
                avg_px_open=Decimal(str(p.avg_px_open)),
                realized_pnl=Decimal(str(p.realized_pnl.as_decimal()))
                if p.realized_pnl is not None
                else Decimal(0),
                is_open=bool(p.is_open),
            )
            for p in cache.positions()
        ]
        balances: dict[str, Decimal] = {}
        for account in cache.accounts():
            for currency, money in account.balances_total().items():
                balances[str(currency)] = Decimal(str(money.as_decimal()))
        return CachedState(orders=orders, positions=positions, balances=balances)
    finally:
        db.close()
