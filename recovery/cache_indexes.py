"""Index entries of orders the cache does not hold: a kill between nautilus' writes of a new order.

nautilus writes a new order's record (`orders:{id}`) and its index entries (`index:order_position`,
`index:order_client`) to Redis as separate commands. A node killed while it submitted a stop came back with
`index:order_position` naming the stop and no record of it (`fleet drill`'s reversal drill, seed 1207).
Reconciliation found the stop at the venue, added it to the cache as an external order, and nautilus refused
it ("already contained in '_index_order_position'"): every start failed the same way until the daemon
quarantined the node.

Before reconciliation the node purges such entries from the cache it loaded (nautilus' `purge_order` cleans
every index of an order it does not hold). The venue's reports then bring the order back with its position,
and nautilus' write of it replaces the stale entry in Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from supervisor.cache_keys import ORDER_HASH_INDEXES, TraderKeys

log = logging.getLogger(__name__)


async def dangling_order_ids(
    redis: aioredis.Redis, trader_id: str, held: Callable[[str], bool], timeout_s: float
) -> list[str]:
    """The client order ids nautilus' hash indexes name in Redis that `held` says the cache has no order
    for."""
    keys = TraderKeys(trader_id)
    async with asyncio.timeout(timeout_s), redis.pipeline(transaction=False) as pipe:
        for index in ORDER_HASH_INDEXES:  # one round trip for all of them: this runs on every start
            pipe.hkeys(keys.index(index))
        answers = await pipe.execute()
    named = {k.decode() if isinstance(k, bytes) else str(k) for answer in answers for k in answer}
    return sorted(client_order_id for client_order_id in named if not held(client_order_id))


def purge_dangling(cache: Any, client_order_ids: list[str]) -> None:
    """Drop the ids' index entries from the loaded cache (memory only; Redis is rewritten by nautilus)."""
    from nautilus_trader.model.identifiers import ClientOrderId

    for client_order_id in client_order_ids:
        cache.purge_order(ClientOrderId(client_order_id))
    if client_order_ids:
        log.warning(
            "the cache indexed %d order(s) it holds no record of (a kill between nautilus' writes): %s; "
            "their index entries are dropped, reconciliation brings back what the venue has",
            len(client_order_ids),
            ", ".join(client_order_ids),
        )
