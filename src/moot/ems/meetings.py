"""Meeting logic: schedule, start, attend, end. Routes call this; it calls the store.

Starting a meeting is serialised per meeting (one EMS node in `direct`
mode), so two people arriving at once never open it on two servers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core.meeting_status import MeetingStatus
from moot.core.placement import ServerState
from moot.ems import moderator_keys
from moot.ems.attending import (
    AttendInfo,
    CannotAttend,
    NotRecorded,
    NotYetOpen,
    Unavailable,
    hash_password,
    socket_base,
)
from moot.ems.changes import BOOKING_FIELDS, new_meeting_id
from moot.ems.cluster.manager import CommandFailed, NoRoomServer, OpenedMeanwhile
from moot.ems.cluster.needs import Hosting
from moot.ems.errors import InvalidChange, MeetingNotFound
from moot.ems.hashing import off_loop
from moot.ems.model.meetings import MeetingCreate, MeetingPatch
from moot.ems.occurrences import repeat_rule, write_occurrences
from moot.ems.store import hosting
from moot.ems.store import meetings as store
from moot.ems.store import occurrences as occurrence_store
from moot.ems.store import recordings as recording_store
from moot.ems.store.change_feed import ChangeFeed
from moot.ems.store.db import utcnow
from moot.ems.store.models import AttendanceRow, MeetingRow, RecordingMediaRow
from moot.ems.store.outage import StoreOutage
from moot.ems.store.recording_media import media_file
from moot.ems.store.recordings import RecordedSegment

log = logging.getLogger("moot.ems.meetings")

# How far in the past a "scheduled" start may lie (clock skew, slow forms).
START_SLACK = timedelta(minutes=1)


class MeetingService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster: Hosting,
        public_url: str,
        early_join: timedelta,
        changes: ChangeFeed | None = None,
    ) -> None:
        self._sessions = self.sessions = sessions
        self._feed = changes
        self._cluster = cluster
        self.public_url = public_url
        self._early_join = early_join
        # Meetings whose moderator was told that their time is over (told once).
        self._told_over: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        # Running meetings by id: attending is the hot path (bench/attend.py).
        self._running: dict[str, AttendInfo] = {}
        self._changes = 0
        cluster.events.meeting_changed.subscribe(self.forget)
        if changes is not None:  # what other EMS nodes change drops this one's copy
            changes.on("meeting", self.forget_here)
            changes.on_missed(self.forget_all)

    def join_url(self, meeting_id: str) -> str:
        return f"{self.public_url}/m/{meeting_id}"

    def lock(self, meeting_id: str) -> asyncio.Lock:
        """Changes of one meeting, and its start, take turns."""
        return self._lock(meeting_id)

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
            recurrence=repeat_rule(data.recurrence, start, data.timezone, instant=instant),
            record=data.record,
            password_hash=await off_loop(hash_password, data.password) if data.password else None,
            tools=list(data.tools),
            status=MeetingStatus.SCHEDULED,
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
                await hosting.new_segment(
                    session, row, "", allowed=self._cluster.recording_allowed(row.server_name or "")
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
            if row.status == MeetingStatus.ENDED:
                raise InvalidChange("status", "an ended meeting cannot be changed")
            if (
                "record" in changes
                and row.status != MeetingStatus.SCHEDULED
                and changes["record"] != row.record
            ):
                # Everyone in it was told on entering whether it is recorded.
                raise InvalidChange(
                    "record", "whether a meeting is recorded is set before it starts"
                )
            timing = {"start", "duration_minutes", "recurrence", "timezone"} & changes.keys()
            if timing and row.status != MeetingStatus.SCHEDULED:
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
                row.recurrence = repeat_rule(rule, row.start_at, row.timezone, instant=False)
            if "password" in changes:
                password = changes["password"]
                row.password_hash = await off_loop(hash_password, password) if password else None
            row.end_at = row.start_at + timedelta(minutes=row.duration_minutes)
            if timing:
                await write_occurrences(session, row, utcnow())
            await session.commit()
            if row.status == MeetingStatus.SCHEDULED and BOOKING_FIELDS & changes.keys():
                self._cluster.book(row, utcnow())  # booked again for its new hours or size
            self.forget(meeting_id)
            if row.status == MeetingStatus.IN_PROGRESS and row.server_name:
                self._cluster.resize(row.server_name, row.id, row.expected_participants)
            return row

    async def delete(self, meeting_id: str) -> None:
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.status == MeetingStatus.IN_PROGRESS and row.server_name:
                await self._cluster.close_meeting(row.id, row.server_name, "deleted")
            self._cluster.unbook(row.id)
            await session.delete(row)
            await session.commit()
        self._locks.pop(meeting_id, None)
        self.forget(meeting_id)

    # -- the clock: meetings open at their start and end at their end --------

    async def run_clock(self, period: float) -> None:
        """Open meetings whose time has come; end (or let run on) those whose time is over."""
        outage = StoreOutage(log, "the meeting clock")
        while True:
            try:
                await self.tick(utcnow())
                outage.worked()
            except Exception as exc:  # the next tick tries again
                outage.failed(exc)
            await asyncio.sleep(period)

    async def tick(self, now: datetime) -> None:
        async with self._sessions() as session:
            due = await occurrence_store.due_to_open(session, now)
            over = await occurrence_store.running_past_their_end(session, now, self._early_join)
        for meeting_id in due:
            try:
                await self.start_for_attendee(meeting_id, now)
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
            if row.status != MeetingStatus.IN_PROGRESS:
                return
            if row.server_name:
                await self._cluster.close_meeting(
                    row.id, row.server_name, "this occurrence is over"
                )
            self._cluster.unbook(row.id)
            await hosting.occurrence_over(session, row, now)
            await session.commit()
            self.forget(meeting_id)
            self._cluster.events.moderated.emit(meeting_id)  # the door reads afresh
        log.info("meeting %s: occurrence over, waiting for the next", meeting_id)

    async def end(self, meeting_id: str, by: str = "the Meeting Center") -> MeetingRow:
        async with self._lock(meeting_id), self._sessions() as session:
            row = await self._get(session, meeting_id)
            if row.status == MeetingStatus.ENDED:
                return row
            if row.status == MeetingStatus.IN_PROGRESS and row.server_name:
                await self._cluster.close_meeting(row.id, row.server_name, f"ended by {by}")
            now = utcnow()
            self._cluster.unbook(row.id)
            await hosting.ended(session, row, now)
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

    async def recording_media(self, meeting_id: str, media_id: int) -> RecordingMediaRow:
        """One audio, video or screen file of the meeting's recording, bytes included."""
        async with self._sessions() as session:
            row = await self._get(session, meeting_id)
            found = await media_file(session, meeting_id, media_id) if row.record else None
        if found is None:
            raise NotRecorded("this recording has no such media file")
        return found

    def test_targets(self, limit: int = 3) -> list[tuple[str, str]]:
        """Room servers the Test Meeting page tries a WebSocket to: (name, socket URL)."""
        servers = [
            s
            for s in self._cluster.registry.all()
            if s.state is ServerState.ONLINE and s.link is not None and self._cluster.answering(s)
        ]
        servers.sort(key=lambda s: (s.participants, s.name))
        return [(s.name, socket_base(s.url) + "/test/ws") for s in servers[:limit]]

    async def find_by_name(self, name: str) -> MeetingRow | None:
        """The meeting of exactly this name (how unlisted meetings are found)."""
        async with self._sessions() as session:
            return await store.by_exact_name(session, name.strip())

    async def list(self, query: store.MeetingQuery) -> tuple[list[MeetingRow], str | None]:
        async with self._sessions() as session:
            return await store.list_meetings(session, query)

    @staticmethod
    async def get_in(session: AsyncSession, meeting_id: str) -> MeetingRow:
        """The meeting, read in `session`; MeetingNotFound if there is none."""
        return await MeetingService._get(session, meeting_id)

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
        if info.status == MeetingStatus.IN_PROGRESS and self._changes == changes_before:
            self._running[meeting_id] = info
        return info

    def forget(self, meeting_id: str) -> None:
        """Drop what is cached about a meeting (it ended, moved or changed), here and on
        the other EMS nodes."""
        self.forget_here(meeting_id)
        if self._feed is not None:
            self._feed.changed("meeting", meeting_id)

    def forget_here(self, meeting_id: str) -> None:
        """Drop what this node cached about a meeting (another node changed it)."""
        self._changes += 1
        self._running.pop(meeting_id, None)

    def forget_all(self) -> None:
        """Changes of other nodes may have gone unheard: every meeting is read again."""
        self._changes += 1
        self._running.clear()

    async def start_for_attendee(self, meeting_id: str, now: datetime | None = None) -> AttendInfo:
        async with self._lock(meeting_id):
            async with self._sessions() as session:
                row = await self._get(session, meeting_id)
            if row.status == MeetingStatus.ENDED:
                raise CannotAttend("this meeting has ended")
            if row.status == MeetingStatus.SCHEDULED:
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
                try:
                    await self._open(row, now)
                except OpenedMeanwhile as opened:  # by another EMS node, which stores it
                    hosting.mark_hosted(row, opened.server_name, opened.epoch, now)
                    return AttendInfo.of(row)
                async with self._sessions() as session:
                    started = await hosting.record_hosted(
                        session,
                        row,
                        was=MeetingStatus.SCHEDULED,
                        was_epoch=epoch_before,
                        previous_ended="",
                        recording_allowed=self._cluster.recording_allowed(row.server_name or ""),
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
        hosting.mark_hosted(row, server.name, epoch, now)
