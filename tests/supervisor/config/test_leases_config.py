"""fleet.yaml's `leases` and `placement`: defaults, bounds and host ids, each error where it was written."""

# ruff: noqa: E501 - the expected messages are kept whole, as a user reads them

from __future__ import annotations

import pytest

from ._util import messages, parse

NODES = "nodes:\n  - name: alpha\n    trader_id: A-001\n    command: [run]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "fleet: demo\nleases: {ttl: 2s}\n" + NODES,
            ['fleet.yaml:2:15 leases.ttl: expected a duration from 3s to 10m, got "2s"'],
            id="ttl-too-short",
        ),
        pytest.param(
            "fleet: demo\nleases: {ttl: 11m}\n" + NODES,
            ['fleet.yaml:2:15 leases.ttl: expected a duration from 3s to 10m, got "11m"'],
            id="ttl-too-long",
        ),
        pytest.param(
            "fleet: demo\nleases: {ttl: 9s, margin: 4s}\n" + NODES,
            [
                'fleet.yaml:2:27 leases.margin: expected a duration longer than 0s and at most ttl/3 (3s), got "4s"; '
                "the node must stop before its lease expires, and renewals come every ttl/3"
            ],
            id="margin-over-a-third",
        ),
        pytest.param(
            "fleet: demo\n" + NODES + "    placement: {hosts: [trading-1, 'bad host']}\n",
            [
                'fleet.yaml:6:36 nodes[0].placement.hosts[1]: expected a host id of 1 to 63 letters, digits, "_", "." or "-", '
                'starting with a letter or digit, like "trading-1", got "bad host"'
            ],
            id="placement-host-id",
        ),
        pytest.param(
            "fleet: demo\ndefaults:\n  placement: {hosts: [-x]}\n" + NODES,
            [
                'fleet.yaml:3:23 defaults.placement.hosts[0]: expected a host id of 1 to 63 letters, digits, "_", "." or "-", '
                'starting with a letter or digit, like "trading-1", got "-x"'
            ],
            id="defaults-placement-host-id",
        ),
    ],
)
def test_lease_and_placement_errors(text: str, expected: list[str]) -> None:
    assert messages(text) == expected


def test_defaults_are_ten_seconds_a_fifth_margin_and_any_host() -> None:
    spec = parse("fleet: demo\n" + NODES)
    assert (spec.leases.enabled, spec.leases.ttl, spec.leases.effective_margin()) == (True, 10.0, 2.0)
    assert spec.nodes[0].placement.hosts is None and spec.nodes[0].placement.allows("anything")


def test_placement_in_defaults_applies_to_nodes_that_do_not_set_their_own() -> None:
    spec = parse(
        "fleet: demo\ndefaults:\n  placement: {hosts: [a, b]}\nnodes:\n"
        "  - {name: one, trader_id: A-001, command: [run]}\n"
        "  - {name: two, trader_id: B-001, command: [run], placement: {hosts: [c]}}\n"
    )
    assert [n.placement.hosts for n in spec.nodes] == [["a", "b"], ["c"]]
    assert not spec.nodes[1].placement.allows("a")
