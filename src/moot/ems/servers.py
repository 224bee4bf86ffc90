"""Room-server administration: add, change, drain, remove; the cluster view."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.auth.identity import Audit, Identity, no_audit
from moot.ems.cluster.manager import limits_of
from moot.ems.cluster.needs import ServerControl
from moot.ems.cluster.registry import LiveServer
from moot.ems.errors import Code, DomainError, InvalidChange
from moot.ems.model.servers import (
    DEFAULT_DRAIN_MINUTES,
    ClusterMeeting,
    ClusterOut,
    ClusterServer,
    DrainRequest,
    ServerCreate,
    ServerEventOut,
    ServerMedia,
    ServerOut,
    ServerPatch,
)
from moot.ems.store import meetings as meeting_store
from moot.ems.store import servers as store
from moot.ems.store.db import utcnow
from moot.ems.store.models import RoomServerRow

log = logging.getLogger("moot.ems.servers")


class ServerNotFound(DomainError):
    code = Code.SERVER_NOT_FOUND


class ServerConflict(DomainError):
    """The change clashes with the cluster's state; the message says how."""

    code = Code.SERVER_CONFLICT


class ServerService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster: ServerControl,
        audit: Audit = no_audit,
    ) -> None:
        self._sessions = sessions
        self._cluster = cluster
        self._audit = audit

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
            drain_deadline=row.drain_deadline if row.draining else None,
            status=_status(live, row),
            active_meetings=len(live.meetings) if live else 0,
            participants=live.participants if live else 0,
            logins=live.logins if live else 0,
            cpu_percent=live.cpu_percent if live else 0.0,
            memory_percent=live.memory_percent if live else 0.0,
            last_seen_at=(live.last_seen_at if live else None) or row.last_seen_at,
            media=(
                ServerMedia(**live.media.model_dump())
                if live is not None and live.media is not None
                else None
            ),
        )

    async def list_all(self) -> list[ServerOut]:
        async with self._sessions() as session:
            return [self._out(row) for row in await store.list_servers(session)]

    async def locations(self) -> list[str]:
        """The location tags room servers have, for the meeting form to offer."""
        return sorted({s.location for s in await self.list_all() if s.location})

    async def get(self, name: str) -> ServerOut:
        async with self._sessions() as session:
            return self._out(await self._get(session, name))

    async def add(self, data: ServerCreate, *, by: Identity) -> ServerOut:
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
        await self._audit(by, "server.add", data.name, data.model_dump(mode="json"))
        return self._out(row)

    async def update(self, name: str, patch: ServerPatch, *, by: Identity) -> ServerOut:
        changes = patch.model_dump(exclude_unset=True)
        for key in ("url", "max_active_meetings", "max_users_per_meeting", "location", "draining"):
            if key in changes and changes[key] is None:
                raise InvalidChange(key, "must not be null")
        async with self._sessions() as session:
            row = await self._get(session, name)
            was_draining = row.draining
            for key, value in changes.items():
                setattr(row, key, value)
            if not row.draining:
                row.drain_deadline = None  # the drain ended
            elif not was_draining:  # a drain started: with the default deadline
                row.drain_deadline = utcnow() + timedelta(minutes=DEFAULT_DRAIN_MINUTES)
            await session.commit()
            self._sync_live(row)
            if was_draining != row.draining:
                self._cluster.set_drain_deadline(row.name, row.drain_deadline)
                log.info("room server %s %s", name, "drains" if row.draining else "drains no more")
            out = self._out(row)
        await self._audit(
            by, "server.change", name, patch.model_dump(mode="json", exclude_unset=True)
        )
        return out

    async def drain(self, name: str, request: DrainRequest, *, by: Identity) -> ServerOut:
        """No new meetings go there; at the deadline (or now) its meetings move elsewhere.

        Again on a draining server: a new deadline replaces the old one; none keeps it.
        """
        deadline, evacuate = request.deadline, request.evacuate
        async with self._sessions() as session:
            row = await self._get(session, name)
            if evacuate:
                row.drain_deadline = utcnow()
            elif deadline is not None or not row.draining or row.drain_deadline is None:
                row.drain_deadline = utcnow() + (
                    deadline or timedelta(minutes=DEFAULT_DRAIN_MINUTES)
                )
            row.draining = True
            await session.commit()
            self._sync_live(row)
            self._cluster.set_drain_deadline(name, row.drain_deadline)
        if evacuate:
            log.info("room server %s is draining: its meetings move to other servers now", name)
            await self._cluster.evacuate(name, why="drained with evacuate")
        else:
            log.info(
                "room server %s is draining: no new meetings go there; meetings still "
                "running at %s move to other servers",
                name,
                row.drain_deadline.isoformat() if row.drain_deadline else "?",
            )
        await self._audit(by, "server.drain", name, request.model_dump(mode="json"))
        return await self.get(name)

    async def remove(self, name: str, *, force: bool = False, by: Identity) -> None:
        """Remove a server that hosts no meeting; with `force`, move its meetings first."""
        async with self._sessions() as session:
            row = await self._get(session, name)
            active = await store.count_active_meetings(session, name)
            if active and not force:
                raise ServerConflict(
                    f"room server {name} still hosts {active} meeting(s): drain it first "
                    f"(moot servers drain {name}; --evacuate moves them now) and remove it "
                    "when its meetings have ended, or remove it with force (--force; "
                    "API: ?force=true), which moves them to other servers first"
                )
            if active:  # no new meeting may go there while its meetings move
                row.draining = True
                row.drain_deadline = utcnow()
                await session.commit()
                self._sync_live(row)
                self._cluster.set_drain_deadline(name, row.drain_deadline)
        if active:
            left = await self._cluster.evacuate(name, why="removed with force")
            if left:
                raise ServerConflict(
                    f"room server {name}: {left} of its {active} meeting(s) could not move, "
                    "no other room server can take them now. It is draining and they move "
                    "as soon as one can; remove it then"
                )
        async with self._sessions() as session:
            row = await self._get(session, name)
            still = await store.count_active_meetings(session, name)
            if still:  # it got one back meanwhile (a drain ended?)
                raise ServerConflict(
                    f"room server {name} still hosts {still} meeting(s); try again"
                )
            await session.delete(row)
            await session.commit()
        self._cluster.set_drain_deadline(name, None)
        await self._cluster.disconnect(name, "removed from the cluster")
        await self._cluster.rebook_from(name)
        log.info(
            "room server %s removed from the cluster%s",
            name,
            " after its meetings moved" if active else "",
        )
        await self._audit(by, "server.remove", name, {"force": force})

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
