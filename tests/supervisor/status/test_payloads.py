from __future__ import annotations

import json
from typing import Any

import pytest

from supervisor.states import NodeState
from supervisor.status import payloads
from supervisor.status.payloads import Reassert, SupervisorIdentity, SupervisorState
from supervisor.status.shapes import ReconciliationResult, reconciliation_result
from tests.supervisor.status.conftest import node_status, phase


def _state(session: Any, state: str = "lost") -> bytes:
    return json.dumps({"state": state, "session": session}).encode()


@pytest.mark.parametrize(
    ("payload", "decision"),
    [
        (_state(6, "online"), Reassert.IGNORE),  # our own birth echoed back
        (_state(5), Reassert.REPUBLISH),  # an older session's late will
        (_state(5, "stopped"), Reassert.REPUBLISH),
        (_state(7, "online"), Reassert.CONFLICT),  # someone newer: do not fight
        (b"", Reassert.REPUBLISH),  # someone cleared our retained state
        (b"lost", Reassert.REPUBLISH),  # not JSON
        (b"[1, 2]", Reassert.REPUBLISH),
        (_state("6"), Reassert.REPUBLISH),  # session of the wrong type
        (_state(True), Reassert.REPUBLISH),
        (json.dumps({"state": "lost"}).encode(), Reassert.REPUBLISH),
    ],
)
def test_reassert_decision(payload: bytes, decision: Reassert) -> None:
    assert payloads.reassert_decision(payload, own_session=6) is decision


def test_will_carries_no_time_of_its_own() -> None:
    identity = SupervisorIdentity(fleet="prod", host="h", pid=7, version="0.1.0", started_at=10.0)
    will = payloads.supervisor_payload(
        identity=identity,
        state=SupervisorState.LOST,
        session=3,
        connected_at=11.0,
        since=None,
        summary=None,
        counts=None,
    )
    assert will == {
        "state": "lost",
        "session": 3,
        "fleet": "prod",
        "host": "h",
        "pid": 7,
        "version": "0.1.0",
        "started_at": 10.0,
        "connected_at": 11.0,
    }


@pytest.mark.parametrize(
    ("detail", "result"),
    [
        ({}, ReconciliationResult.MATCHED),
        ({"discrepancies": []}, ReconciliationResult.MATCHED),
        ({"discrepancies": [{"resolved": True}]}, ReconciliationResult.RESOLVED),
        ({"discrepancies": [{"resolved": True}, {"resolved": False}]}, ReconciliationResult.UNRESOLVED),
        ({"discrepancies": [{"kind": "quantity"}]}, ReconciliationResult.UNRESOLVED),  # no flag: still open
        ({"result": "matched", "discrepancies": [{"resolved": False}]}, ReconciliationResult.MATCHED),
        ({"result": "bogus", "discrepancies": [{"resolved": True}]}, ReconciliationResult.RESOLVED),
    ],
)
def test_reconciliation_result(detail: dict[str, Any], result: ReconciliationResult) -> None:
    assert reconciliation_result(detail) is result


def test_reconciled_venue_from_detail_or_the_only_venue() -> None:
    one = node_status(NodeState.RECOVERING, venues=("binance",))
    two = node_status(NodeState.RECOVERING, venues=("binance", "bybit"))
    assert payloads.reconciled_venue(one, phase("reconciled", 1.0)) == "binance"
    assert payloads.reconciled_venue(two, phase("reconciled", 1.0, {"venue": "bybit"})) == "bybit"
    assert payloads.reconciled_venue(two, phase("reconciled", 1.0)) is None


def test_reconciliation_payload_keeps_the_detail_and_adds_context() -> None:
    node = node_status(NodeState.RECOVERING)
    detail = {
        "venue": "binance",
        "positions": [],
        "open_orders": 2,
        "discrepancies": ["junk", {"resolved": True}],
    }
    out = payloads.reconciliation_payload(
        node=node, phase=phase("reconciled", 250.0, detail), venue="binance", host="h"
    )
    assert out["trader_id"] == "TRADER-001"
    assert out["node"] == "alpha"
    assert out["open_orders"] == 2
    assert out["result"] == "resolved"
    assert out["discrepancies"] == [{"resolved": True}]
    assert out["ms_since_detection"] == 250.0
    assert out["ts"] == pytest.approx(1_700_000_100.25)


def test_phase_event_keeps_its_own_time_apart_from_the_phase_time() -> None:
    mark = phase("reconciled", 250.0, {"venue": "binance"})
    event = payloads.phase_event(node_status(NodeState.RECOVERING), mark, seq=3, ts=99.0, host="h")
    assert event["ts"] == 99.0
    assert event["phase_ts"] == pytest.approx(1_700_000_100.25)
    assert (event["event"], event["phase"], event["seq"]) == ("phase", "reconciled", 3)
    assert event["detail"] == {"venue": "binance"}


def test_encode_survives_values_json_cannot_represent() -> None:
    assert json.loads(payloads.encode({"x": frozenset({1})})) == {"x": "frozenset({1})"}
