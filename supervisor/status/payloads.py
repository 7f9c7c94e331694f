"""MQTT payloads as pure functions of the daemon's values (the shapes are documented in docs/status.md)."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from typing import Any

from supervisor.events import AuditResult, ExitInfo, NodeStatus, PhaseMark, RecoveryReport, ReloadOutcome
from supervisor.status.shapes import is_unresolved, reconciliation_result


class SupervisorState(enum.StrEnum):
    ONLINE = "online"  # the birth: connected and supervising
    STOPPED = "stopped"  # clean shutdown
    LOST = "lost"  # the Last Will: the broker lost the connection without a clean DISCONNECT


def encode(payload: Mapping[str, Any]) -> bytes:
    # `default=str` keeps an odd value in a node's detail from breaking publication.
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


@dataclasses.dataclass(frozen=True, kw_only=True)
class SupervisorIdentity:
    """What every supervisor-state payload of one process carries."""

    fleet: str
    host: str
    pid: int
    version: str
    started_at: float  # epoch seconds the publisher was created

    def fields(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "started_at": self.started_at,
        }


def supervisor_payload(
    *,
    identity: SupervisorIdentity,
    state: SupervisorState,
    session: int,
    connected_at: float,
    since: float | None,
    summary: str | None,
    counts: Mapping[str, int] | None,
) -> dict[str, Any]:
    """The retained supervisor state. The will is built with `since`/`summary`/`counts` set to None:
    it is fixed at connect time and cannot know when it will fire."""
    payload: dict[str, Any] = {"state": str(state), "session": session, **identity.fields()}
    payload["connected_at"] = connected_at
    if since is not None:
        payload["since"] = since
    if summary is not None:
        payload["summary"] = summary
    if counts is not None:
        payload["nodes"] = dict(counts)
    return payload


class Reassert(enum.Enum):
    IGNORE = "ignore"  # our own birth echoed back
    REPUBLISH = "republish"  # an older session's will (or a foreign or cleared value): put our birth back
    CONFLICT = "conflict"  # a newer session than ours: another process claims this host; do not fight


def reassert_decision(payload: bytes, own_session: int) -> Reassert:
    """What to do when a message arrives on our own supervisor-state topic."""
    if not payload:
        return Reassert.REPUBLISH
    try:
        decoded = json.loads(payload)
    except ValueError:
        return Reassert.REPUBLISH
    session = decoded.get("session") if isinstance(decoded, dict) else None
    if not isinstance(session, int) or isinstance(session, bool):
        return Reassert.REPUBLISH
    if session < own_session:
        return Reassert.REPUBLISH
    if session > own_session:
        return Reassert.CONFLICT
    return Reassert.IGNORE


def node_state_payload(status: NodeStatus, host: str) -> dict[str, Any]:
    return {**status.to_json(), "host": host}


def recovery_payload(report: RecoveryReport, host: str) -> dict[str, Any]:
    return {**report.to_json(), "host": host}


def reconciliation_payload(*, node: NodeStatus, phase: PhaseMark, venue: str, host: str) -> dict[str, Any]:
    """The retained per-(trader_id, venue) state: `queued` (waiting at the reconciliation gate, with its
    place), `started` (admitted), then `finished` with the result of the `reconciled` phase's detail."""
    detail = phase.detail
    if phase.name in GATE_STATES:
        return {
            "state": GATE_STATES[phase.name],
            **detail,
            "trader_id": node.trader_id,
            "venue": venue,
            "node": node.name,
            "host": host,
            "ts": phase.epoch_ns / 1e9,
            "ms_since_detection": phase.ms_since_detection,
        }
    discrepancies = [d for d in detail.get("discrepancies") or () if isinstance(d, dict)]
    return {
        "state": "finished",
        **detail,
        "trader_id": node.trader_id,
        "venue": venue,
        "node": node.name,
        "host": host,
        "result": str(reconciliation_result(detail)),
        "discrepancies": discrepancies,
        "ts": phase.epoch_ns / 1e9,
        "ms_since_detection": phase.ms_since_detection,
    }


GATE_STATES = {"queued": "queued", "admitted": "started"}


def reconciled_venue(node: NodeStatus, phase: PhaseMark) -> str | None:
    """Which venue a `reconciled` phase is about: its detail's `venue`, or the node's only venue."""
    venue = phase.detail.get("venue")
    if isinstance(venue, str) and venue:
        return venue
    if len(node.venues) == 1:
        return node.venues[0]
    return None


# Events: a non-retained stream per node. `seq` is per supervisor process, so a gap shows dropped events.


def _event(kind: str, *, seq: int, ts: float, host: str, node: str, trader_id: str) -> dict[str, Any]:
    return {"event": kind, "seq": seq, "ts": ts, "host": host, "node": node, "trader_id": trader_id}


def state_event(
    status: NodeStatus, previous: str | None, *, seq: int, ts: float, host: str
) -> dict[str, Any]:
    return {
        **_event("state", seq=seq, ts=ts, host=host, node=status.name, trader_id=status.trader_id),
        "from": previous,
        "to": str(status.state),
        "pid": status.pid,
        "restarts": status.restarts,
        "status": status.status_text,
    }


def exit_event(
    status: NodeStatus, exit_info: ExitInfo, will_restart: bool, *, seq: int, ts: float, host: str
) -> dict[str, Any]:
    return {
        **_event("exit", seq=seq, ts=ts, host=host, node=status.name, trader_id=status.trader_id),
        "exit": exit_info.to_json(),
        "will_restart": will_restart,
        "restarts": status.restarts,
    }


def phase_event(node: NodeStatus, phase: PhaseMark, *, seq: int, ts: float, host: str) -> dict[str, Any]:
    # `ts` is when the event was published, as in every event; the phase's own time is `phase_ts`.
    return {
        **_event("phase", seq=seq, ts=ts, host=host, node=node.name, trader_id=node.trader_id),
        "phase": phase.name,
        "phase_ts": phase.epoch_ns / 1e9,
        "ms_since_detection": phase.ms_since_detection,
        "detail": phase.detail,
    }


def recovery_event(report: RecoveryReport, *, seq: int, ts: float, host: str) -> dict[str, Any]:
    return {
        **_event("recovery", seq=seq, ts=ts, host=host, node=report.node, trader_id=report.trader_id),
        "result": report.result,
        "attempt": report.attempt,
        "reason": report.reason,
        "position_recovery_ms": report.position_recovery_ms,
        "full_recovery_ms": report.full_recovery_ms,
        "discrepancies": len(report.discrepancies),
        "unresolved": sum(1 for d in report.discrepancies if is_unresolved(d)),
        "actions": len(report.actions),
        "error": report.error,
    }


def removed_event(
    name: str, trader_id: str, venues: tuple[str, ...], *, seq: int, ts: float, host: str
) -> dict[str, Any]:
    return {
        **_event("removed", seq=seq, ts=ts, host=host, node=name, trader_id=trader_id),
        "venues": list(venues),
    }


def reload_event(outcome: ReloadOutcome, *, seq: int, ts: float, host: str) -> dict[str, Any]:
    """A reload of fleet.yaml, applied or refused (on the supervisor's events topic)."""
    return {"event": "reload", "seq": seq, "ts": ts, "host": host, **outcome.to_json()}


def audit_payload(result: AuditResult, host: str) -> dict[str, Any]:
    return {**result.to_json(), "host": host}


def audit_event(status: NodeStatus, result: AuditResult, *, seq: int, ts: float, host: str) -> dict[str, Any]:
    """A venue audit finished (the full diff is on the retained `nodes/<node>/audit` topic)."""
    return {
        **_event("audit", seq=seq, ts=ts, host=host, node=status.name, trader_id=status.trader_id),
        "result": result.result,
        "trigger": result.trigger,
        "differences": len(result.differences),
        "error": result.error,
    }
