"""Everything one EMS process runs, built and started in one place, in this order.

`running(settings)` is the only place that builds the services and wires them to each
other; the HTTP layer reaches them through the one `Ems` it yields (`moot.ems.deps`).
The order is the order of the code, not a convention in comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.bus import is_nats
from moot.core.detector import Timing
from moot.ems.admission import Admission
from moot.ems.auth.service import AuthService
from moot.ems.broadcasts import BroadcastService
from moot.ems.calendar_feeds import CalendarFeeds
from moot.ems.cluster.manager import ClusterManager
from moot.ems.cluster.node import ClusterNode
from moot.ems.cluster.samples import Sampler
from moot.ems.configuration import ConfigService
from moot.ems.door import Door
from moot.ems.entry import MeetingEntry
from moot.ems.files import FileLimits, FileService
from moot.ems.meetings import MeetingService
from moot.ems.monitor import Monitor
from moot.ems.polls import PollResults
from moot.ems.readiness import Readiness, direct_bus, nats_bus
from moot.ems.schedule import Schedule
from moot.ems.servers import ServerService
from moot.ems.store.change_feed import ChangeFeed
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.migrate import upgrade_async
from moot.ems.store.reaching import wait_for_store
from moot.ems.store.reports import Reports
from moot.ems.throttle import Throttle
from moot.infra.settings import EmsSettings
from moot.infra.tokens import load_or_create_private_key, private_key_pem, public_key_pem


@dataclass(slots=True)
class Ems:
    """One EMS process: its settings, its store and every service, typed."""

    settings: EmsSettings
    signing_key: Ed25519PrivateKey
    sessions: async_sessionmaker[AsyncSession]
    cluster: ClusterManager
    config: ConfigService
    broadcasts: BroadcastService
    meetings: MeetingService
    schedule: Schedule
    files: FileService
    reports: Reports
    sampler: Sampler
    servers: ServerService
    auth: AuthService
    admission: Admission
    feeds: CalendarFeeds
    polls: PollResults
    monitor: Monitor
    changes: ChangeFeed  # what other EMS nodes on the store changed
    readiness: Readiness  # /readyz
    csrf_key: bytes  # web/security.py: the key of the forms' CSRF tokens


def cluster_manager(
    settings: EmsSettings, sessions: async_sessionmaker[AsyncSession], key: Ed25519PrivateKey
) -> ClusterManager:
    return ClusterManager(
        sessions=sessions,
        cluster_secret=settings.cluster_secret,
        public_key_pem=public_key_pem(key),
        heartbeat_interval=settings.heartbeat_interval,
        auto_register=settings.auto_register_servers,
        command_timeout=settings.open_timeout,
        timing=Timing(
            reconnect_grace=settings.reconnect_grace,
            failure_after=settings.failure_after * settings.heartbeat_interval,
        ),
        early_join=timedelta(minutes=settings.early_join_minutes),
    )


@asynccontextmanager
async def running(settings: EmsSettings) -> AsyncIterator[Ems]:
    """Migrate the store, build every service, start the background work; at the end stop
    it all, the store last (a task cancelled mid-query could otherwise hang the exit)."""
    database_url = settings.resolved_database_url()
    await wait_for_store(database_url)  # a PostgreSQL not up yet: said, and tried again
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    key = load_or_create_private_key(settings.resolved_signing_key_file())
    public_url = settings.resolved_public_url()

    # Sign-in, permissions and the audit log: every service that changes the cluster audits.
    # What other EMS nodes on this store change, heard at once: each cache below listens.
    changes = ChangeFeed(database_url)
    auth = AuthService(sessions, settings)
    await auth.load()
    changes.on("keys", auth.keys_changed)
    changes.on_missed(auth.keys_changed)
    cluster = cluster_manager(settings, sessions, key)
    await cluster.load()
    # Before any room server registers: it gets the stored configuration at once.
    config = ConfigService(sessions=sessions, cluster=cluster, audit=auth.audit, changes=changes)
    await config.load()
    # Messages to all users: before any room server registers, so it gets the current ones.
    broadcasts = BroadcastService(sessions=sessions, cluster=cluster, audit=auth.audit)
    await broadcasts.start()
    broadcasts.end_streams_on_exit_signals()  # before uvicorn waits on open streams
    meetings = MeetingService(
        sessions=sessions,
        cluster=cluster,
        public_url=public_url,
        early_join=timedelta(minutes=settings.early_join_minutes),
        changes=changes,
    )
    door = Door(sessions)
    cluster.events.moderated.subscribe(door.forget)
    cluster.events.moderated.subscribe(lambda meeting_id: changes.changed("moderation", meeting_id))
    changes.on("moderation", door.forget)
    changes.on_missed(door.forget_all)
    entry = MeetingEntry(
        meetings=meetings,
        cluster=cluster,
        signing_key=key,
        join_token_ttl=settings.join_token_ttl,
        throttle=Throttle(sessions, timedelta(seconds=settings.login_throttle_seconds)),
        password_failures_per_address=settings.meeting_password_failures_per_address,
        door=door,
    )
    schedule = Schedule(meetings)
    # Files of meetings: before any meeting opens, which lists them.
    files = FileService(
        sessions=sessions,
        cluster=cluster,
        signing_key=key,
        public_url=public_url,
        limits=FileLimits.of(settings),
    )
    # What the cluster manager asks of the services above it: before any room server can
    # register (nothing listens yet: the app serves once this returns).
    cluster.provide(recording_allowed=config.recording_allowed, files_of=files.links)
    # Reports, and the server samples behind the report of each server's peaks.
    sampler = Sampler(
        sessions,
        cluster.registry,
        interval=settings.sample_interval,
        retention_days=settings.sample_retention_days,
        observe_every=settings.heartbeat_interval,
    )
    servers = ServerService(sessions=sessions, cluster=cluster, audit=auth.audit)
    node: ClusterNode | None = None  # one node of several: made below
    ems = Ems(
        settings=settings,
        signing_key=key,
        sessions=sessions,
        cluster=cluster,
        config=config,
        broadcasts=broadcasts,
        meetings=meetings,
        schedule=schedule,
        files=files,
        reports=Reports(sessions),
        sampler=sampler,
        servers=servers,
        auth=auth,
        admission=Admission(meetings, entry, auth),
        feeds=CalendarFeeds(sessions, meetings, schedule, auth),
        polls=PollResults(sessions),
        monitor=Monitor(
            max(0.5, settings.heartbeat_interval), servers, cluster.registry, cluster.capacity
        ),
        changes=changes,
        # The node's part in the cluster, once `node` below exists (several EMS nodes).
        readiness=Readiness(
            sessions,
            changes,
            lambda: nats_bus(node.bus_state(), settings.bus_url) if node else direct_bus(),
        ),
        csrf_key=hashlib.sha256(b"moot csrf\0" + private_key_pem(key)).digest(),
    )

    # The background work, once everything it reaches exists. With several EMS nodes
    # (a nats:// bus_url) the cluster's duties run on the leader only, from when it leads.
    def duties() -> list[Coroutine[Any, Any, None]]:
        return [cluster.run(), meetings.run_clock(settings.clock_interval), sampler.run()]

    if is_nats(settings.bus_url):
        node = ClusterNode(
            cluster,
            engine,
            bus_url=settings.bus_url,
            prefix=settings.resolved_bus_prefix(),
            node=settings.node_name or f"{socket.gethostname()}-{settings.port}-{os.getpid()}",
            heartbeat=settings.heartbeat_interval,
            ask_timeout=settings.open_timeout + 2.0,
            duties=duties,
        )
        await node.start()
        tasks = [asyncio.create_task(changes.run()), asyncio.create_task(config.run())]
    else:
        tasks = [asyncio.create_task(w) for w in [changes.run(), config.run(), *duties()]]
    try:
        yield ems
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if node is not None:
            await node.stop()
        await broadcasts.close()
        await config.close()
        await cluster.close()
        await engine.dispose()
