"""Which cache entry does not decode? Run only after `TradingNode()` failed to load the cache, whose error
(e.g. `msgspec.DecodeError: MessagePack data is malformed`) names no key.

Each entity is loaded on its own through nautilus' own adapter and decoder, with the node's cache settings,
and the keys that fail are returned with their error. Read-only: nothing is written, nothing deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Ids are built from key names only when they are plain printable ASCII: nautilus aborts the whole process
# (a Rust panic, not an exception) on some invalid identifiers.
_SAFE_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


def find_corrupt_keys(*, trader_id: str, instance_id: Any, cache_config: Any) -> dict[str, str]:
    """Full Redis key -> the error loading it raised."""
    import msgspec
    from nautilus_trader.cache.database import CacheDatabaseAdapter
    from nautilus_trader.model.identifiers import (
        AccountId,
        ClientOrderId,
        InstrumentId,
        PositionId,
        StrategyId,
        TraderId,
    )
    from nautilus_trader.serialization.serializer import MsgSpecSerializer

    serializer = MsgSpecSerializer(
        encoding=msgspec.msgpack if cache_config.encoding.lower() == "msgpack" else msgspec.json,
        timestamps_as_str=True,
        timestamps_as_iso8601=cache_config.timestamps_as_iso8601,
    )
    db = CacheDatabaseAdapter(TraderId(trader_id), instance_id, serializer, cache_config)
    prefix = f"trader-{trader_id}:"
    bad: dict[str, str] = {}

    def check(pattern: str, load: Callable[[str], object], suffix: str = "") -> None:
        for full in sorted(db.keys(pattern)):
            name = full[len(prefix) :] if full.startswith(prefix) else full
            ident = name.split(":", 1)[1] if ":" in name else name
            if suffix and ident.endswith(suffix):
                ident = ident[: -len(suffix)]
            if not _SAFE_ID.match(ident):
                bad[full] = f"key name {ident!r} is not a valid nautilus id"
                continue
            try:
                load(ident)
            except Exception as exc:  # whatever the decoder or the replay raises is the answer
                bad[full] = f"{type(exc).__name__}: {exc}"

    try:
        check("currencies:*", db.load_currency)
        check("instruments:*", lambda i: db.load_instrument(InstrumentId.from_str(i)))
        check("accounts:*", lambda i: db.load_account(AccountId(i)))
        check("orders:*", lambda i: db.load_order(ClientOrderId(i)))
        check("positions:*", lambda i: db.load_position(PositionId(i)))
        check("strategies:*:state", lambda i: db.load_strategy(StrategyId(i)), suffix=":state")
    finally:
        db.close()
    for key, error in bad.items():
        log.error("cache entry %s does not load: %s", key, error)
    return bad
