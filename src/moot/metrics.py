"""Moot's Prometheus metrics: every definition in one place (docs/admin-guide.md lists them).

Counters and histograms are defined once, at import, on no registry: tests run several
EMS and room-server apps in one process, and prometheus-client's default REGISTRY is
global, so registering them there twice would fail ("Duplicated timeseries"). Each app
builds its own `CollectorRegistry` instead (`ems_registry`, `room_registry`) with the
metrics of its side and a collector that reads its live state at scrape time, and
`exposition` serves it after the default registry (process and Python metrics).

Labels take only bounded values: states, outcomes, reasons, route templates (never a raw
path or a meeting id), HTTP methods and status codes.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST  # for the routes
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moot import __version__

if TYPE_CHECKING:  # not at run time: a room server needs none of the EMS's modules (numpy)
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from moot.ems.cluster.registry import LiveServer, Registry
    from moot.placement import Placement
    from moot.room.agent import Agent

log = logging.getLogger("moot.metrics")

P = ParamSpec("P")
T = TypeVar("T")

# Store and control-channel round trips: milliseconds when all is well, up to the
# 5 s a room server waits for a journal_ack.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INFO = Info("moot", "The Moot version this process runs.", registry=None)
INFO.info({"version": __version__})

# -- EMS ----------------------------------------------------------------------

PLACEMENT_OUTCOMES = ("placed", "over_limits", "refused")
PLACEMENTS = Counter(
    "moot_placements",
    "Meetings placed on a room server as they start, move or reopen, by outcome: placed, "
    "over_limits (on a server over its limits, with a capacity warning), refused (no server).",
    ["outcome"],
    registry=None,
)
FAILOVERS = Counter(
    "moot_failovers",
    "Room servers declared failed (connection lost past the grace, or silent): "
    "their meetings move to other servers.",
    registry=None,
)
DETECTOR_RUNS = Counter(
    "moot_failure_detector_runs",
    "Runs of the failure detector (ten a second): each judges every room server, and the "
    "drain deadlines, as of that moment. A count that stops growing means it stalled.",
    registry=None,
)
MOVE_REASONS = ("failover", "shutdown", "evacuated", "removed")
MEETINGS_MOVED = Counter(
    "moot_meetings_moved",
    "Meetings moved to another room server, by reason: failover (its server failed), "
    "shutdown (its server announced it), evacuated (drain deadline, --evacuate, remove "
    "--force), removed (its server is gone).",
    ["reason"],
    registry=None,
)
JOURNAL_EVENTS = Counter(
    "moot_journal_events",
    "Meeting events (chat lines) stored in the journal.",
    registry=None,
)
JOURNAL_BATCH_SECONDS = Histogram(
    "moot_journal_batch_seconds",
    "Time to store one batch of journal events (fencing check, insert, commit).",
    buckets=FAST_BUCKETS,
    registry=None,
)
JOURNAL_ACK_ERRORS = Counter(
    "moot_journal_ack_errors",
    "Journal events refused in their journal_ack, by reason: fenced (an old epoch, or a "
    "server that no longer hosts the meeting), store_failed (the database refused the batch).",
    ["reason"],
    registry=None,
)
# The kinds placement raises (ClusterManager counts them where it raises them); the live
# participants_over_limit of CapacityWatch.check_report are not counted yet.
WARNING_KINDS = ("no_room", "meeting_too_large", "participants_over_limit")
CAPACITY_WARNINGS = Counter(
    "moot_capacity_warnings",
    "Capacity warnings raised, by kind (the kind column of capacity_warnings).",
    ["kind"],
    registry=None,
)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_REQUESTS = Counter(
    "moot_http_requests",
    "HTTP requests the EMS answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=None,
)
HTTP_SECONDS = Histogram(
    "moot_http_request_seconds",
    "Time the EMS took to answer an HTTP request, by route template.",
    ["route"],
    registry=None,
)

for _outcome in PLACEMENT_OUTCOMES:  # every series from the start: rate() and alerts see 0
    PLACEMENTS.labels(outcome=_outcome)
for _reason in MOVE_REASONS:
    MEETINGS_MOVED.labels(reason=_reason)
for _reason in ("fenced", "store_failed"):
    JOURNAL_ACK_ERRORS.labels(reason=_reason)
for _kind in WARNING_KINDS:
    CAPACITY_WARNINGS.labels(kind=_kind)

EMS_METRICS = (
    PLACEMENTS,
    FAILOVERS,
    DETECTOR_RUNS,
    MEETINGS_MOVED,
    JOURNAL_EVENTS,
    JOURNAL_BATCH_SECONDS,
    JOURNAL_ACK_ERRORS,
    CAPACITY_WARNINGS,
    HTTP_REQUESTS,
    HTTP_SECONDS,
)

# -- room server ----------------------------------------------------------------

ROOM_CHAT_LINES = Counter(
    "moot_room_chat_lines",
    "Chat lines this room server had stored in the EMS's journal (and so showed).",
    registry=None,
)
ROOM_JOURNAL_SECONDS = Histogram(
    "moot_room_journal_seconds",
    "Round trip of one event to the EMS's journal: from journal_append to journal_ack "
    "(or to the 5 s timeout).",
    buckets=FAST_BUCKETS,
    registry=None,
)

ROOM_METRICS = (ROOM_CHAT_LINES, ROOM_JOURNAL_SECONDS)


# -- one-line updates for the code that counts ---------------------------------


def count_placement(choice: Placement) -> None:
    """One placement decision of ClusterManager.open_meeting."""
    if choice.server is None:
        PLACEMENTS.labels(outcome="refused").inc()
    else:
        PLACEMENTS.labels(outcome="over_limits" if choice.warning else "placed").inc()


def count_move(*, forced: bool, host: LiveServer | None) -> None:
    """One meeting moved by ClusterManager._move, off `host` (None: removed)."""
    if forced:
        reason = "evacuated"
    elif host is None:
        reason = "removed"
    elif host.state == "offline":  # a ServerState, a StrEnum
        reason = "shutdown"
    else:
        reason = "failover"
    MEETINGS_MOVED.labels(reason=reason).inc()


def timed(
    histogram: Histogram,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Observe how long each call of a coroutine function takes (prometheus-client's own
    `Histogram.time()` decorator times only the creation of the coroutine)."""

    def decorate(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return wrapper

    return decorate


def journalled(function: Callable[P, Awaitable[bool]]) -> Callable[P, Awaitable[bool]]:
    """For Agent.journal: times each round trip and counts the chat lines it stored."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> bool:
        started = time.perf_counter()
        try:
            stored = await function(*args, **kwargs)
        finally:
            ROOM_JOURNAL_SECONDS.observe(time.perf_counter() - started)
        if stored and getattr(args[-1], "kind", "chat") == "chat":  # not a tool event
            ROOM_CHAT_LINES.inc()
        return stored

    return wrapper


# -- live state, read at scrape time -------------------------------------------

SERVER_STATES = ("online", "suspect", "failed", "offline", "draining")
# How long the count of scheduled meetings (a database query) is reused between scrapes.
SCHEDULED_TTL = 30.0


class EmsCollector:
    """The EMS's live state, from the cluster registry in memory, when it is scraped.

    Scraped between two awaits of the event loop (the /metrics route is `async def`), so
    it never sees the registry half-changed. Before start-up (and after shut-down) it
    reports nothing: it is `attach`ed in the app's lifespan.
    """

    def __init__(self) -> None:
        self._registry: Registry | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._scheduled: int | None = None
        self._scheduled_at = float("-inf")

    def attach(self, registry: Registry, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._registry = registry
        self._sessions = sessions

    def detach(self) -> None:
        self._registry = None
        self._sessions = None

    async def refresh(self) -> None:
        """Count the scheduled meetings again if the count is older than SCHEDULED_TTL.

        The only figure that needs the store: one indexed count, at most every 30 s, however
        often Prometheus scrapes. A failed count keeps the last one (the scrape still works).
        """
        sessions = self._sessions
        now = time.monotonic()
        if sessions is None or now - self._scheduled_at < SCHEDULED_TTL:
            return
        self._scheduled_at = now
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from moot.ems.store.models import MeetingRow

        try:
            query = select(func.count()).where(MeetingRow.status == "scheduled")
            async with sessions() as session:
                self._scheduled = await session.scalar(query)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not count scheduled meetings for /metrics: %s", exc)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        registry = self._registry
        if registry is None:
            return []
        return self._families(registry)

    def _families(self, registry: Registry | None = None) -> list[Metric]:
        servers = GaugeMetricFamily(
            "moot_room_servers",
            "Room servers by state (draining: online, taking no new meetings).",
            labels=["state"],
        )
        meetings = GaugeMetricFamily(
            "moot_meetings",
            "Meetings in progress on a room server (live), and scheduled ones (counted at "
            "most every 30 s).",
            labels=["status"],
        )
        participants = GaugeMetricFamily(
            "moot_participants", "People in meetings now, as the room servers last reported."
        )
        logins = GaugeMetricFamily(
            "moot_logins", "Meeting connections open now, as the online room servers reported."
        )
        if registry is not None:
            states = dict.fromkeys(SERVER_STATES, 0)
            running: set[str] = set()
            people = connections = 0
            for server in registry.all():
                word = server.status_word
                states["draining" if word == "drained" else word] += 1
                # Reported meetings, plus those placed since the last report.
                running.update(server.meetings, server.booked)
                people += server.participants
                if server.state == "online":
                    connections += server.logins
            for state, count in states.items():
                servers.add_metric([state], count)
            meetings.add_metric(["in_progress"], len(running))
            if self._scheduled is not None:
                meetings.add_metric(["scheduled"], self._scheduled)
            participants.add_metric([], people)
            logins.add_metric([], connections)
        return [servers, meetings, participants, logins]


class RoomCollector:
    """A room server's live state, from its agent and meeting host, when it is scraped."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._agent)

    @staticmethod
    def _families(agent: Agent | None) -> list[Metric]:
        meetings = GaugeMetricFamily("moot_room_meetings", "Meetings hosted here now.")
        connections = GaugeMetricFamily(
            "moot_room_connections", "Meeting WebSocket connections open here now."
        )
        participants = GaugeMetricFamily(
            "moot_room_participants", "People in the meetings hosted here now."
        )
        connected = GaugeMetricFamily(
            "moot_room_control_connected",
            "1 while the control channel to the EMS is up and registered, else 0.",
        )
        if agent is not None:
            hosted = agent.host.meetings.values()
            meetings.add_metric([], len(hosted))
            connections.add_metric([], agent.host.logins())
            participants.add_metric([], sum(len({c.user for c in m.connections}) for m in hosted))
            connected.add_metric([], 1 if agent.registered.is_set() else 0)
        return [meetings, connections, participants, connected]


def ems_registry(live: EmsCollector) -> CollectorRegistry:
    """One EMS app's Moot metrics."""
    registry = CollectorRegistry()
    for collector in (INFO, *EMS_METRICS, live):
        registry.register(collector)
    return registry


def room_registry(agent: Agent) -> CollectorRegistry:
    """One room-server app's Moot metrics."""
    registry = CollectorRegistry()
    for collector in (INFO, *ROOM_METRICS, RoomCollector(agent)):
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format of a scrape: process and Python metrics, then the app's own."""
    return generate_latest(REGISTRY) + generate_latest(registry)


# -- HTTP requests ---------------------------------------------------------------


def route_of(scope: Scope) -> str:
    """The route template that answered (`/api/v1/meetings/{meeting_id}`), never the path."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        return template
    # A mount (/static) sets no scope["route"]: it moves its prefix into root_path.
    prefix = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
    return f"{prefix}/{{path}}" if prefix else "unmatched"


class HttpMetrics:
    """ASGI middleware: counts and times HTTP requests by method, route template and status.

    Pure ASGI, not BaseHTTPMiddleware, so streamed answers (server-sent events) pass
    through untouched; WebSockets (the control channel) are not counted.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router filled scope["route"] in while it handled the request.
            route = route_of(scope)
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_SECONDS.labels(route=route).observe(time.perf_counter() - started)
