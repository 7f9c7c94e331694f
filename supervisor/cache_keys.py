"""Names of a trader's nautilus cache keys in Redis, and of the archive that compaction moves history into.

nautilus 1.231 (`use_instance_id=False`, the fleet's setting) keeps a trader's cache under
`trader-{trader_id}:` and loads it at start by `SCAN MATCH trader-{trader_id}:orders*` (and `positions*`,
`accounts*`, ...). The archive lives under `fleet-archive:{trader_id}:`, which no nautilus pattern matches, in
a fixed number of keys per trader (hashes, and one list per account), so it does not lengthen the SCAN
nautilus runs at every start either.

Pure naming: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# Index keys nautilus maintains (nt/cache/database.pyx `_INDEX_*`). Sets hold ids; hashes map id -> value.
ORDER_SET_INDEXES = (
    "index:orders",
    "index:orders_open",
    "index:orders_closed",
    "index:orders_emulated",
    "index:orders_inflight",
    "index:order_ids",
)
ORDER_HASH_INDEXES = ("index:order_position", "index:order_client")
POSITION_SET_INDEXES = ("index:positions", "index:positions_open", "index:positions_closed")


@dataclass(frozen=True)
class TraderKeys:
    """Every key name compaction reads or writes for one trader."""

    trader_id: str

    def __post_init__(self) -> None:
        # A glob character in the id would widen the SCAN patterns below to other traders' keys.
        if not self.trader_id or any(c in self.trader_id for c in "*?[]\\:"):
            raise ValueError(f"trader_id {self.trader_id!r} cannot be used in a Redis key pattern")

    # -- the live cache nautilus loads --------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return f"trader-{self.trader_id}:"

    def order(self, client_order_id: str) -> str:
        return f"{self.prefix}orders:{client_order_id}"

    def position(self, position_id: str) -> str:
        return f"{self.prefix}positions:{position_id}"

    def account(self, account_id: str) -> str:
        return f"{self.prefix}accounts:{account_id}"

    def index(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def orders_pattern(self) -> str:
        return f"{self.prefix}orders:*"

    @property
    def positions_pattern(self) -> str:
        return f"{self.prefix}positions:*"

    @property
    def accounts_pattern(self) -> str:
        return f"{self.prefix}accounts:*"

    def order_id(self, key: str) -> str | None:
        """The client order id of an order key, or None for a key of another shape (left alone)."""
        return _item_id(key, f"{self.prefix}orders:")

    def position_id(self, key: str) -> str | None:
        return _item_id(key, f"{self.prefix}positions:")

    def account_id(self, key: str) -> str | None:
        return _item_id(key, f"{self.prefix}accounts:")

    # -- the archive ----------------------------------------------------------------------------------

    @property
    def archive_prefix(self) -> str:
        return f"fleet-archive:{self.trader_id}:"

    @property
    def archived_orders(self) -> str:
        """Hash: client order id -> the order's event list, framed (see `compaction_scripts.frame`)."""
        return f"{self.archive_prefix}orders"

    @property
    def archived_orders_meta(self) -> str:
        """Hash: client order id -> JSON: what the order was and which index entries it had."""
        return f"{self.archive_prefix}orders:meta"

    @property
    def archived_positions(self) -> str:
        """Hash: archive id (`{position_id}@{ts_opened}`) -> the position's fill list, framed."""
        return f"{self.archive_prefix}positions"

    @property
    def archived_positions_meta(self) -> str:
        return f"{self.archive_prefix}positions:meta"

    def archived_account(self, account_id: str) -> str:
        """List: the account's archived AccountState events, oldest first."""
        return f"{self.archive_prefix}accounts:{account_id}"

    @property
    def lock(self) -> str:
        return f"{self.archive_prefix}lock"


def _item_id(key: str, prefix: str) -> str | None:
    if not key.startswith(prefix):
        return None
    item = key[len(prefix) :]
    # nautilus takes the id after the last ':' when it loads (`key.rsplit(':', 1)[1]`), so a key with a
    # further ':' is not one it would load as this item: not ours to move.
    if not item or ":" in item:
        return None
    return item


def position_archive_id(position_id: str, ts_opened_ns: int) -> str:
    """A NETTING position id is reused for every round trip on its instrument; the opening time tells the
    round trips apart in the archive."""
    return f"{position_id}@{ts_opened_ns}"
