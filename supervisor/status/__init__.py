"""Status out: the MQTT publisher, the Prometheus metrics and their HTTP endpoint.

Both publishers implement `supervisor.events.FleetObserver`; the daemon calls them on its event loop and runs
their long-lived tasks (`MqttPublisher.run`, `MetricsServer.run`) in its task group.
"""

from supervisor.status.metrics import FleetMetrics
from supervisor.status.metrics_server import MetricsServer
from supervisor.status.mqtt import MqttPublisher
from supervisor.status.session import FileSessionCounter, SessionCounter

__all__ = ["FileSessionCounter", "FleetMetrics", "MetricsServer", "MqttPublisher", "SessionCounter"]
