from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from supervisor.config.schema import MqttSpec, SecretRef, TlsSpec
from supervisor.secrets import SecretUnavailableError
from supervisor.status.connection import (
    is_auth_refusal,
    load_credentials,
    next_protocol,
    subscription_refused,
)
from tests.supervisor.status.certs import make_pki

V5 = aiomqtt.ProtocolVersion.V5
V311 = aiomqtt.ProtocolVersion.V311


def _v5_refusal(name: str) -> MqttConnectError:
    return MqttConnectError(ReasonCode(PacketTypes.CONNACK, name))


@pytest.mark.parametrize(
    ("current", "error", "expected"),
    [
        (V5, _v5_refusal("Unsupported protocol version"), V311),
        (V5, MqttConnectError(1), V311),  # a 3.1.1 broker's "unacceptable protocol version"
        (V5, _v5_refusal("Bad user name or password"), V5),
        (V5, aiomqtt.MqttError("connection refused"), V5),
        (V311, MqttConnectError(1), V311),
    ],
)
def test_next_protocol(
    current: aiomqtt.ProtocolVersion, error: aiomqtt.MqttError, expected: aiomqtt.ProtocolVersion
) -> None:
    assert next_protocol(current, error) is expected


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (MqttConnectError(4), True),
        (MqttConnectError(5), True),
        (_v5_refusal("Bad user name or password"), True),
        (_v5_refusal("Not authorized"), True),
        (_v5_refusal("Server unavailable"), False),
        (aiomqtt.MqttError("timeout"), False),
    ],
)
def test_is_auth_refusal(error: aiomqtt.MqttError, refused: bool) -> None:
    assert is_auth_refusal(error) is refused


@pytest.mark.parametrize(
    ("granted", "refused"),
    [
        ((1,), False),
        ((0x80,), True),
        ([ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")], False),
        ([ReasonCode(PacketTypes.SUBACK, "Not authorized")], True),
    ],
)
def test_subscription_refused(granted: Sequence[int | ReasonCode], refused: bool) -> None:
    assert subscription_refused(granted) is refused


def test_credentials_come_from_the_reference_and_print_masked() -> None:
    spec = MqttSpec(username="fleet", password=SecretRef(env="MQTT_PW"))
    credentials = load_credentials(spec, {"MQTT_PW": "hunter2"})
    assert credentials.password is not None
    assert credentials.password.reveal() == "hunter2"
    assert "hunter2" not in repr(credentials)
    with pytest.raises(SecretUnavailableError, match="MQTT_PW"):
        load_credentials(spec, {})


def test_tls_context_verifies_by_default_and_insecure_turns_it_off(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    spec = TlsSpec(ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    strict = load_credentials(MqttSpec(tls=spec), None).tls
    assert strict is not None
    assert strict.verify_mode is ssl.CERT_REQUIRED and strict.check_hostname
    assert strict.minimum_version is ssl.TLSVersion.TLSv1_2
    loose = load_credentials(MqttSpec(tls=TlsSpec(ca_file=str(pki.ca), insecure=True)), None).tls
    assert loose is not None
    assert loose.verify_mode is ssl.CERT_NONE and not loose.check_hostname
