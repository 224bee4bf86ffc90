"""The room server's Prometheus metrics (docs/admin-guide.md lists them): the journal
round trip, and the live state of its meetings read at scrape time."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, ParamSpec

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from moot.infra.metrics import FAST_BUCKETS, app_registry

if TYPE_CHECKING:
    from moot.room.agent import Agent

P = ParamSpec("P")

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


def room_registry(agent: Agent) -> CollectorRegistry:
    """One room-server app's Moot metrics."""
    return app_registry(*ROOM_METRICS, RoomCollector(agent))
