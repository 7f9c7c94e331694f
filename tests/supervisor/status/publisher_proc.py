"""A publisher in a process of its own, for the tests that kill it.

Run as `python -m tests.supervisor.status.publisher_proc`.
It publishes one node's state, then runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio

from supervisor.clock import SystemClock
from supervisor.config.schema import Duration, MqttSpec
from supervisor.events import NodeStatus
from supervisor.states import NodeState
from supervisor.status.mqtt import MqttPublisher
from supervisor.status.session import FileSessionCounter


async def main(args: argparse.Namespace) -> None:
    clock = SystemClock()
    spec = MqttSpec(
        host="127.0.0.1", port=args.port, topic_prefix=args.prefix, keepalive=Duration(args.keepalive)
    )
    publisher = MqttPublisher(
        spec=spec, fleet="test", host=args.host, sessions=FileSessionCounter(args.session_file), clock=clock
    )
    publisher.node_status(
        NodeStatus(
            name="alpha",
            trader_id="TRADER-001",
            venues=("binance",),
            state=NodeState.READY,
            pid=None,
            restarts=0,
            since=clock.time(),
            started_at=None,
            last_exit=None,
        )
    )
    await publisher.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--host", default="host-a")
    parser.add_argument("--session-file", required=True)
    parser.add_argument("--keepalive", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
