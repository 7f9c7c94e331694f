"""How one MQTT session's client is configured: credentials, TLS, protocol version, Last Will."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Mapping, Sequence

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from supervisor.config.schema import MqttSpec, TlsSpec
from supervisor.secrets import Secret, resolve_secret

log = logging.getLogger(__name__)

# CONNACK codes that mean "this broker does not speak the protocol version you asked for":
# 1 in MQTT 3.1.1, 0x84 (132) in MQTT 5.
_UNSUPPORTED_PROTOCOL_CODES = frozenset({1, 132})
# CONNACK codes for refused credentials or authorisation (3.1.1: 4, 5; 5.0: 0x86, 0x87, 0x8C).
_AUTH_CODES = frozenset({4, 5, 134, 135, 140})


def connack_code(error: aiomqtt.MqttError) -> int | None:
    rc = getattr(error, "rc", None)
    if isinstance(rc, ReasonCode):
        return int(rc.value)
    if isinstance(rc, int):
        return rc
    return None


def next_protocol(current: aiomqtt.ProtocolVersion, error: aiomqtt.MqttError) -> aiomqtt.ProtocolVersion:
    """MQTT 5 first; a broker that refuses the version gets 3.1.1 from then on."""
    if (
        current is aiomqtt.ProtocolVersion.V5
        and isinstance(error, MqttConnectError)
        and connack_code(error) in _UNSUPPORTED_PROTOCOL_CODES
    ):
        return aiomqtt.ProtocolVersion.V311
    return current


def is_auth_refusal(error: aiomqtt.MqttError) -> bool:
    return isinstance(error, MqttConnectError) and connack_code(error) in _AUTH_CODES


def subscription_refused(granted: Sequence[int | ReasonCode]) -> bool:
    """SUBACK codes of 0x80 and above are failures (3.1.1: 0x80; 5: 0x80-0xA2, e.g. 0x87 not authorized)."""
    return any((code.value if isinstance(code, ReasonCode) else code) >= 0x80 for code in granted)


def tls_context(spec: TlsSpec) -> ssl.SSLContext:
    """A client TLS context (reads the CA, cert and key files: call it off the event loop)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=spec.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if spec.cert_file is not None:
        context.load_cert_chain(spec.cert_file, spec.key_file)
    if spec.insecure:
        log.warning("MQTT TLS certificate verification is OFF (mqtt.tls.insecure): never in production")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclasses.dataclass(frozen=True, kw_only=True)
class Credentials:
    password: Secret | None
    tls: ssl.SSLContext | None


def load_credentials(spec: MqttSpec, environ: Mapping[str, str] | None) -> Credentials:
    """Resolve the password and build the TLS context. Blocking file reads: run it in a worker thread.

    Done for every session, so a rotated password file or certificate is picked up on the next reconnect.
    """
    password = (
        resolve_secret(spec.password, dict(environ) if environ is not None else None)
        if spec.password
        else None
    )
    return Credentials(password=password, tls=tls_context(spec.tls) if spec.tls is not None else None)


def json_properties(protocol: aiomqtt.ProtocolVersion, packet_type: int) -> Properties | None:
    """MQTT 5: mark payloads as UTF-8 JSON so tools can display them. None for 3.1.1."""
    if protocol is not aiomqtt.ProtocolVersion.V5:
        return None
    properties = Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
    properties.PayloadFormatIndicator = 1
    properties.ContentType = "application/json"
    return properties


def build_client(
    *,
    spec: MqttSpec,
    client_id: str,
    credentials: Credentials,
    protocol: aiomqtt.ProtocolVersion,
    will_topic: str,
    will_payload: bytes,
    timeout: float,
) -> aiomqtt.Client:
    """One client per session: the Last Will (with this session's id) is fixed when the client is built."""
    v5 = protocol is aiomqtt.ProtocolVersion.V5
    return aiomqtt.Client(
        spec.host,
        spec.port,
        username=spec.username,
        password=credentials.password.reveal() if credentials.password is not None else None,
        identifier=client_id,
        protocol=protocol,
        will=aiomqtt.Will(
            topic=will_topic,
            payload=will_payload,
            qos=1,
            retain=True,
            properties=json_properties(protocol, PacketTypes.WILLMESSAGE),
        ),
        # MQTT 5: clean_start (default "first only" is clean for a fresh client); 3.1.1: clean_session.
        clean_session=None if v5 else True,
        keepalive=max(1, round(spec.keepalive)),
        timeout=timeout,
        tls_context=credentials.tls,
        logger=logging.getLogger(f"{__name__}.client"),
    )
