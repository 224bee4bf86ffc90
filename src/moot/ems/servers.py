"""Room-server administration: add, change, drain, remove; the cluster view."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.api.schemas import (
    ClusterMeeting,
    ClusterOut,
    ClusterServer,
    ServerCreate,
    ServerEventOut,
    ServerOut,
    ServerPatch,
)
from moot.ems.cluster.manager import ClusterManager, limits_of
from moot.ems.cluster.registry import LiveServer
from moot.ems.errors import InvalidChange
from moot.ems.store import meetings as meeting_store
from moot.ems.store import servers as store
from moot.ems.store.models import RoomServerRow

log = logging.getLogger("moot.ems.servers")


class ServerNotFound(Exception):
    pass


class ServerConflict(Exception):
    """The change clashes with the cluster's state; the message says how."""


class ServerService:
    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], cluster: ClusterManager
    ) -> None:
        self._sessions = sessions
        self._cluster = cluster

    def _out(self, row: RoomServerRow) -> ServerOut:
        live = self._cluster.registry.get(row.name)
        return ServerOut(
            name=row.name,
            url=row.url,
            max_active_meetings=row.max_active_meetings,
            max_users_per_meeting=row.max_users_per_meeting,
            instant_meetings=row.instant_meetings,
            location=row.location,
            draining=row.draining,
            status=_status(live, row),
            active_meetings=len(live.meetings) if live else 0,
            participants=live.participants if live else 0,
            logins=live.logins if live else 0,
            cpu_percent=live.cpu_percent if live else 0.0,
            memory_percent=live.memory_percent if live else 0.0,
            last_seen_at=(live.last_seen_at if live else None) or row.last_seen_at,
        )

    async def list_all(self) -> list[ServerOut]:
        async with self._sessions() as session:
            return [self._out(row) for row in await store.list_servers(session)]

    async def get(self, name: str) -> ServerOut:
        async with self._sessions() as session:
            return self._out(await self._get(session, name))

    async def add(self, data: ServerCreate) -> ServerOut:
        row = RoomServerRow(**data.model_dump(), draining=False, status="offline")
        async with self._sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise ServerConflict(f"a room server named {data.name!r} exists already") from exc
        self._cluster.registry.put(
            LiveServer(name=row.name, url=row.url, limits=limits_of(row), draining=False)
        )
        log.info("room server %s added (%s)", row.name, row.url)
        return self._out(row)

    async def update(self, name: str, patch: ServerPatch) -> ServerOut:
        changes = patch.model_dump(exclude_unset=True)
        for key in ("url", "max_active_meetings", "max_users_per_meeting", "location", "draining"):
            if key in changes and changes[key] is None:
                raise InvalidChange(key, "must not be null")
        async with self._sessions() as session:
            row = await self._get(session, name)
            for key, value in changes.items():
                setattr(row, key, value)
            await session.commit()
            self._sync_live(row)
            return self._out(row)

    async def drain(self, name: str) -> ServerOut:
        async with self._sessions() as session:
            row = await self._get(session, name)
            row.draining = True
            await session.commit()
            self._sync_live(row)
            log.info("room server %s is draining: no new meetings go there", name)
            return self._out(row)

    async def remove(self, name: str) -> None:
        async with self._sessions() as session:
            row = await self._get(session, name)
            active = await store.count_active_meetings(session, name)
            if active:
                raise ServerConflict(
                    f"room server {name} still hosts {active} meeting(s): drain it first "
                    "and remove it when its meetings have ended"
                )
            await session.delete(row)
            await session.commit()
        await self._cluster.disconnect(name, "removed from the cluster")
        log.info("room server %s removed from the cluster", name)

    async def events(self, name: str, limit: int) -> list[ServerEventOut]:
        async with self._sessions() as session:
            await self._get(session, name)
            rows = await store.events_of(session, name, limit)
        return [ServerEventOut(at=r.at, state=r.state, reason=r.reason) for r in rows]

    async def cluster(self) -> ClusterOut:
        async with self._sessions() as session:
            rows = await store.list_servers(session)
            running = await meeting_store.meetings_in_progress(session)
        by_server: dict[str, list[ClusterMeeting]] = {}
        meetings = []
        for meeting in running:
            live = self._cluster.registry.get(meeting.server_name or "")
            reported = live.meetings.get(meeting.id) if live else None
            item = ClusterMeeting(
                id=meeting.id,
                name=meeting.name,
                server=meeting.server_name,
                status=meeting.status,
                epoch=meeting.epoch,
                participants=[p.user for p in reported.participants] if reported else [],
            )
            meetings.append(item)
            by_server.setdefault(meeting.server_name or "", []).append(item)
        servers = [
            ClusterServer(**self._out(row).model_dump(), meetings=by_server.get(row.name, []))
            for row in rows
        ]
        return ClusterOut(servers=servers, meetings=meetings)

    def _sync_live(self, row: RoomServerRow) -> None:
        live = self._cluster.registry.get(row.name)
        if live is not None:
            live.url = row.url
            live.limits = limits_of(row)
            live.draining = row.draining
            self._cluster.registry.refresh(live)

    @staticmethod
    async def _get(session: AsyncSession, name: str) -> RoomServerRow:
        row = await store.get_server(session, name)
        if row is None:
            raise ServerNotFound(name)
        return row


def _status(live: LiveServer | None, row: RoomServerRow) -> str:
    if live is None:
        return "offline"
    return live.status_word
