"""The cluster as the monitor shows it: a snapshot per heartbeat of every server (status,
logins, meetings with their participants and tools, CPU and memory) from the registry (the
room servers' Status reports) and the store (meeting names, capacity warnings), with the
alerts worked out from those figures (`server_alerts`, pure). One `Monitor` per EMS makes
snapshots at most once per interval, however many pages watch (web/admin_monitor.py streams
them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from moot.ems.cluster.capacity_warnings import CapacityWatch
from moot.ems.cluster.registry import LiveServer, Registry
from moot.ems.model.servers import ClusterOut, ClusterServer
from moot.ems.servers import ServerService
from moot.ems.store.models import CapacityWarningRow

# A figure at or above this share of its limit is "near" it.
NEAR = 0.8
CPU_WARNING, CPU_CRITICAL = 75.0, 90.0
MEMORY_WARNING, MEMORY_CRITICAL = 80.0, 90.0
# Capacity warnings from the store this recent are shown (and alerted).
RECENT_WARNINGS = timedelta(hours=1)
MAX_WARNINGS = 10
# EventSource reconnects after this long (milliseconds) when a stream ends.
RETRY_MS = 3000

Level = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    level: Level
    server: str | None
    text: str

    def as_json(self) -> dict[str, Any]:
        return {"level": self.level, "server": self.server, "text": self.text}


# -- the snapshot (pure) ----------------------------------------------------------------


def _share(value: float, limit: float) -> float:
    return value / limit if limit > 0 else (1.0 if value > 0 else 0.0)


def server_alerts(server: Mapping[str, Any]) -> list[Alert]:
    """What stands out about one server (as `server_view` describes it)."""
    name = str(server["name"])
    status = server["status"]
    alerts: list[Alert] = []
    if status == "failed":
        alerts.append(
            Alert("critical", name, f"{name} has failed: its meetings move to other servers")
        )
    elif status == "suspect":
        alerts.append(Alert("warning", name, f"{name} is not answering (suspect)"))
    if status in ("offline", "failed"):
        return alerts  # its figures are from before: no load alerts
    media = server.get("media")
    if media is not None and not media["available"]:
        alerts.append(
            Alert(
                "warning",
                name,
                f"{name}: audio/video unavailable ({media['reason']}): meetings with audio, "
                "video or screen sharing go to other servers while any has it",
            )
        )
    elif media is not None:
        streams = media["publishers"] + media["subscribers"]
        if media["max_streams"] and streams >= media["max_streams"]:
            alerts.append(
                Alert(
                    "warning",
                    name,
                    f"{name} is at its media limit: {streams} of {media['max_streams']} "
                    "streams; new meetings with audio/video go to other servers",
                )
            )
        kbps, most_kbps = media.get("bitrate_kbps", 0), media.get("max_bitrate_kbps", 0)
        if most_kbps and kbps >= most_kbps:
            alerts.append(
                Alert(
                    "warning",
                    name,
                    f"{name} is at its media bitrate limit: {kbps / 1000:.1f} of "
                    f"{most_kbps / 1000:g} Mbit/s; new meetings with audio/video go to "
                    "other servers",
                )
            )
    meetings, most = len(server["meetings"]), int(server["max_active_meetings"])
    if meetings and meetings >= most:
        alerts.append(
            Alert("critical", name, f"{name} is at its limit: {meetings} of {most} meetings")
        )
    elif most and _share(meetings, most) >= NEAR:
        alerts.append(
            Alert("warning", name, f"{name} is near its limit: {meetings} of {most} meetings")
        )
    per_meeting = int(server["max_users_per_meeting"])
    for meeting in server["meetings"]:
        count = len(meeting["participants"])
        title = meeting["name"] or meeting["id"]
        if count >= per_meeting:
            alerts.append(
                Alert(
                    "critical",
                    name,
                    f"meeting {title} on {name} has {count} participants: "
                    f"the limit is {per_meeting} per meeting",
                )
            )
        elif _share(count, per_meeting) >= NEAR:
            alerts.append(
                Alert(
                    "warning",
                    name,
                    f"meeting {title} on {name} is near its limit: "
                    f"{count} of {per_meeting} participants",
                )
            )
    instant, instant_most = int(server["instant_active"]), server["instant_meetings"]
    if instant_most is not None and instant and instant >= instant_most:
        alerts.append(
            Alert(
                "warning",
                name,
                f"{name} is at its limit of {instant_most} instant meeting(s)",
            )
        )
    for what, value, warn, critical in (
        ("CPU", float(server["cpu_percent"]), CPU_WARNING, CPU_CRITICAL),
        ("memory", float(server["memory_percent"]), MEMORY_WARNING, MEMORY_CRITICAL),
    ):
        if value >= critical:
            alerts.append(Alert("critical", name, f"{name}: {what} at {value:.0f}%"))
        elif value >= warn:
            alerts.append(Alert("warning", name, f"{name}: {what} high, {value:.0f}%"))
    return alerts


def server_view(server: ClusterServer, live: LiveServer | None, now: float) -> dict[str, Any]:
    """One server as the page shows it; `now` is `time.monotonic()` (the report's clock)."""
    names = {m.id: m.name for m in server.meetings}
    reported = dict(live.meetings) if live is not None else {}
    meetings = []
    for meeting_id in [*names, *(m for m in reported if m not in names)]:
        status = reported.get(meeting_id)
        meetings.append(
            {
                "id": meeting_id,
                "name": names.get(meeting_id, ""),
                "participants": [
                    {"user": p.user, "role": p.role}
                    for p in (status.participants if status else [])
                ],
                "tools": sorted(status.tools) if status else [],
            }
        )
    last = live.last_report_at if live is not None else None
    return {
        "name": server.name,
        "url": server.url,
        "location": server.location,
        "status": server.status,
        "draining": server.draining,
        "logins": server.logins,
        "community": live.community_connections if live is not None else 0,
        "participants": sum(len(m["participants"]) for m in meetings),
        "cpu_percent": round(server.cpu_percent, 1),
        "memory_percent": round(server.memory_percent, 1),
        "max_active_meetings": server.max_active_meetings,
        "max_users_per_meeting": server.max_users_per_meeting,
        "instant_meetings": server.instant_meetings,
        "instant_active": len(live.instant) if live is not None else 0,
        "last_report_at": server.last_seen_at.isoformat() if server.last_seen_at else None,
        "last_report_seconds": round(now - last, 1) if last is not None else None,
        "meetings": meetings,
        "media": server.media.model_dump() if server.media is not None else None,
    }


def _level(alerts: Iterable[Alert]) -> str:
    levels = {a.level for a in alerts}
    return "critical" if "critical" in levels else "warning" if levels else "ok"


def build_snapshot(
    cluster: ClusterOut,
    live: Mapping[str, LiveServer],
    warnings: list[CapacityWarningRow],
    *,
    at: datetime,
    now: float,
    only: str | None = None,
) -> dict[str, Any]:
    """What one event carries: the servers (all, or `only`), totals, tools and alerts."""
    servers = [
        server_view(s, live.get(s.name), now) for s in cluster.servers if only in (None, s.name)
    ]
    alerts: list[Alert] = []
    for server in servers:
        own = server_alerts(server)
        server["level"] = _level(own)
        server["alerts"] = [a.text for a in own]
        alerts.extend(own)
    recent = [w for w in warnings if only in (None, w.server_name)]
    alerts.extend(
        Alert("warning", w.server_name, f"capacity warning: {w.message}")
        for w in recent[:MAX_WARNINGS]
    )
    tools: dict[str, int] = {}
    for server in servers:
        for meeting in server["meetings"]:
            for tool in meeting["tools"]:
                tools[tool] = tools.get(tool, 0) + 1
    alerts.sort(key=lambda a: a.level != "critical")  # the critical ones first
    return {
        "at": at.isoformat(),
        "server": only,
        "totals": {
            "servers": len(servers),
            "online": sum(1 for s in servers if s["status"] in ("online", "draining", "drained")),
            "logins": sum(s["logins"] for s in servers),
            "community": sum(s["community"] for s in servers),
            "meetings": sum(len(s["meetings"]) for s in servers),
            "participants": sum(s["participants"] for s in servers),
        },
        "tools": dict(sorted(tools.items())),
        "servers": servers,
        "alerts": [a.as_json() for a in alerts],
        "capacity_warnings": [
            {
                "at": w.at.isoformat(),
                "kind": w.kind,
                "server": w.server_name,
                "meeting_id": w.meeting_id,
                "message": w.message,
            }
            for w in recent[:MAX_WARNINGS]
        ],
    }


class Monitor:
    """Makes snapshots at most once per interval, however many pages watch. `stopping` is
    set when the EMS stops: open streams end at once."""

    def __init__(
        self, interval: float, servers: ServerService, registry: Registry, warnings: CapacityWatch
    ) -> None:
        self.interval = interval
        self.stopping = asyncio.Event()
        self._servers = servers
        self._registry = registry
        self._capacity = warnings
        self._made_at = -1e9
        self._cluster: ClusterOut | None = None
        self._warnings: list[CapacityWarningRow] = []
        self._lock = asyncio.Lock()

    async def snapshot(self, only: str | None) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cluster is None or now - self._made_at >= self.interval * 0.9:
                self._cluster = await self._servers.cluster()
                since = datetime.now(UTC) - RECENT_WARNINGS
                self._warnings = await self._capacity.list(since, None, MAX_WARNINGS * 5)
                self._made_at = now
            cluster, warnings = self._cluster, self._warnings
        live = {s.name: s for s in self._registry.all()}
        return build_snapshot(
            cluster, live, warnings, at=datetime.now(UTC), now=time.monotonic(), only=only
        )
