"""Meeting logic: schedule, start, attend, end. Routes call this; it calls the store.

Starting a meeting is serialised per meeting (one EMS node in `direct`
mode), so two people arriving at once never open it on two servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.api.schemas import MeetingCreate, MeetingPatch
from moot.ems.cluster.manager import (
    ClusterManager,
    CommandFailed,
    NoRoomServer,
    record_segment,
)
from moot.ems.errors import InvalidChange
from moot.ems.store import meetings as store
from moot.ems.store import recordings as recording_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import AttendanceRow, MeetingRow
from moot.ems.store.recordings import RecordedSegment
from moot.tokens import InvalidToken, Role, sign_join_token, verify_join_token

log = logging.getLogger("moot.ems.meetings")

# How far in the past a "scheduled" start may lie (clock skew, slow forms).
START_SLACK = timedelta(minutes=1)
# How long after its join token expired a meeting page may still rejoin by itself.
REJOIN_WINDOW = 12 * 3600
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
# A change to any of these books a scheduled meeting again (its hours, size or place).
_BOOKING_FIELDS = frozenset(
    {"start", "duration_minutes", "expected_participants", "location", "location_required"}
)


class MeetingNotFound(Exception):
    pass


class CannotAttend(Exception):
    """The meeting cannot be entered now; the message tells the person why."""


class NotAllowed(CannotAttend):
    """The request carries no valid proof of who is asking."""


class NotRecorded(Exception):
    """The meeting has no recording (not recorded, or not started yet)."""


class Unavailable(Exception):
    """No room server can host the meeting now."""


@dataclass(frozen=True, slots=True)
class AttendInfo:
    """The few facts about a meeting that attending it needs."""

    id: str
    name: str
    moderator: str
    status: str
    server_name: str | None
    epoch: int
    password_hash: str | None

    @classmethod
    def of(cls, row: MeetingRow) -> AttendInfo:
        return cls(
            id=row.id,
            name=row.name,
            moderator=row.moderator,
            status=row.status,
            server_name=row.server_name,
            epoch=row.epoch,
            password_hash=row.password_hash,
        )

    @property
    def needs_password(self) -> bool:
        return self.password_hash is not None


@dataclass(frozen=True, slots=True)
class AttendRedirect:
    url: str
    role: Role
    socket_url: str
    token: str


def _socket_base(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def new_meeting_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


class MeetingService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster: ClusterManager,
        signing_key: Ed25519PrivateKey,
        join_token_ttl: int,
        public_url: str,
        early_join: timedelta,
    ) -> None:
        self._sessions = sessions
        self._cluster = cluster
        self._key = signing_key
        self._ttl = join_token_ttl
        self.public_url = public_url
        self._early_join = early_join
        self._locks: dict[str, asyncio.Lock] = {}
        # Running meetings by id: attending is the hot path (bench/attend.py).
        self._running: dict[str, AttendInfo] = {}
        self._changes = 0
        cluster.on_meeting_changed = self.forget

    def join_url(self, meeting_id: str) -> str:
        return f"{self.public_url}/m/{meeting_id}"

    def _lock(self, meeting_id: str) -> asyncio.Lock:
        return self._locks.setdefault(meeting_id, asyncio.Lock())

    # -- create and change ---------------------------------------------

    async def create(self, data: MeetingCreate, now: datetime | None = None) -> MeetingRow:
        now = now or utcnow()
        instant = data.start is None
        start = now if data.start is None else data.start.astimezone(UTC)
        if not instant and start < now - START_SLACK:
            raise InvalidChange("start", "the start lies in the past")
        row = MeetingRow(
            id=new_meeting_id(),
            name=data.name,
            type=data.type,
            moderator=data.moderator,
            expected_participants=data.expected_participants,
            start_at=start,
            end_at=start + timedelta(minutes=data.duration_minutes),
            duration_minutes=data.duration_minutes,
            instant=instant,
            location=data.location,
            location_required=data.location_required,
            recurrence=data.recurrence,
            record=data.record,
            password_hash=hash_password(data.password) if data.password else None,
            tools=list(data.tools),
            status="scheduled",
            epoch=0,
        )
        if instant:
            # Open it before saving: a meeting no server accepts is not half-created.
            await self._open(row, now)
        else:
            self._cluster.book(row, now)  # its expected participants, on a server, for its hours
        async with self._sessions() as session:
            session.add(row)
            if instant:
                await session.flush()  # the meeting row first: its segment refers to it
                await record_segment(session, row, row.server_name or "", row.epoch, "")
            await session.commit()
        return row

    async def update(self, meeting_id: str, patch: MeetingPatch) -> MeetingRow:
        changes = patch.model_dump(exclude_unset=True)
        for key in (
            "name",
            "type",
            "moderator",
            "expected_participants",
            "record",
            "tools",
            "location",
            "location_required",
        ):
            if key in changes and changes[key] is None:
                raise InvalidChange(key, "must not be null")
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.status == "ended":
                raise InvalidChange("status", "an ended meeting cannot be changed")
            if (
                "record" in changes
                and row.status != "scheduled"
                and changes["record"] != row.record
            ):
                # Everyone in it was told on entering whether it is recorded.
                raise InvalidChange(
                    "record", "whether a meeting is recorded is set before it starts"
                )
            timing = {"start", "duration_minutes", "recurrence"} & changes.keys()
            if timing and row.status != "scheduled":
                raise InvalidChange(
                    sorted(timing)[0], "the time of a meeting in progress cannot be changed"
                )
            if "start" in changes:
                if changes["start"] is None:
                    raise InvalidChange("start", "must not be null")
                if changes["start"] < utcnow() - START_SLACK:
                    raise InvalidChange("start", "the start lies in the past")
                row.start_at = changes["start"].astimezone(UTC)
            for key in (
                "name",
                "type",
                "moderator",
                "expected_participants",
                "record",
                "location",
                "location_required",
            ):
                if key in changes:
                    setattr(row, key, changes[key])
            if row.location_required and not row.location:
                raise InvalidChange("location_required", "a required location needs a location")
            if "tools" in changes:
                row.tools = list(dict.fromkeys(changes["tools"]))
            if "duration_minutes" in changes and changes["duration_minutes"] is not None:
                row.duration_minutes = changes["duration_minutes"]
            if "recurrence" in changes:
                row.recurrence = changes["recurrence"]
            if "password" in changes:
                password = changes["password"]
                row.password_hash = hash_password(password) if password else None
            row.end_at = row.start_at + timedelta(minutes=row.duration_minutes)
            if row.status == "scheduled" and _BOOKING_FIELDS & changes.keys():
                self._cluster.book(row, utcnow())  # booked again for its new hours or size
            await session.commit()
            self.forget(meeting_id)
            if row.status == "in_progress" and row.server_name:
                self._cluster.rebook(row.server_name, row.id, row.expected_participants)
            return row

    async def delete(self, meeting_id: str) -> None:
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.status == "in_progress" and row.server_name:
                await self._cluster.close_meeting(row.id, row.server_name, "deleted")
            self._cluster.unbook(row.id)
            await session.delete(row)
            await session.commit()
        self._locks.pop(meeting_id, None)
        self.forget(meeting_id)

    async def end(self, meeting_id: str, by: str = "the Meeting Center") -> MeetingRow:
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.status == "ended":
                return row
            if row.status == "in_progress" and row.server_name:
                await self._cluster.close_meeting(row.id, row.server_name, f"ended by {by}")
            now = utcnow()
            self._cluster.unbook(row.id)
            row.booked_server = None
            await store.end_meeting(session, row, now)
            await session.commit()
            self.forget(meeting_id)
            return row

    # -- read ------------------------------------------------------------

    async def get(self, meeting_id: str) -> MeetingRow:
        async with self._sessions() as session:
            return await self._get(session, meeting_id)

    async def get_with_attendance(self, meeting_id: str) -> tuple[MeetingRow, list[AttendanceRow]]:
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            return row, await store.attendance_of(session, meeting_id)

    async def recording(self, meeting_id: str) -> tuple[MeetingRow, list[RecordedSegment]]:
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            if not row.record:
                raise NotRecorded("this meeting is not recorded")
            segments = await recording_store.segments_of(session, meeting_id, utcnow())
        if not segments:
            raise NotRecorded("nothing is recorded yet: this meeting has not started")
        return row, segments

    async def list(self, query: store.MeetingQuery) -> tuple[list[MeetingRow], str | None]:
        async with self._sessions() as session:
            return await store.list_meetings(session, query)

    @staticmethod
    async def _get(session: AsyncSession, meeting_id: str) -> MeetingRow:
        row = await store.get_meeting(session, meeting_id)
        if row is None:
            raise MeetingNotFound(meeting_id)
        return row

    # -- attend ----------------------------------------------------------

    async def attend_info(self, meeting_id: str) -> AttendInfo:
        """What attending needs to know; running meetings are served from memory."""
        cached = self._running.get(meeting_id)
        if cached is not None:
            return cached
        changes_before = self._changes
        info = AttendInfo.of(await self.get(meeting_id))
        # Cache only if nothing was forgotten while we read: the row may be stale.
        if info.status == "in_progress" and self._changes == changes_before:
            self._running[meeting_id] = info
        return info

    def forget(self, meeting_id: str) -> None:
        """Drop what is cached about a meeting (it ended, moved or changed)."""
        self._changes += 1
        self._running.pop(meeting_id, None)

    async def rejoin(self, meeting_id: str, old_token: str) -> AttendRedirect:
        """A meeting page lost its room server: where the meeting is now, and a new token.

        The old token (signed by us, expired at most REJOIN_WINDOW ago) is the proof
        that this person was let in, password and all.
        """
        try:
            claims = verify_join_token(
                self._key.public_key(),
                old_token,
                meeting_id=meeting_id,
                expired_for=REJOIN_WINDOW,
            )
        except InvalidToken as exc:
            raise NotAllowed(str(exc)) from exc
        return await self.attend(await self.attend_info(meeting_id), claims.user, trusted=True)

    async def attend(
        self, info: AttendInfo, user: str, password: str | None = None, *, trusted: bool = False
    ) -> AttendRedirect:
        """Start the meeting if it should run, then a signed redirect to its room server."""
        password_ok = info.password_hash is None or trusted
        if not password_ok and not check_password(info.password_hash or "", password or ""):
            raise CannotAttend("wrong or missing meeting password")
        if info.status != "in_progress":
            info = await self._start_for_attendee(info.id)
        server = self._cluster.registry.get(info.server_name or "")
        if server is None or server.link is None or not self._cluster.answering(server):
            raise Unavailable(
                "the room server hosting this meeting is not reachable; try again shortly"
            )
        role: Role = "moderator" if user.casefold() == info.moderator.casefold() else "participant"
        token = sign_join_token(
            self._key,
            meeting_id=info.id,
            user=user,
            role=role,
            epoch=info.epoch,
            ttl_seconds=self._ttl,
        )
        return AttendRedirect(
            url=f"{server.url}/meeting/{info.id}?token={token}",
            role=role,
            socket_url=_socket_base(server.url) + f"/meeting/{info.id}/ws?token={token}",
            token=token,
        )

    async def _start_for_attendee(self, meeting_id: str) -> AttendInfo:
        async with self._lock(meeting_id):
            async with self._sessions() as session:
                row = await self._get(session, meeting_id)
            if row.status == "ended":
                raise CannotAttend("this meeting has ended")
            if row.status == "scheduled":
                now = utcnow()
                if now < row.start_at - self._early_join:
                    raise CannotAttend(f"this meeting opens at {row.start_at:%Y-%m-%d %H:%M} UTC")
                if now >= row.end_at:
                    raise CannotAttend("this meeting's time is over")
                # Opened with no session held: at 9:00 many meetings start at once, and
                # each waits for its room server's answer.
                epoch_before = row.epoch
                await self._open(row, now)
                async with self._sessions() as session:
                    started = await store.record_host(
                        session,
                        row.id,
                        status="scheduled",
                        epoch=epoch_before,
                        server_name=row.server_name or "",
                        new_epoch=row.epoch,
                        started_at=now,
                    )
                    if started:
                        await record_segment(
                            session, row, row.server_name or "", row.epoch, previous_ended=""
                        )
                    await session.commit()
                if not started:  # deleted or changed while it opened: undo the opening
                    await self._cluster.close_meeting(row.id, row.server_name or "", "deleted")
                    raise CannotAttend("this meeting changed while it opened; try again")
            return AttendInfo.of(row)

    async def _open(self, row: MeetingRow, now: datetime) -> None:
        try:
            server, epoch = await self._cluster.open_meeting(row)
        except NoRoomServer as exc:
            raise Unavailable(f"no room server can host this meeting now: {exc}") from exc
        except CommandFailed as exc:
            raise Unavailable(str(exc)) from exc
        row.status = "in_progress"
        row.server_name = server.name
        row.epoch = epoch
        row.started_at = now
