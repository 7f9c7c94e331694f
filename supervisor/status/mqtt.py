"""The MQTT publisher: one object, one broker connection, retained status topics and an event stream.

Observer methods (called by the daemon on its event loop) only record into the outbox; `run()` owns the
connection: connect, publish the birth, re-send every retained topic, then drain the outbox until the
connection drops; reconnect with capped, fully jittered backoff. Each connection is a new session with a
new client (the Last Will is fixed when a client is built), and a new session id in its birth and will.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Mapping
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes

from supervisor.clock import Clock
from supervisor.config.schema import MqttSpec
from supervisor.events import AuditResult, ExitInfo, NodeStatus, PhaseMark, RecoveryReport, ReloadOutcome
from supervisor.secrets import SecretUnavailableError
from supervisor.states import NodeState
from supervisor.status import build, payloads
from supervisor.status.backoff import ReconnectPolicy
from supervisor.status.connection import (
    build_client,
    is_auth_refusal,
    json_properties,
    load_credentials,
    next_protocol,
    subscription_refused,
)
from supervisor.status.outbox import Outbox, Outgoing
from supervisor.status.payloads import Reassert, SupervisorIdentity, SupervisorState
from supervisor.status.session import SessionCounter, SessionCounterError
from supervisor.status.topics import TopicError, Topics, default_prefix

log = logging.getLogger(__name__)

RECONCILED_PHASE = "reconciled"
# The reconciliation gate's phases: the per-account topic says queued, then started, then the result.
QUEUED_PHASE = "queued"
ADMITTED_PHASE = "admitted"


class _ConnectionLostError(aiomqtt.MqttError):
    """The session's reader or sender saw the connection fail."""


class MqttPublisher:
    """Publishes the fleet's status to one MQTT broker. Implements `supervisor.events.FleetObserver`.

    Start `run()` as a task in the daemon's task group; cancel it to stop (it then publishes the supervisor's
    `stopped` state if connected, disconnects cleanly and re-raises). Observer methods never block and never
    raise into the daemon.
    """

    def __init__(
        self,
        *,
        spec: MqttSpec,
        fleet: str,
        host: str,
        sessions: SessionCounter,
        clock: Clock,
        environ: Mapping[str, str] | None = None,
        reconnect: ReconnectPolicy | None = None,
        operation_timeout: float = 5.0,
        stop_timeout: float = 3.0,
    ) -> None:
        self._spec = spec
        self._topics = Topics(prefix=spec.topic_prefix or default_prefix(fleet), host=host)
        self._host = host
        self._client_id = spec.client_id or f"fleet-{fleet}-{host}"
        self._sessions = sessions
        self._clock = clock
        self._environ = environ
        self._reconnect = reconnect or ReconnectPolicy()
        self._operation_timeout = operation_timeout
        self._stop_timeout = stop_timeout
        self._identity = SupervisorIdentity(
            fleet=fleet, host=host, pid=os.getpid(), version=build.version(), started_at=clock.time()
        )
        self._outbox = Outbox(max_events=spec.queue_size)
        self._protocol = aiomqtt.ProtocolVersion.V5
        self._connected = False
        self._session: int | None = None
        self._connected_at = 0.0
        self._failures = 0
        self._summary: str | None = None
        self._counts: dict[str, int] | None = None
        self._seq = 0
        self._last_state: dict[str, str] = {}
        # Reconciliation topics published per node, so removing the node clears every one of them.
        self._reconciliation_topics: dict[str, set[str]] = {}
        # Nodes with a retained audit topic (cleared when the node is removed).
        self._audited: set[str] = set()

    # ----- what the metrics read -----

    @property
    def topics(self) -> Topics:
        return self._topics

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def session(self) -> int | None:
        """The id of the current (or last) session; None before the first connection."""
        return self._session

    @property
    def queued_events(self) -> int:
        return self._outbox.queued_events

    @property
    def dropped_events(self) -> int:
        return self._outbox.dropped_events

    # ----- FleetObserver -----

    def node_status(self, status: NodeStatus) -> None:
        previous = self._last_state.get(status.name)
        self._last_state[status.name] = str(status.state)
        # A node in standby here runs on another host (or nowhere), and one whose lease is gone may already
        # run there: the retained state is that host's to say.
        if status.state is not NodeState.STANDBY and status.lease_held is not False:
            self._retain(
                self._topics.node_state(status.name), payloads.node_state_payload(status, self._host)
            )
        if previous != str(status.state):
            self._event(
                status.name, payloads.state_event(status, previous, seq=self._next_seq(), **self._stamp())
            )

    def node_exited(self, status: NodeStatus, exit_info: ExitInfo, will_restart: bool) -> None:
        self._event(
            status.name,
            payloads.exit_event(status, exit_info, will_restart, seq=self._next_seq(), **self._stamp()),
        )

    def recovery_phase(self, node: NodeStatus, phase: PhaseMark) -> None:
        self._event(node.name, payloads.phase_event(node, phase, seq=self._next_seq(), **self._stamp()))
        if phase.name in (RECONCILED_PHASE, QUEUED_PHASE, ADMITTED_PHASE):
            self._retain_reconciliation(node, phase)

    def recovery_report(self, report: RecoveryReport) -> None:
        self._retain(self._topics.node_recovery(report.node), payloads.recovery_payload(report, self._host))
        self._event(report.node, payloads.recovery_event(report, seq=self._next_seq(), **self._stamp()))

    def node_removed(self, name: str, trader_id: str, venues: tuple[str, ...]) -> None:
        self._outbox.clear_retained(self._topics.node_state(name))
        self._outbox.clear_retained(self._topics.node_recovery(name))
        if name in self._audited:
            self._audited.discard(name)
            self._outbox.clear_retained(self._topics.node_audit(name))
        topics = self._reconciliation_topics.pop(name, set())
        for venue in venues:
            with contextlib.suppress(TopicError):
                topics.add(self._topics.reconciliation(trader_id, venue))
        for topic in sorted(topics):
            self._outbox.clear_retained(topic)
        self._last_state.pop(name, None)
        self._event(
            name, payloads.removed_event(name, trader_id, venues, seq=self._next_seq(), **self._stamp())
        )

    def audit_result(self, status: NodeStatus, result: AuditResult, report: RecoveryReport | None) -> None:
        self._audited.add(status.name)
        self._retain(self._topics.node_audit(status.name), payloads.audit_payload(result, self._host))
        if report is not None:
            # The report of the node's last start, now with its audit and the venue's downtime changes.
            self._retain(
                self._topics.node_recovery(report.node), payloads.recovery_payload(report, self._host)
            )
        self._event(status.name, payloads.audit_event(status, result, seq=self._next_seq(), **self._stamp()))

    def reconcile_queue_depth(self, group: str, depth: int) -> None:
        return  # the queue is per node on recovery/<trader_id>/<venue> (queued, started); depth is a metric

    def reload_outcome(self, outcome: ReloadOutcome) -> None:
        payload = payloads.reload_event(outcome, seq=self._next_seq(), **self._stamp())
        self._outbox.put_event(self._topics.supervisor_events, payloads.encode(payload))

    def fleet_summary(self, summary: str, counts: dict[str, int]) -> None:
        if summary == self._summary and counts == self._counts:
            return
        self._summary = summary
        self._counts = dict(counts)
        if self._session is not None and self._connected:
            self._outbox.put_retained(self._topics.supervisor_state, self._supervisor(SupervisorState.ONLINE))

    # ----- the connection -----

    async def run(self) -> None:
        """Keep a session to the broker until cancelled. Never raises for broker trouble."""
        if not self._spec.enabled:
            log.info("MQTT publishing is disabled (mqtt.enabled: false)")
            return
        log.info(
            "MQTT publisher for %s:%s, client id %s, topics under %s",
            self._spec.host,
            self._spec.port,
            self._client_id,
            self._topics.prefix,
        )
        while True:
            try:
                await self._session_once()
            except aiomqtt.MqttError as exc:
                # Log the text, not the exception: a log record holding it would keep its traceback, and
                # with it paho's socket of a failed attempt, alive.
                self._protocol = next_protocol(self._protocol, exc)
                if is_auth_refusal(exc):
                    log.error(
                        "MQTT broker refused our credentials (user %r): %s", self._spec.username, str(exc)
                    )
                else:
                    log.warning("MQTT session ended: %s", str(exc))
            except (SecretUnavailableError, SessionCounterError, OSError) as exc:
                # A missing password, an unreadable certificate or state dir: keep trying, it may be fixed.
                log.error("MQTT session could not start: %s", str(exc))
            delay = self._reconnect.delay(self._failures, random.random())
            log.info("MQTT reconnecting in %.2fs (attempt %d)", delay, self._failures + 1)
            await self._clock.sleep(delay)

    async def _session_once(self) -> None:
        # Counted as a failure until the broker has accepted us and our birth.
        self._failures += 1
        session = await self._sessions.next_session()
        credentials = await asyncio.to_thread(load_credentials, self._spec, self._environ)
        connected_at = self._clock.time()
        will = payloads.supervisor_payload(
            identity=self._identity,
            state=SupervisorState.LOST,
            session=session,
            connected_at=connected_at,
            since=None,
            summary=None,
            counts=None,
        )
        client = build_client(
            spec=self._spec,
            client_id=self._client_id,
            credentials=credentials,
            protocol=self._protocol,
            will_topic=self._topics.supervisor_state,
            will_payload=payloads.encode(will),
            timeout=self._operation_timeout,
        )
        await self._connect(client)
        try:
            self._session = session
            self._connected_at = connected_at
            self._connected = True
            await self._serve(client, session)
        finally:
            self._connected = False
            with contextlib.suppress(aiomqtt.MqttError):
                # A clean DISCONNECT: the broker discards the will (we published `stopped` ourselves), or
                # returns at once when the connection is already gone.
                await client.__aexit__(None, None, None)

    async def _connect(self, client: aiomqtt.Client) -> None:
        # aiomqtt connects in a worker thread that cannot be interrupted. If we are cancelled meanwhile, let
        # that attempt finish (bounded by the client's timeout) and close it, so no socket is left behind.
        entering = asyncio.create_task(client.__aenter__(), name=self._task_name("connect"))
        try:
            await asyncio.shield(entering)
        except asyncio.CancelledError:
            try:
                await entering
            except aiomqtt.MqttError:
                pass
            else:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.__aexit__(None, None, None)
            raise

    async def _serve(self, client: aiomqtt.Client, session: int) -> None:
        state_topic = self._topics.supervisor_state
        self._outbox.put_retained(state_topic, self._supervisor(SupervisorState.ONLINE))
        self._outbox.resend_all()
        try:
            # The birth first and acknowledged, then the subscription: the retained message the broker hands
            # us on subscribing is then our own birth, unless an old will overwrote it in between.
            birth = self._outbox.take_topic(state_topic)
            if birth is not None:
                await self._send(client, birth)
            granted = await client.subscribe(state_topic, qos=1, timeout=self._operation_timeout)
            if subscription_refused(granted):
                log.warning(
                    "MQTT broker refused our subscription to %s (ACL?): a late will from an older session "
                    "will not be corrected",
                    state_topic,
                )
            self._failures = 0
            log.info("MQTT connected (session %d, MQTT %s)", session, self._protocol.name)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._watch_own_state(client, session), name=self._task_name("watch"))
                    tasks.create_task(self._drain(client), name=self._task_name("send"))
            except* aiomqtt.MqttError as group:
                raise _ConnectionLostError(str(group.exceptions[0])) from group.exceptions[0]
        except asyncio.CancelledError:
            await self._goodbye(client)
            raise

    def _task_name(self, role: str) -> str:
        return f"mqtt[{self._client_id}].{role}"

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            await self._outbox.wakeup.wait()
            self._outbox.wakeup.clear()
            while (message := self._outbox.take()) is not None:
                await self._send(client, message)

    async def _send(self, client: aiomqtt.Client, message: Outgoing, deadline: float | None = None) -> None:
        try:
            await client.publish(
                message.topic,
                message.payload,
                qos=1,
                retain=message.retain,
                properties=json_properties(self._protocol, PacketTypes.PUBLISH),
                timeout=self._operation_timeout if deadline is None else deadline,
            )
        except BaseException:
            self._outbox.give_back(message)
            raise

    async def _watch_own_state(self, client: aiomqtt.Client, session: int) -> None:
        """A will from an older session can arrive after our birth (its connection died half-open and the
        broker noticed late): it replaces the retained state, so put our birth back."""
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            decision = payloads.reassert_decision(payload, session)
            if decision is Reassert.REPUBLISH:
                log.warning("MQTT supervisor state overwritten by an older session; republishing our birth")
                self._outbox.put_retained(
                    self._topics.supervisor_state, self._supervisor(SupervisorState.ONLINE)
                )
            elif decision is Reassert.CONFLICT:
                log.error(
                    "MQTT topic %s carries a newer session than ours (%d): is a second supervisor running "
                    "for this host? Not republishing.",
                    self._topics.supervisor_state,
                    session,
                )

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """On shutdown: flush what is pending, then the retained `stopped` state, each bounded in time."""
        try:
            async with asyncio.timeout(self._stop_timeout):
                while (message := self._outbox.take()) is not None:
                    await self._send(client, message)
        except (TimeoutError, aiomqtt.MqttError) as exc:
            log.warning("MQTT: could not flush pending messages before stopping: %r", exc)
        self._outbox.put_retained(self._topics.supervisor_state, self._supervisor(SupervisorState.STOPPED))
        stopped = self._outbox.take_topic(self._topics.supervisor_state)
        if stopped is None:
            return
        try:
            await self._send(client, stopped, deadline=self._stop_timeout)
        except aiomqtt.MqttError as exc:
            log.warning("MQTT: could not publish the stopped state: %s", exc)
        else:
            log.info("MQTT: published supervisor state stopped (session %s)", self._session)

    # ----- helpers -----

    def _supervisor(self, state: SupervisorState) -> bytes:
        assert self._session is not None  # only called within a session
        return payloads.encode(
            payloads.supervisor_payload(
                identity=self._identity,
                state=state,
                session=self._session,
                connected_at=self._connected_at,
                since=self._clock.time(),
                summary=self._summary,
                counts=self._counts,
            )
        )

    def _retain(self, topic: str, payload: Mapping[str, Any]) -> None:
        self._outbox.put_retained(topic, payloads.encode(payload))

    def _event(self, node: str, payload: Mapping[str, Any]) -> None:
        self._outbox.put_event(self._topics.events(node), payloads.encode(payload))

    def _retain_reconciliation(self, node: NodeStatus, phase: PhaseMark) -> None:
        venue = payloads.reconciled_venue(node, phase)
        if venue is None:
            log.warning(
                "node %s: a reconciled phase without detail.venue (node has venues %s); not published",
                node.name,
                ", ".join(node.venues) or "none",
            )
            return
        try:
            topic = self._topics.reconciliation(node.trader_id, venue)
        except TopicError as exc:
            log.warning("node %s: reconciliation result not published: %s", node.name, exc)
            return
        self._reconciliation_topics.setdefault(node.name, set()).add(topic)
        self._retain(
            topic, payloads.reconciliation_payload(node=node, phase=phase, venue=venue, host=self._host)
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _stamp(self) -> dict[str, Any]:
        return {"ts": self._clock.time(), "host": self._host}
