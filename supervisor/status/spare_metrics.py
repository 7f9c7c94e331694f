"""Warm spares in Prometheus, read at scrape time from the daemon's pools (supervisor/spares.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from supervisor.spares import FAILED, REFUSED, TAKEN, SparePool, SpareState


class SpareCollector:
    def __init__(self, pools: Callable[[], list[SparePool]]) -> None:
        self._pools = pools

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only (the pools come and go with reloads)

    def collect(self) -> Iterable[Metric]:
        count = GaugeMetricFamily(
            "fleet_spares",
            "Warm spares by pool (a node's name, or fleet) and state",
            labels=["pool", "state"],
        )
        rss = GaugeMetricFamily(
            "fleet_spare_rss_bytes", "Resident memory of a pool's spares", labels=["pool"]
        )
        private = GaugeMetricFamily(
            "fleet_spare_private_bytes",
            "Memory of a pool's spares not shared with other processes (their real cost)",
            labels=["pool"],
        )
        handoffs = CounterMetricFamily(
            "fleet_spare_handoffs", "Handoffs of a node to a spare, by result", labels=["pool", "result"]
        )
        replaced = CounterMetricFamily(
            "fleet_spares_replaced", "Spares that died while waiting and were replaced", labels=["pool"]
        )
        for pool in self._pools():
            infos = pool.info()
            for state in SpareState:
                count.add_metric([pool.name, str(state)], sum(1 for i in infos if i.state is state))
            rss.add_metric([pool.name], sum(i.rss_bytes or 0 for i in infos))
            private.add_metric([pool.name], sum(i.private_bytes or 0 for i in infos))
            for result in (TAKEN, REFUSED, FAILED):
                handoffs.add_metric([pool.name, result], pool.handoffs[result])
            replaced.add_metric([pool.name], pool.replaced)
        yield from (count, rss, private, handoffs, replaced)
