"""Username/password from a SecretRef (never inline) and TLS with a client certificate, on private brokers."""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from supervisor.config.schema import SecretRef, TlsSpec
from supervisor.states import NodeState
from tests.supervisor.status.certs import make_pki
from tests.supervisor.status.conftest import (
    Broker,
    Received,
    RunningPublisher,
    eventually,
    node_status,
    watching,
)

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

PREFIX = "nautilus-fleet/test"
STATE_TOPIC = f"{PREFIX}/supervisors/host-a/state"
USER = "fleet"
PASSWORD = "s3cret-Pa55word"  # a throwaway password for a private broker


def _online(m: Received) -> bool:
    return bool(m.payload) and m.json()["state"] == "online"


@pytest.fixture
async def auth_broker(broker_factory: Callable[..., Awaitable[Broker]], tmp_path: Path) -> Broker:
    passwords = tmp_path / "passwd"
    process = await asyncio.create_subprocess_exec(
        "mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD
    )
    async with asyncio.timeout(10):
        assert await process.wait() == 0
    return await broker_factory(f"password_file {passwords}\n", anonymous=False)


async def test_password_from_environment(
    auth_broker: Broker, start_publisher: Callable[..., RunningPublisher]
) -> None:
    handle = start_publisher(
        prefix=PREFIX,
        port=auth_broker.port,
        username=USER,
        password=SecretRef(env="FLEET_MQTT_PASSWORD"),
        environ={"FLEET_MQTT_PASSWORD": PASSWORD},
    )
    async with watching(f"{PREFIX}/#", port=auth_broker.port, username=USER, password=PASSWORD) as watcher:
        await watcher.wait_for(lambda m: m.topic == STATE_TOPIC and _online(m))
        handle.publisher.node_status(node_status(NodeState.READY))
        await watcher.wait_for(lambda m: m.topic == f"{PREFIX}/nodes/alpha/state")


async def test_password_from_file(
    auth_broker: Broker, start_publisher: Callable[..., RunningPublisher], tmp_path: Path
) -> None:
    secret_file = tmp_path / "mqtt-password"
    secret_file.write_text(PASSWORD + "\n")
    start_publisher(
        prefix=PREFIX, port=auth_broker.port, username=USER, password=SecretRef(file=str(secret_file))
    )
    async with watching(STATE_TOPIC, port=auth_broker.port, username=USER, password=PASSWORD) as watcher:
        await watcher.wait_for(_online)


async def test_refused_credentials_keep_retrying_and_never_log_the_secret(
    auth_broker: Broker, start_publisher: Callable[..., RunningPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pa55word-xyz"
    caplog.set_level(logging.DEBUG)
    handle = start_publisher(
        prefix=PREFIX,
        port=auth_broker.port,
        username=USER,
        password=SecretRef(env="FLEET_MQTT_PASSWORD"),
        environ={"FLEET_MQTT_PASSWORD": wrong},
    )

    def refusals() -> int:
        return sum(1 for r in caplog.records if "refused our credentials" in r.getMessage())

    await eventually(lambda: refusals() >= 3, what="three refused attempts")
    assert not handle.publisher.connected
    assert not handle.task.done()  # still trying: broker trouble never ends the publisher
    handle.publisher.node_status(node_status(NodeState.READY))  # and supervision is unaffected
    assert handle.publisher.queued_events == 1
    assert all(wrong not in r.getMessage() and PASSWORD not in r.getMessage() for r in caplog.records)


async def test_missing_password_variable_is_reported_and_retried(
    auth_broker: Broker, start_publisher: Callable[..., RunningPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    handle = start_publisher(
        prefix=PREFIX,
        port=auth_broker.port,
        username=USER,
        password=SecretRef(env="FLEET_MQTT_PASSWORD"),
        environ={},
    )
    await eventually(
        lambda: sum("FLEET_MQTT_PASSWORD is not set" in r.getMessage() for r in caplog.records) >= 2,
        what="two reports of the missing variable",
    )
    assert not handle.task.done()


@pytest.fixture
async def tls_broker(broker_factory: Callable[..., Awaitable[Broker]], tmp_path: Path) -> tuple[Broker, Path]:
    pki = make_pki(tmp_path / "pki")
    broker = await broker_factory(
        f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\nrequire_certificate true\n"
    )
    return broker, tmp_path / "pki"


def _client_context(pki_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.pem"))
    context.load_cert_chain(str(pki_dir / "client.pem"), str(pki_dir / "client.key"))
    return context


async def test_tls_with_client_certificate(
    tls_broker: tuple[Broker, Path], start_publisher: Callable[..., RunningPublisher]
) -> None:
    broker, pki = tls_broker
    tls = TlsSpec(
        ca_file=str(pki / "ca.pem"), cert_file=str(pki / "client.pem"), key_file=str(pki / "client.key")
    )
    handle = start_publisher(prefix=PREFIX, port=broker.port, tls=tls)
    async with watching(f"{PREFIX}/#", port=broker.port, tls_context=_client_context(pki)) as watcher:
        await watcher.wait_for(lambda m: m.topic == STATE_TOPIC and _online(m))
        handle.publisher.node_status(node_status(NodeState.READY))
        state = await watcher.wait_for(lambda m: m.topic == f"{PREFIX}/nodes/alpha/state")
    assert state.json()["state"] == "ready"


# paho-mqtt 2.2 does not close the socket of a failed TLS handshake: the garbage collector does, with a
# ResourceWarning. The test collects it here, where this filter applies, instead of at the end of the session.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_tls_refuses_a_broker_signed_by_another_ca(
    tls_broker: tuple[Broker, Path],
    start_publisher: Callable[..., RunningPublisher],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, pki = tls_broker
    other = make_pki(tmp_path / "other-pki", ca_name="someone-else")
    tls = TlsSpec(ca_file=str(other.ca), cert_file=str(pki / "client.pem"), key_file=str(pki / "client.key"))
    handle = start_publisher(prefix=PREFIX, port=broker.port, tls=tls)
    await eventually(
        lambda: any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records),
        what="a certificate verification failure",
    )
    assert not handle.publisher.connected
    await handle.stop()
    gc.collect()
