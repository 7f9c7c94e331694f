"""The MQTT topic tree, in one place (documented in docs/status.md)."""

from __future__ import annotations

import dataclasses

DEFAULT_PREFIX_ROOT = "nautilus-fleet"


class TopicError(ValueError):
    """A topic prefix or level that MQTT would misread (wildcards, empty levels)."""


def check_level(value: str, what: str) -> str:
    """One topic level: non-empty, no `/`, no wildcards, no NUL."""
    if not value or any(c in value for c in "/+#\x00"):
        raise TopicError(f"{what} {value!r} cannot be an MQTT topic level (empty, or contains / + # NUL)")
    return value


def check_prefix(prefix: str) -> str:
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise TopicError(f"MQTT topic prefix {prefix!r} must be non-empty and not start or end with /")
    for level in prefix.split("/"):
        check_level(level, "MQTT topic prefix level")
    return prefix


def default_prefix(fleet: str) -> str:
    return f"{DEFAULT_PREFIX_ROOT}/{fleet}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Topics:
    prefix: str
    host: str

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        check_level(self.host, "host name")

    @property
    def supervisor_state(self) -> str:
        return f"{self.prefix}/supervisors/{self.host}/state"

    @property
    def supervisor_events(self) -> str:
        """The supervisor's own events (not a node's): reloads of fleet.yaml."""
        return f"{self.prefix}/supervisors/{self.host}/events"

    def node_state(self, node: str) -> str:
        return f"{self.prefix}/nodes/{check_level(node, 'node name')}/state"

    def node_recovery(self, node: str) -> str:
        return f"{self.prefix}/nodes/{check_level(node, 'node name')}/recovery"

    def node_audit(self, node: str) -> str:
        """The node's last venue audit (supervisor/audit/)."""
        return f"{self.prefix}/nodes/{check_level(node, 'node name')}/audit"

    def reconciliation(self, trader_id: str, venue: str) -> str:
        return f"{self.prefix}/recovery/{check_level(trader_id, 'trader_id')}/{check_level(venue, 'venue')}"

    def events(self, node: str) -> str:
        return f"{self.prefix}/events/{check_level(node, 'node name')}"
