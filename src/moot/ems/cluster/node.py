"""One EMS node among several (bus_url nats://): it follows until it holds the leader's
lease, then leads until it loses it.

A follower serves everything users see from its own services: its cluster manager
mirrors the leader's registry and sends every action to the leader (moot.ems.cluster.relay).
The leader holds the room servers' links (moot.bus.nats) and runs the cluster's duties:
failure detection, failover, drain deadlines, the journal writer, the meeting clock,
scheduled booking and samples. A node that becomes leader starts as an EMS that restarted:
it loads the registry from the store (servers that host meetings get RESTART_ALLOWANCE to
come back), announces itself, and the room servers dial it again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import AsyncEngine

from moot.bus.nats import NatsListener, connect
from moot.ems.cluster.leadership import Lease
from moot.ems.cluster.manager import ClusterManager
from moot.ems.cluster.relay import Relay

log = logging.getLogger("moot.ems.cluster")

# The leader's background work, made when it starts to lead.
Duties = Callable[[], list[Coroutine[Any, Any, None]]]


def exit_at_once(why: str) -> None:
    """A leader that lost its lease stops acting before another node can start: the
    process ends here (its supervisor starts it again, as a follower)."""
    log.critical("this EMS node lost the leader's lease (%s): it stops now", why)
    logging.shutdown()
    os._exit(75)


class ClusterNode:
    def __init__(
        self,
        cluster: ClusterManager,
        engine: AsyncEngine,
        *,
        bus_url: str,
        prefix: str,
        node: str,
        heartbeat: float,
        ask_timeout: float,
        duties: Duties,
        lost: Callable[[str], None] = exit_at_once,
    ) -> None:
        self._cluster = cluster
        self._lease = Lease(engine, node)
        self._url = bus_url
        self._prefix = prefix
        self.node = node
        self._heartbeat = heartbeat
        self._ask_timeout = ask_timeout
        self._duties = duties
        self._lost = lost
        self._nc: NatsClient | None = None
        self._relay: Relay | None = None
        self._listener: NatsListener | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.leading = asyncio.Event()

    async def start(self) -> None:
        """Connect to NATS and follow; lead in the background once the lease is ours.

        ConnectionError (naming the URL) when NATS cannot be reached."""
        self._nc = nc = await connect(self._url, f"moot-ems-{self.node}")
        self._relay = Relay(
            nc,
            self._prefix,
            self.node,
            self._cluster.registry,
            self._cluster.events,
            heartbeat=self._heartbeat,
            ask_timeout=self._ask_timeout,
        )
        await self._relay.start()
        self._cluster.to_leader = self._relay

        async def connection() -> NatsClient:
            return nc

        self._listener = NatsListener(connection, self._prefix, self.node)
        self._tasks.append(asyncio.create_task(self._campaign()))
        log.info(
            "EMS node %s joined the cluster on %s (prefix %s)", self.node, self._url, self._prefix
        )

    async def _campaign(self) -> None:
        await self._lease.acquire()
        await self._lead()

        async def lost(why: str) -> None:
            self._lost(why)

        await self._lease.hold(lost)

    async def _lead(self) -> None:
        assert self._relay is not None and self._listener is not None
        log.warning("EMS node %s leads the cluster now", self.node)
        self._cluster.to_leader = None
        await self._cluster.load()  # as after a restart: the store is the truth
        asked, told = self._cluster.leader_handlers()
        await self._relay.lead(asked, told, self._cluster.answering)
        self._tasks.extend(asyncio.create_task(work) for work in self._duties())
        await self._listener.start(self._cluster.serve_link)  # announces: servers dial here
        self.leading.set()

    def bus_state(self) -> tuple[bool, bool, float | None]:
        """(connected to NATS, leading, seconds since the leader's states last came) for
        /readyz (ems/readiness.py)."""
        connected = self._nc is not None and self._nc.is_connected
        heard = self._relay.leader_heard_at if self._relay is not None else None
        return connected, self.leading.is_set(), None if heard is None else time.monotonic() - heard

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            await self._listener.stop()
        if self._relay is not None:
            await self._relay.stop()
        await self._lease.release()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
