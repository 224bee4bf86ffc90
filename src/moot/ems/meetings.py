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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems import door, moderator_keys
from moot.ems.api.schemas import MeetingCreate, MeetingPatch
from moot.ems.cluster.manager import (
    ClusterManager,
    CommandFailed,
    NoRoomServer,
    record_segment,
)
from moot.ems.errors import InvalidChange, InvalidQuery
from moot.ems.hashing import off_loop
from moot.ems.ical import CalendarMeeting
from moot.ems.store import meetings as store
from moot.ems.store import occurrences as occurrence_store
from moot.ems.store import recordings as recording_store
from moot.ems.store.db import utcnow
from moot.ems.store.meetings import Reader
from moot.ems.store.models import AttendanceRow, MeetingExceptionRow, MeetingRow, OccurrenceRow
from moot.ems.store.occurrences import CalendarEntry, CalendarPage, SortKey, When
from moot.ems.store.recordings import RecordedSegment
from moot.ems.throttle import Throttle, TooMany
from moot.placement import ServerState
from moot.recurrence import (
    Exceptions,
    Moved,
    RecurrenceError,
    first_start,
    is_occurrence,
    last_end,
    normalize_rule,
    occurrences,
)
from moot.tokens import InvalidToken, JoinClaims, Role, sign_join_token, verify_join_token

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


# Occurrences of a repeating meeting without an end are written this far ahead.
OCCURRENCES_AHEAD = timedelta(days=2 * 365)
MAX_CALENDAR_RANGE = timedelta(days=62)


def _rule(text: str | None, start: datetime, timezone: str, *, instant: bool) -> str | None:
    """The canonical repeat rule, checked against the meeting's start and time zone."""
    if text is None:
        return None
    if instant:
        raise InvalidChange("recurrence", "a meeting that starts now does not repeat; schedule it")
    try:
        return normalize_rule(text, start, timezone=timezone)
    except RecurrenceError as exc:
        raise InvalidChange("recurrence", str(exc)) from exc


def exceptions_of_rows(rows: list[MeetingExceptionRow]) -> Exceptions:
    return Exceptions(
        skipped=frozenset(r.original_start for r in rows if r.skipped),
        moved={
            r.original_start: Moved(start=r.new_start, duration_minutes=r.new_duration_minutes)
            for r in rows
            if not r.skipped and r.new_start is not None
        },
    )


async def write_occurrences(session: AsyncSession, row: MeetingRow, now: datetime) -> None:
    """Write when the meeting happens, from its start, duration, rule and exceptions."""
    exceptions = exceptions_of_rows(await occurrence_store.exceptions_of(session, row.id))
    rule, zone = row.recurrence, row.timezone
    row.series_end_at = last_end(
        start=row.start_at,
        duration_minutes=row.duration_minutes,
        rule=rule,
        timezone=zone,
        exceptions=exceptions,
    )
    found = occurrences(
        start=row.start_at,
        duration_minutes=row.duration_minutes,
        rule=rule,
        timezone=zone,
        exceptions=exceptions,
        range_from=first_start(start=row.start_at, rule=rule, timezone=zone, exceptions=exceptions),
        range_to=row.series_end_at or max(now, row.start_at) + OCCURRENCES_AHEAD,
    )
    await occurrence_store.replace(
        session, row.id, [When(o.original_start, o.start, o.end) for o in found]
    )


class MeetingNotFound(Exception):
    pass


class CannotAttend(Exception):
    """The meeting cannot be entered now; the message tells the person why."""


class NotAllowed(CannotAttend):
    """The request carries no valid proof of who is asking."""


class NotRecorded(Exception):
    """The meeting has no recording (not recorded, or not started yet)."""


class NotYetOpen(CannotAttend):
    """A scheduled meeting before its time: who comes early waits in its lobby."""

    def __init__(self, opens_at: datetime) -> None:
        super().__init__(f"this meeting opens at {opens_at:%Y-%m-%d %H:%M} UTC")
        self.opens_at = opens_at


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
    # Who may enter, and as what (moot.permissions reads these: auth.service.MeetingLike).
    partition: str | None = None
    restricted_to: tuple[str, ...] = ()
    unlisted: bool = False
    moderator_key_hash: str | None = None

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
            partition=row.partition,
            restricted_to=tuple(row.restricted_to),
            unlisted=row.unlisted,
            moderator_key_hash=row.moderator_key_hash,
        )

    @property
    def needs_password(self) -> bool:
        return self.password_hash is not None


@dataclass(frozen=True, slots=True)
class Entrant:
    """Who enters a meeting: the name shown (unique in the meeting), the person behind it,
    the role, and what renewing their token checks again (moot.tokens.JoinClaims.proof)."""

    name: str
    person: str
    role: Role
    proof: dict[str, Any] = field(default_factory=dict)


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


# Changes that decide who moderates a meeting or may enter it (Action.CHANGE_ACCESS).
ACCESS_FIELDS = ("moderator", "password", "restricted_to")


def changes_access(row: MeetingRow, changes: dict[str, Any]) -> list[str]:
    """The fields of `changes` that would change who moderates or may enter the meeting
    (a password given counts: it cannot be compared)."""
    changed = []
    if "moderator" in changes and changes["moderator"] != row.moderator:
        changed.append("moderator")
    if "password" in changes and (changes["password"] or row.password_hash is not None):
        changed.append("password")
    if "restricted_to" in changes and sorted(
        e.casefold() for e in changes["restricted_to"] or []
    ) != sorted(e.casefold() for e in row.restricted_to):
        changed.append("restricted_to")
    return changed


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
        throttle: Throttle,
        password_failures_per_address: int,
    ) -> None:
        self._sessions = sessions
        self._throttle = throttle
        self._password_failures = password_failures_per_address
        self._cluster = cluster
        self._key = signing_key
        self._ttl = join_token_ttl
        self.public_url = public_url
        self._early_join = early_join
        # Meetings whose moderator was told that their time is over (told once).
        self._told_over: set[str] = set()
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

    async def create(
        self,
        data: MeetingCreate,
        now: datetime | None = None,
        *,
        partition: str | None = None,
        moderator_key_hash: str | None = None,
    ) -> MeetingRow:
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
            timezone=data.timezone,
            unlisted=data.unlisted,
            restricted_to=list(data.restricted_to),
            partition=partition,
            moderator_key_hash=moderator_key_hash,
            recurrence=_rule(data.recurrence, start, data.timezone, instant=instant),
            record=data.record,
            password_hash=await off_loop(hash_password, data.password) if data.password else None,
            tools=list(data.tools),
            status="scheduled",
            epoch=0,
        )
        if row.unlisted:
            async with self._sessions() as session:
                await self._check_unlisted_name(session, row.name, row.id)
        if instant:
            # Open it before saving: a meeting no server accepts is not half-created.
            await self._open(row, now)
        else:
            self._cluster.book(row, now)  # its expected participants, on a server, for its hours
        async with self._sessions() as session:
            session.add(row)
            await session.flush()  # the meeting row first: its segment and occurrences refer to it
            await store.set_access(session, row)
            await write_occurrences(session, row, now)
            if instant:
                await record_segment(
                    session,
                    row,
                    row.server_name or "",
                    row.epoch,
                    "",
                    allowed=self._cluster.recording_allowed(row.server_name or ""),
                )
            try:
                await session.commit()
            except IntegrityError as exc:  # two unlisted meetings of one name at once
                await session.rollback()
                if instant:
                    await self._cluster.close_meeting(row.id, row.server_name or "", "not saved")
                self._cluster.unbook(row.id)
                raise InvalidChange(
                    "name", "an unlisted meeting of this name exists already; choose another name"
                ) from exc
        return row

    async def new_moderator_key(self, meeting_id: str) -> str:
        """A new moderator key for the meeting (moderator_keys): the old one opens nothing."""
        key = moderator_keys.new_key()
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            row.moderator_key_hash = moderator_keys.key_hash(key)
            await session.commit()
        self.forget(meeting_id)
        return key

    @staticmethod
    async def _check_unlisted_name(session: AsyncSession, name: str, meeting_id: str) -> None:
        """Unlisted meetings are found by their whole name only, so no two may share one."""
        if await store.unlisted_named(session, name, other_than=meeting_id):
            raise InvalidChange(
                "name", "an unlisted meeting of this name exists already; choose another name"
            )

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
            "timezone",
            "unlisted",
            "restricted_to",
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
            timing = {"start", "duration_minutes", "recurrence", "timezone"} & changes.keys()
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
                "timezone",
                "unlisted",
                "restricted_to",
            ):
                if key in changes:
                    setattr(row, key, changes[key])
            if row.unlisted and {"name", "unlisted"} & changes.keys():
                # Not flushed first: the flush itself would break the unique index.
                with session.no_autoflush:
                    await self._check_unlisted_name(session, row.name, row.id)
                try:
                    await session.flush()
                except IntegrityError as exc:  # two meetings renamed to one name at once
                    await session.rollback()
                    raise InvalidChange(
                        "name",
                        "an unlisted meeting of this name exists already; choose another name",
                    ) from exc
            if row.location_required and not row.location:
                raise InvalidChange("location_required", "a required location needs a location")
            if "restricted_to" in changes:
                await store.set_access(session, row)
            if "tools" in changes:
                row.tools = list(dict.fromkeys(changes["tools"]))
            if "duration_minutes" in changes and changes["duration_minutes"] is not None:
                row.duration_minutes = changes["duration_minutes"]
            if timing:
                rule = changes.get("recurrence", row.recurrence)
                row.recurrence = _rule(rule, row.start_at, row.timezone, instant=False)
            if "password" in changes:
                password = changes["password"]
                row.password_hash = await off_loop(hash_password, password) if password else None
            row.end_at = row.start_at + timedelta(minutes=row.duration_minutes)
            if timing:
                await write_occurrences(session, row, utcnow())
            await session.commit()
            if row.status == "scheduled" and _BOOKING_FIELDS & changes.keys():
                self._cluster.book(row, utcnow())  # booked again for its new hours or size
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

    # -- the clock: meetings open at their start and end at their end --------

    async def run_clock(self, period: float) -> None:
        """Open meetings whose time has come; end (or let run on) those whose time is over."""
        while True:
            try:
                await self.tick(utcnow())
            except Exception:  # the next tick tries again
                log.exception("the meeting clock failed")
            await asyncio.sleep(period)

    async def tick(self, now: datetime) -> None:
        async with self._sessions() as session:
            due = await occurrence_store.due_to_open(session, now)
            over = await occurrence_store.running_past_their_end(session, now, self._early_join)
        for meeting_id in due:
            try:
                await self._start_for_attendee(meeting_id, now)
            except (CannotAttend, Unavailable) as exc:
                log.warning("meeting %s could not open at its start: %s", meeting_id, exc)
        for row in over:
            await self._time_is_over(row, now)

    async def _time_is_over(self, row: MeetingRow, now: datetime) -> None:
        """Nobody left: it ends (or waits for its next occurrence). People in it: it runs on,
        and its moderator is told once."""
        people = self._cluster.participants_in(row.server_name or "", row.id)
        if people:
            if row.id not in self._told_over:
                self._told_over.add(row.id)
                log.info("meeting %s runs past its end: %d still in it", row.id, people)
                await self._cluster.notify(
                    row.server_name or "",
                    row.id,
                    "The meeting's scheduled time is over. It runs on while people are in it; "
                    "end it when you are done.",
                )
            return
        self._told_over.discard(row.id)
        async with self._sessions() as session:
            upcoming = await occurrence_store.next_after(session, row.id, now)
        if upcoming is None:
            await self.end(row.id, by="its schedule")
            return
        await self._close_occurrence(row.id, now)

    async def _close_occurrence(self, meeting_id: str, now: datetime) -> None:
        """One occurrence of a repeating meeting is over: it waits for the next, chat kept."""
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.status != "in_progress":
                return
            if row.server_name:
                await self._cluster.close_meeting(
                    row.id, row.server_name, "this occurrence is over"
                )
            self._cluster.unbook(row.id)
            row.status = "scheduled"
            row.server_name = None
            await store.close_occurrence(session, row, now)
            await session.commit()
            self.forget(meeting_id)
        log.info("meeting %s: occurrence over, waiting for the next", meeting_id)

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
            raise NotRecorded(
                "nothing is recorded: this meeting has not started, or its room server"
                " may not record (recording_allowed)"
            )
        return row, segments

    async def occurrences_of(
        self, meeting_id: str, after: datetime | None = None, limit: int = 50
    ) -> tuple[MeetingRow, list[OccurrenceRow]]:
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            return row, await occurrence_store.of_meeting(
                session, meeting_id, after=after, limit=limit
            )

    async def calendar(
        self,
        range_from: datetime,
        range_to: datetime,
        q: str | None = None,
        reader: Reader = Reader(),
        *,
        limit: int = 2000,
        after: tuple[datetime, str] | None = None,
    ) -> list[CalendarEntry]:
        """Listed meetings' occurrences that overlap the range, by start (a page of them)."""
        if range_to <= range_from:
            raise InvalidQuery("to", "must lie after from")
        if range_to - range_from > MAX_CALENDAR_RANGE:
            raise InvalidQuery("to", "a calendar range is at most 62 days")
        async with self._sessions() as session:
            return await occurrence_store.in_range(
                session, range_from, range_to, q=q, reader=reader, limit=limit, after=after
            )

    async def calendar_page(
        self,
        days: list[tuple[datetime, datetime]],
        range_from: datetime,
        range_to: datetime,
        *,
        q: str | None = None,
        reader: Reader = Reader(),
        sort: SortKey = "start",
        order: Literal["asc", "desc"] = "asc",
        offset: int = 0,
        limit: int = 25,
    ) -> CalendarPage:
        """The calendar page's counts per day and one page of its list."""
        async with self._sessions() as session:
            return await occurrence_store.calendar_page(
                session,
                days,
                range_from,
                range_to,
                q=q,
                reader=reader,
                sort=sort,
                order=order,
                offset=offset,
                limit=limit,
            )

    async def exceptions(self, meeting_id: str) -> list[MeetingExceptionRow]:
        async with self._sessions() as session:
            await self._get(session, meeting_id)
            return await occurrence_store.exceptions_of(session, meeting_id)

    async def set_exception(
        self,
        meeting_id: str,
        original_start: datetime,
        *,
        new_start: datetime | None = None,
        duration_minutes: int | None = None,
    ) -> MeetingRow:
        """Skip one occurrence of a repeating meeting (no new start), or move it."""
        original = original_start.astimezone(UTC)
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.recurrence is None:
                raise InvalidChange(
                    "original_start", "this meeting does not repeat: change its start instead"
                )
            if row.status == "ended":
                raise InvalidChange("original_start", "an ended meeting cannot be changed")
            if not is_occurrence(
                start=row.start_at,
                rule=row.recurrence,
                timezone=row.timezone,
                original_start=original,
            ):
                raise InvalidChange("original_start", "the repeat rule has no occurrence then")
            now = utcnow()
            if original + timedelta(minutes=row.duration_minutes) <= now:
                raise InvalidChange("original_start", "that occurrence is over")
            if new_start is not None and new_start < now - START_SLACK:
                raise InvalidChange("start", "the new start lies in the past")
            await occurrence_store.set_exception(
                session,
                meeting_id,
                original,
                skipped=new_start is None,
                new_start=None if new_start is None else new_start.astimezone(UTC),
                new_duration_minutes=duration_minutes,
            )
            await session.flush()
            await write_occurrences(session, row, now)
            await session.commit()
            return row

    async def remove_exception(self, meeting_id: str, original_start: datetime) -> MeetingRow:
        """The occurrence happens as the rule says again."""
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            found = await occurrence_store.remove_exception(
                session, meeting_id, original_start.astimezone(UTC)
            )
            if not found:
                raise InvalidChange(
                    "original_start", "that occurrence is neither skipped nor moved"
                )
            await session.flush()
            await write_occurrences(session, row, utcnow())
            await session.commit()
            return row

    async def calendar_entry(self, meeting_id: str) -> CalendarMeeting:
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            return self._calendar_meeting(
                row, await occurrence_store.exceptions_of(session, row.id)
            )

    async def moderated_by(
        self, name: str, visible: Callable[[MeetingRow], bool]
    ) -> list[CalendarMeeting]:
        """The meetings `name` moderates that have not ended and `visible` lets through, for
        a personal calendar feed."""
        async with self._sessions() as session:
            rows = [r for r in await store.moderated_by(session, name) if visible(r)]
            return [
                self._calendar_meeting(r, await occurrence_store.exceptions_of(session, r.id))
                for r in rows
            ]

    def _calendar_meeting(
        self, row: MeetingRow, exceptions: list[MeetingExceptionRow]
    ) -> CalendarMeeting:
        return CalendarMeeting(
            id=row.id,
            name=row.name,
            moderator=row.moderator,
            start=row.start_at,
            duration_minutes=row.duration_minutes,
            timezone=row.timezone,
            url=f"{self.public_url}/meetings/{row.id}",
            updated_at=row.updated_at,
            rule=row.recurrence,
            skipped=frozenset(e.original_start for e in exceptions if e.skipped),
            moved={
                e.original_start: (e.new_start, e.new_duration_minutes)
                for e in exceptions
                if e.new_start is not None
            },
            status=row.status,  # type: ignore[arg-type]
        )

    def test_targets(self, limit: int = 3) -> list[tuple[str, str]]:
        """Room servers the Test Meeting page tries a WebSocket to: (name, socket URL)."""
        servers = [
            s
            for s in self._cluster.registry.all()
            if s.state is ServerState.ONLINE and s.link is not None and self._cluster.answering(s)
        ]
        servers.sort(key=lambda s: (s.participants, s.name))
        return [(s.name, _socket_base(s.url) + "/test/ws") for s in servers[:limit]]

    async def find_by_name(self, name: str) -> MeetingRow | None:
        """The meeting of exactly this name (how unlisted meetings are found)."""
        async with self._sessions() as session:
            return await store.by_exact_name(session, name.strip())

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

    def old_token(self, meeting_id: str, token: str) -> JoinClaims:
        """The claims of a join token we signed for this meeting, expired at most
        REJOIN_WINDOW ago (how a meeting page that lost its room server asks back in);
        NotAllowed if it is not one."""
        try:
            return verify_join_token(
                self._key.public_key(), token, meeting_id=meeting_id, expired_for=REJOIN_WINDOW
            )
        except InvalidToken as exc:
            raise NotAllowed(str(exc)) from exc

    async def check_password(self, info: AttendInfo, password: str, address: str) -> None:
        """CannotAttend unless `password` is the meeting's; guesses are throttled per meeting
        and address (reserved before the check), and hashed off the event loop."""
        try:
            reservation = await self._throttle.reserve(
                [(f"meeting:{info.id}:{address}", self._password_failures)]
            )
        except TooMany as exc:
            raise CannotAttend(
                f"too many wrong passwords for this meeting from your address: wait "
                f"{exc.minutes} minute{'s' if exc.minutes != 1 else ''} and try again"
            ) from exc
        try:
            right = await off_loop(check_password, info.password_hash or "", password)
        except BaseException:
            await self._throttle.give_back(reservation)
            raise
        if not right:
            raise CannotAttend("wrong or missing meeting password")
        await self._throttle.give_back(reservation)  # the right password is no failed guess

    async def attend(self, info: AttendInfo, entrant: Entrant) -> AttendRedirect:
        """Start the meeting if it should run, then a signed redirect to its room server.

        Who enters, under which name and in which role, was decided before (admission.py):
        this signs what it was told; but a person a moderator removed, or a newcomer to a
        locked meeting, is refused here (NotAllowed) as on the room server (door.py).
        """
        if info.epoch > 0:  # opened before: its moderators may have locked or removed
            refused = await door.check(self._sessions, info.id, entrant.person, entrant.role)
            if refused:
                raise NotAllowed(refused)
        if info.status != "in_progress":
            info = await self._start_for_attendee(info.id)
        server = self._cluster.registry.get(info.server_name or "")
        if server is None or server.link is None or not self._cluster.answering(server):
            raise Unavailable(
                "the room server hosting this meeting is not reachable; try again shortly"
            )
        token = sign_join_token(
            self._key,
            meeting_id=info.id,
            user=entrant.name,
            role=entrant.role,
            epoch=info.epoch,
            ttl_seconds=self._ttl,
            person=entrant.person,
            proof=entrant.proof,
        )
        return AttendRedirect(
            url=f"{server.url}/meeting/{info.id}?token={token}",
            role=entrant.role,
            socket_url=_socket_base(server.url) + f"/meeting/{info.id}/ws?token={token}",
            token=token,
        )

    async def _start_for_attendee(self, meeting_id: str, now: datetime | None = None) -> AttendInfo:
        async with self._lock(meeting_id):
            async with self._sessions() as session:
                row = await self._get(session, meeting_id)
            if row.status == "ended":
                raise CannotAttend("this meeting has ended")
            if row.status == "scheduled":
                now = now or utcnow()
                async with self._sessions() as session:
                    happening = await occurrence_store.current(
                        session, row.id, now, self._early_join
                    )
                    upcoming = await occurrence_store.next_after(session, row.id, now)
                if happening is None:
                    if upcoming is not None:
                        raise NotYetOpen(upcoming.start_at)
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
                            session,
                            row,
                            row.server_name or "",
                            row.epoch,
                            previous_ended="",
                            allowed=self._cluster.recording_allowed(row.server_name or ""),
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
