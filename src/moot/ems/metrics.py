"""The EMS's Prometheus metrics (docs/admin-guide.md lists them): counters the cluster
manager, journal writer and capacity watch update, the live state read at scrape time, and
the HTTP middleware. Shared plumbing (version, timer, scrape) is `moot.infra.metrics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moot.core.meeting_status import MeetingStatus
from moot.infra.metrics import FAST_BUCKETS, app_registry

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from moot.core.placement import Placement
    from moot.ems.cluster.registry import LiveServer, Registry

log = logging.getLogger("moot.metrics")

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
            query = select(func.count()).where(MeetingRow.status == MeetingStatus.SCHEDULED)
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


def ems_registry(live: EmsCollector) -> CollectorRegistry:
    """One EMS app's Moot metrics."""
    return app_registry(*EMS_METRICS, live)


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
