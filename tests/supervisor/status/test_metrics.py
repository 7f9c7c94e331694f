"""The metrics as Prometheus sees them: scraped over HTTP from MetricsServer, parsed with the text parser."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.clock import FakeClock
from supervisor.config.schema import MqttSpec
from supervisor.events import ReloadOutcome
from supervisor.states import ExitReason, NodeState
from supervisor.status import build
from supervisor.status.metrics import FleetMetrics
from supervisor.status.metrics_server import ListenAddressError, MetricsServer, parse_listen
from supervisor.status.mqtt import MqttPublisher
from supervisor.status.session import FileSessionCounter
from tests.supervisor.status.conftest import exit_info, node_status, phase, recovery_report

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scraper:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def text(self, accept: str | None = None) -> tuple[str, str]:
        headers = {"Accept": accept} if accept else {}
        async with asyncio.timeout(5), self.session.get(self.url, headers=headers) as response:
            assert response.status == 200
            return await response.text(), response.headers["Content-Type"]

    async def samples(self) -> Samples:
        text, _ = await self.text()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> FleetMetrics:
    return FleetMetrics(fleet="prod", host="host-a", clock=clock)


@pytest.fixture
async def scrape(metrics: FleetMetrics) -> AsyncIterator[Scraper]:
    server = MetricsServer(registry=metrics.registry, listen="127.0.0.1:0")
    task = asyncio.create_task(server.run(), name="metrics-server")
    try:
        async with asyncio.timeout(5):
            host, port = await server.wait_started()
        async with aiohttp.ClientSession() as session:
            yield Scraper(session, f"http://{host}:{port}/metrics")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_build_info_and_start_time(scrape: Scraper, clock: FakeClock) -> None:
    samples = await scrape.samples()
    info = series(samples, "fleet_supervisor_build_info")
    assert info == [
        {"version": build.version(), "python": build.python_version(), "fleet": "prod", "host": "host-a"}
    ]
    assert value(samples, "fleet_supervisor_start_time_seconds") == clock.time()


async def test_node_up_and_one_hot_state(metrics: FleetMetrics, scrape: Scraper) -> None:
    metrics.node_status(node_status(NodeState.RECOVERING))
    samples = await scrape.samples()
    assert value(samples, "fleet_node_up", node="alpha") == 0
    assert value(samples, "fleet_node_info", node="alpha", trader_id="TRADER-001") == 1
    states = {
        labels["state"]: samples[("fleet_node_state", frozenset(labels.items()))]
        for labels in series(samples, "fleet_node_state")
    }
    assert states == {str(s): (1.0 if s is NodeState.RECOVERING else 0.0) for s in NodeState}

    metrics.node_status(node_status(NodeState.READY))
    samples = await scrape.samples()
    assert value(samples, "fleet_node_up", node="alpha") == 1
    assert value(samples, "fleet_node_state", node="alpha", state="ready") == 1
    assert value(samples, "fleet_node_state", node="alpha", state="recovering") == 0


async def test_restarts_by_reason_and_quarantine(metrics: FleetMetrics, scrape: Scraper) -> None:
    metrics.node_status(node_status(NodeState.READY))
    metrics.node_status(node_status(NodeState.READY, name="beta"))
    samples = await scrape.samples()
    # Created at zero when the node appears, so increase() sees the first restart too.
    assert {value(samples, "fleet_node_restarts_total", node="alpha", reason=str(r)) for r in ExitReason} == {
        0
    }

    metrics.node_exited(node_status(NodeState.BACKOFF), exit_info(ExitReason.SIGNAL), True)
    metrics.node_exited(node_status(NodeState.BACKOFF), exit_info(ExitReason.WATCHDOG, None), True)
    metrics.node_exited(node_status(NodeState.BACKOFF), exit_info(ExitReason.SIGNAL), True)
    metrics.node_exited(
        node_status(NodeState.QUARANTINED), exit_info(ExitReason.SIGNAL), False
    )  # not restarted
    metrics.node_status(node_status(NodeState.QUARANTINED))
    samples = await scrape.samples()
    assert value(samples, "fleet_node_restarts_total", node="alpha", reason="signal") == 2
    assert value(samples, "fleet_node_restarts_total", node="alpha", reason="watchdog") == 1
    assert value(samples, "fleet_nodes_quarantined") == 1
    metrics.node_status(node_status(NodeState.STARTING))
    assert value(await scrape.samples(), "fleet_nodes_quarantined") == 0


async def test_recovery_histograms_are_exact_at_the_slo_bounds(
    metrics: FleetMetrics, scrape: Scraper
) -> None:
    node = node_status(NodeState.RECOVERING)
    metrics.node_status(node)
    metrics.recovery_phase(node, phase("detected", 0.0))
    metrics.recovery_phase(node, phase("reconciled", 412.5))
    metrics.recovery_phase(node, phase("my_custom_phase", 500.0))  # not a known phase: MQTT only
    metrics.recovery_phase(node, phase("cache_loaded", None))  # a cold start: nothing detected
    metrics.recovery_report(recovery_report(position_ms=420.0, full_ms=1300.0))
    metrics.recovery_report(recovery_report(position_ms=5000.0, full_ms=31_000.0))  # exactly 5 s; over 30 s
    metrics.recovery_report(recovery_report(position_ms=None, full_ms=None, detected_at=None))  # cold start
    samples = await scrape.samples()

    assert (
        value(samples, "fleet_recovery_phase_seconds_bucket", node="alpha", phase="reconciled", le="0.25")
        == 0
    )
    assert (
        value(samples, "fleet_recovery_phase_seconds_bucket", node="alpha", phase="reconciled", le="0.5") == 1
    )
    assert value(samples, "fleet_recovery_phase_seconds_count", node="alpha", phase="cache_loaded") == 0
    assert {labels["phase"] for labels in series(samples, "fleet_recovery_phase_seconds_count")} == {
        "spawned",
        "cache_loaded",
        "reconciled",
        "orders_restored",
        "state_restored",
        "warmed",
        "ready",
        "audited",
    }
    assert value(samples, "fleet_position_recovery_seconds_count", node="alpha") == 2
    assert value(samples, "fleet_position_recovery_seconds_bucket", node="alpha", le="5.0") == 2  # le is <=
    assert value(samples, "fleet_position_recovery_seconds_bucket", node="alpha", le="3.0") == 1
    assert value(samples, "fleet_full_recovery_seconds_count", node="alpha") == 2
    assert value(samples, "fleet_full_recovery_seconds_bucket", node="alpha", le="30.0") == 1
    assert value(samples, "fleet_full_recovery_seconds_bucket", node="alpha", le="1.5") == 1
    assert value(samples, "fleet_full_recovery_seconds_sum", node="alpha") == pytest.approx(32.3)
    buckets = {labels["le"] for labels in series(samples, "fleet_full_recovery_seconds_bucket")}
    assert buckets == {
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "1.5",
        "2.0",
        "2.5",
        "3.0",
        "5.0",
        "10.0",
        "30.0",
        "60.0",
        "+Inf",
    }
    assert value(samples, "fleet_recoveries_total", node="alpha", result="ready") == 3
    # The ready phase's own timestamp, not the time of the report.
    assert value(samples, "fleet_node_last_recovery_timestamp_seconds", node="alpha") == pytest.approx(
        1_700_000_100.0
    )


async def test_discrepancies_protective_orders_and_duplicates(metrics: FleetMetrics, scrape: Scraper) -> None:
    metrics.node_status(node_status(NodeState.RECOVERING, venues=("binance", "bybit")))
    samples = await scrape.samples()
    assert value(samples, "fleet_duplicate_client_order_ids_rejected_total", node="alpha", venue="bybit") == 0
    assert value(samples, "fleet_position_discrepancies_unresolved", node="alpha", venue="binance") == 0

    stop_hit = {
        "venue": "binance",
        "instrument": "BTCUSDT-PERP.BINANCE",
        "kind": "missing_at_venue",
        "resolved": True,
    }
    open_diff = {"venue": "bybit", "instrument": "ETHUSDT-PERP.BYBIT", "kind": "quantity", "resolved": False}
    # A malformed entry from a node (here a bare string) is skipped, never allowed to break supervision.
    actions: tuple[Any, ...] = (
        {"action": "protective_placed", "venue": "binance", "client_order_id": "SL-1"},
        {"action": "protective_placed", "venue": "binance", "client_order_id": "TP-1"},
        {"action": "protective_cancelled", "venue": "bybit"},
        {"action": "duplicate_rejected", "venue": "binance", "client_order_id": "SL-1"},
        {"action": "synthetic_fill", "venue": "binance"},
        "not-a-dict",
    )
    metrics.recovery_report(
        recovery_report(
            venues=("binance", "bybit"),
            discrepancies=(stop_hit, open_diff, {"kind": "weird"}),
            actions=actions,
        )
    )
    samples = await scrape.samples()
    found = "fleet_position_discrepancies_total"
    assert value(samples, found, node="alpha", venue="binance", kind="missing_at_venue") == 1
    assert value(samples, found, node="alpha", venue="bybit", kind="quantity") == 1
    assert value(samples, found, node="alpha", venue="unknown", kind="other") == 1
    unresolved = "fleet_position_discrepancies_unresolved"
    assert value(samples, unresolved, node="alpha", venue="binance") == 0  # a stop hit while down: resolved
    assert value(samples, unresolved, node="alpha", venue="bybit") == 1
    assert value(samples, unresolved, node="alpha", venue="unknown") == 1  # no `resolved` flag: still open
    protective = "fleet_recovery_protective_orders_total"
    assert value(samples, protective, node="alpha", venue="binance", action="placed") == 2
    assert value(samples, protective, node="alpha", venue="bybit", action="cancelled") == 1
    assert value(samples, protective, node="alpha", venue="binance", action="relinked") == 0
    assert (
        value(samples, "fleet_duplicate_client_order_ids_rejected_total", node="alpha", venue="binance") == 1
    )

    # The next recovery resolves everything: the unresolved gauge follows the latest report.
    metrics.recovery_report(recovery_report(venues=("binance", "bybit")))
    samples = await scrape.samples()
    assert {samples[(unresolved, frozenset(labels.items()))] for labels in series(samples, unresolved)} == {0}
    assert value(samples, found, node="alpha", venue="bybit", kind="quantity") == 1  # counters keep history


async def test_a_removed_node_leaves_no_series(metrics: FleetMetrics, scrape: Scraper) -> None:
    metrics.node_status(node_status(NodeState.READY))
    metrics.node_status(node_status(NodeState.QUARANTINED, name="beta", trader_id="TRADER-002"))
    metrics.node_exited(node_status(NodeState.BACKOFF), exit_info(), True)
    metrics.recovery_phase(node_status(NodeState.RECOVERING), phase("ready", 900.0))
    metrics.recovery_report(
        recovery_report(discrepancies=({"venue": "binance", "kind": "side", "resolved": False},))
    )
    metrics.node_removed("alpha", "TRADER-001", ("binance",))
    samples = await scrape.samples()
    assert not [key for key in samples if ("node", "alpha") in key[1]]
    assert value(samples, "fleet_node_up", node="beta") == 0
    assert value(samples, "fleet_nodes_quarantined") == 1
    metrics.node_removed("beta", "TRADER-002", ("binance",))
    assert value(await scrape.samples(), "fleet_nodes_quarantined") == 0


async def test_a_changed_trader_id_replaces_the_info_series(metrics: FleetMetrics, scrape: Scraper) -> None:
    metrics.node_status(node_status(NodeState.READY))
    metrics.node_status(node_status(NodeState.READY, trader_id="TRADER-009"))
    assert series(await scrape.samples(), "fleet_node_info") == [{"node": "alpha", "trader_id": "TRADER-009"}]


async def test_mqtt_health_is_read_at_scrape_time(clock: FakeClock, tmp_path: Path) -> None:
    publisher = MqttPublisher(
        spec=MqttSpec(queue_size=2),
        fleet="prod",
        host="host-a",
        sessions=FileSessionCounter(tmp_path / "s"),
        clock=clock,
    )
    metrics = FleetMetrics(fleet="prod", host="host-a", clock=clock, mqtt=publisher)
    server = MetricsServer(registry=metrics.registry, listen="127.0.0.1:0")
    task = asyncio.create_task(server.run(), name="metrics-server")
    try:
        host, port = await server.wait_started()
        async with aiohttp.ClientSession() as session:
            scrape = Scraper(session, f"http://{host}:{port}/metrics")
            samples = await scrape.samples()
            assert value(samples, "fleet_mqtt_connected") == 0
            assert value(samples, "fleet_mqtt_events_queued") == 0
            for state in (NodeState.STARTING, NodeState.RECOVERING, NodeState.READY):
                publisher.node_status(node_status(state))  # never started: the events queue up
            samples = await scrape.samples()
            assert value(samples, "fleet_mqtt_events_queued") == 2
            assert value(samples, "fleet_mqtt_events_dropped_total") == 1
            text, content_type = await scrape.text(accept="application/openmetrics-text; version=1.0.0")
            assert content_type.startswith("application/openmetrics-text")
            assert text.rstrip().endswith("# EOF")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_taken_port_fails_the_server(metrics: FleetMetrics, scrape: Scraper) -> None:
    host, port = scrape.url.removeprefix("http://").split("/")[0].split(":")
    second = MetricsServer(registry=metrics.registry, listen=f"{host}:{port}")
    with pytest.raises(OSError, match="in use"):
        await second.run()


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),  # noqa: S104 - a parsing case, nothing listens here
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_parse_listen(listen: str, address: tuple[str, int]) -> None:
    assert parse_listen(listen) == address


@pytest.mark.parametrize("listen", ["9464", ":9464", "::1:9464", "[::1:9464", "host:port", "host:70000"])
def test_parse_listen_refuses(listen: str) -> None:
    with pytest.raises(ListenAddressError, match=r"metrics\.listen"):
        parse_listen(listen)


async def test_refused_reloads_are_counted_and_the_last_result_is_a_gauge(
    metrics: FleetMetrics, scrape: Scraper, clock: FakeClock
) -> None:
    samples = await scrape.samples()
    assert value(samples, "fleet_reload_failures_total") == 0
    assert value(samples, "fleet_config_last_reload_successful") == 1
    for _ in range(2):
        metrics.reload_outcome(ReloadOutcome(applied=False, at=clock.time(), trigger="file", detail="bad"))
    samples = await scrape.samples()
    assert value(samples, "fleet_reload_failures_total") == 2
    assert value(samples, "fleet_config_last_reload_successful") == 0
    metrics.reload_outcome(ReloadOutcome(applied=True, at=clock.time(), trigger="sighup", detail="start b"))
    samples = await scrape.samples()
    assert value(samples, "fleet_reload_failures_total") == 2
    assert value(samples, "fleet_config_last_reload_successful") == 1


async def test_lease_held_by_host(metrics: FleetMetrics, scrape: Scraper) -> None:
    import dataclasses

    metrics.node_status(dataclasses.replace(node_status(NodeState.READY), lease_held=True))
    assert value(await scrape.samples(), "fleet_node_lease_held", node="alpha", host="host-a") == 1
    metrics.node_status(dataclasses.replace(node_status(NodeState.STANDBY, pid=None), lease_held=False))
    assert value(await scrape.samples(), "fleet_node_lease_held", node="alpha", host="host-a") == 0
    # A node that needs no lease (a `command:` node): held while it runs here.
    metrics.node_status(node_status(NodeState.READY, name="cmd"))
    metrics.node_status(node_status(NodeState.STOPPED, name="stopped-cmd", pid=None))
    samples = await scrape.samples()
    assert value(samples, "fleet_node_lease_held", node="cmd", host="host-a") == 1
    assert value(samples, "fleet_node_lease_held", node="stopped-cmd", host="host-a") == 0


async def test_recoveries_count_stopped_starts_apart_from_failed_ones(
    metrics: FleetMetrics, scrape: Scraper
) -> None:
    """A start a stop or reload ended is `stopped`; an unknown result from a newer node counts as failed."""
    metrics.recovery_report(recovery_report(full_ms=None, result="failed"))
    metrics.recovery_report(recovery_report(full_ms=None, result="stopped"))
    metrics.recovery_report(recovery_report(full_ms=None, result="stopped"))
    metrics.recovery_report(recovery_report(full_ms=None, result="something-new"))
    samples = await scrape.samples()
    counts = {
        r: value(samples, "fleet_recoveries_total", node="alpha", result=r)
        for r in ("ready", "failed", "stopped")
    }
    assert counts == {"ready": 0, "failed": 2, "stopped": 2}
