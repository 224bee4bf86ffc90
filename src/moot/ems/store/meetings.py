"""Queries on meetings and attendance. Functions take a session; callers commit."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import table

from moot.core.meeting_status import MeetingStatus
from moot.ems.errors import InvalidQuery
from moot.ems.store.models import (
    AttendanceRow,
    MeetingAccessRow,
    MeetingRow,
    OccurrenceRow,
    RecordingSegmentRow,
)

SortKey = Literal["start", "name", "moderator"]
StatusFilter = Literal["scheduled", "in_progress", "ended", "recorded"]

_SORT_COLUMNS: dict[str, InstrumentedAttribute[datetime] | InstrumentedAttribute[str]] = {
    "start": MeetingRow.start_at,
    "name": MeetingRow.name,
    "moderator": MeetingRow.moderator,
}


class BadCursor(InvalidQuery):
    """The cursor was not made by this query (or was tampered with)."""

    def __init__(self, message: str) -> None:
        super().__init__("cursor", message)


@dataclass(frozen=True, slots=True)
class Reader:
    """Whose list it is, as far as SQL must know to show only what they may open.

    `partition`: "*" for administrators (everything), else the reader's partition (None:
    none). `name` and `entries` (their name and groups, lower case) for a signed-in reader;
    None and empty for an anonymous one. The rules are moot.core.permissions' `browse`: a
    meeting of the reader's partition (or of none, for a reader without one) is seen unless
    restricted, or if its moderator is the reader, or if it names the reader or a group of
    theirs; a meeting of no partition is seen by readers of a partition only when it is not
    restricted (there they are visitors).
    """

    partition: str | None = "*"
    name: str | None = None
    entries: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Reader:
        return cls()

    @classmethod
    def shaped(cls, kind: str) -> Reader:
        """A reader of that kind: for a statement built once, its values bound later."""
        return {
            "all": cls(),
            "anonymous": cls(None),
            "member": cls(None, "-"),
            "member-of-partition": cls("-", "-"),
        }[kind]

    @property
    def kind(self) -> str:
        """The shape of the condition (what a cached statement depends on)."""
        if self.partition == "*":
            return "all"
        if self.name is None:
            return "anonymous"
        return "member" if self.partition is None else "member-of-partition"

    def parameters(self) -> dict[str, Any]:
        """The values of the condition's bound parameters (see where_visible)."""
        kind = self.kind
        if kind in ("all", "anonymous"):
            return {}
        values: dict[str, Any] = {
            "reader_name": (self.name or "").lower(),
            "reader_entries": sorted(self.entries),
        }
        if kind == "member-of-partition":
            values["reader_partition"] = self.partition
        return values


@dataclass(frozen=True, slots=True)
class MeetingQuery:
    q: str | None = None
    status: StatusFilter | None = None
    start_from: datetime | None = None
    start_to: datetime | None = None
    sort: SortKey = "start"
    order: Literal["asc", "desc"] = "asc"
    limit: int = 50
    cursor: str | None = None
    # Whose list it is: only what they may open is in it.
    reader: Reader = Reader()


def _encode_cursor(sort: str, order: str, value: datetime | str, meeting_id: str) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    payload = json.dumps([f"{sort}:{order}", raw, meeting_id]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, order: str) -> tuple[datetime | str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, raw, meeting_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(raw, str) or not isinstance(meeting_id, str):
            raise TypeError("cursor fields")
        value: datetime | str = datetime.fromisoformat(raw) if sort == "start" else raw
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("naive time in cursor")
    except (ValueError, TypeError) as exc:
        raise BadCursor("the cursor is not valid; start again without it") from exc
    if cursor_sort != f"{sort}:{order}":
        raise BadCursor("the cursor belongs to another sort or order; start again without it")
    return value, meeting_id


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The name or moderator search (docs/benchmarks.md, "Search"). Text of 3 characters or more
# is contained in the name or moderator, ignoring case: on PostgreSQL through the trigram
# indexes (migration 0010); on SQLite the FTS5 trigram table `meetings_search` (migration
# 0012) narrows the meetings to its candidates first, unless there are so many that walking
# the sort order finds a page sooner. Trigrams need 3 characters: 1 or 2 find the names and
# moderators that start with them, through B-trees on lower(name) and lower(moderator).
SEARCH_MIN_CONTAINS = 3
SEARCH_MAX_CANDIDATES = 5_000
_LAST_CHARACTER = "\U0010ffff"  # every text that starts with p sorts below p + this


async def search_condition(session: AsyncSession, q: str) -> ColumnElement[bool]:
    """The meetings whose name or moderator matches `q`, taken literally (see above)."""
    if "\x00" in q:  # in no name: PostgreSQL refuses it in text, FTS5 ends a phrase at it
        return false()
    sqlite = session.get_bind().dialect.name == "sqlite"
    if len(q) < SEARCH_MIN_CONTAINS:
        return await _starts_with(session, q, sqlite)
    matches = or_(
        MeetingRow.name.ilike(f"%{_escape_like(q)}%", escape="\\"),
        MeetingRow.moderator.ilike(f"%{_escape_like(q)}%", escape="\\"),
    )
    if not sqlite:
        return matches
    # A phrase of the FTS5 query language: only '"' is special inside one (doubled).
    phrase = '{name moderator} : "' + q.replace('"', '""') + '"'
    found: Select[Any] = (
        select(literal_column("meeting_id"))
        .select_from(table("meetings_search"))
        .where(text("meetings_search MATCH :phrase").bindparams(phrase=phrase))
    )
    if await _at_least(session, found, SEARCH_MAX_CANDIDATES):
        return matches
    # The trigram match folds case as LIKE does, and more: a superset, the ILIKE decides.
    # A CTE: a calendar statement that counts many days reads the FTS index once.
    candidates = found.cte("search_candidates")
    return and_(MeetingRow.id.in_(select(candidates.c.meeting_id)), matches)


async def _starts_with(session: AsyncSession, q: str, sqlite: bool) -> ColumnElement[bool]:
    lowered = func.lower(literal(q))
    columns = (func.lower(MeetingRow.name), func.lower(MeetingRow.moderator))
    if not sqlite:  # LIKE 'ab%' through the text_pattern_ops indexes
        pattern = func.lower(literal(_escape_like(q) + "%"))
        return or_(*(c.like(pattern) for c in columns))
    # A range of the B-tree: SQLite uses no index for LIKE on an expression.
    ranges = [and_(c >= lowered, c < lowered.concat(_LAST_CHARACTER)) for c in columns]
    candidates = select(MeetingRow.id).where(or_(*ranges))
    if await _at_least(session, candidates, SEARCH_MAX_CANDIDATES):
        # Common: walking the sort order finds a page sooner; LIKE keeps SQLite off the
        # indexes (its LIKE folds ASCII case as lower() does).
        prefix = _escape_like(q) + "%"
        return or_(*(c.like(prefix, escape="\\") for c in columns))
    return or_(*ranges)


async def _at_least(session: AsyncSession, found: Select[Any], count: int) -> bool:
    """Whether `found` has `count` rows or more (reading no more than that)."""
    counted = select(func.count()).select_from(found.limit(count).subquery())
    return (await session.scalar(counted) or 0) >= count


async def unlisted_named(session: AsyncSession, name: str, *, other_than: str = "") -> bool:
    found = await session.scalar(
        select(MeetingRow.id).where(
            MeetingRow.unlisted.is_(True), MeetingRow.name == name, MeetingRow.id != other_than
        )
    )
    return found is not None


async def by_exact_name(session: AsyncSession, name: str) -> MeetingRow | None:
    """The meeting someone typed the whole name of: an unlisted one first, else a listed one
    (the soonest that has not ended)."""
    rows = await session.scalars(
        select(MeetingRow)
        .where(MeetingRow.name == name)
        .order_by(
            MeetingRow.unlisted.desc(),
            (MeetingRow.status == MeetingStatus.ENDED),
            MeetingRow.start_at,
        )
        .limit(1)
    )
    return rows.first()


async def moderated_by(session: AsyncSession, name: str, limit: int = 500) -> list[MeetingRow]:
    rows = await session.scalars(
        select(MeetingRow)
        .where(func.lower(MeetingRow.moderator) == name.strip().lower())
        .where(MeetingRow.status != MeetingStatus.ENDED)
        .order_by(MeetingRow.start_at, MeetingRow.id)
        .limit(limit)
    )
    return list(rows)


_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


def where_visible(stmt: _Query, reader: Reader) -> _Query:
    """Only meetings the reader may see (Reader), with bound parameters where a statement is
    built once for many readers (reader.parameters() gives their values)."""
    kind = reader.kind
    if kind == "all":
        return stmt
    open_to_all = MeetingRow.restricted.is_(False)
    if kind == "anonymous":
        return stmt.where(MeetingRow.partition.is_(None), open_to_all)
    named = (
        select(MeetingAccessRow.meeting_id)
        .where(
            MeetingAccessRow.meeting_id == MeetingRow.id,
            MeetingAccessRow.entry.in_(bindparam("reader_entries", expanding=True)),
        )
        .exists()
    )
    theirs = or_(
        open_to_all,
        func.lower(MeetingRow.moderator) == bindparam("reader_name"),
        named,
    )
    if kind == "member":
        return stmt.where(MeetingRow.partition.is_(None), theirs)
    own = and_(MeetingRow.partition == bindparam("reader_partition"), theirs)
    return stmt.where(or_(own, and_(MeetingRow.partition.is_(None), open_to_all)))


async def set_access(session: AsyncSession, row: MeetingRow) -> None:
    """Write `restricted` and meeting_access from the meeting's `restricted_to`."""
    entries = sorted({e.strip().lower() for e in row.restricted_to if e.strip()})
    row.restricted = bool(entries)
    await session.execute(delete(MeetingAccessRow).where(MeetingAccessRow.meeting_id == row.id))
    session.add_all(MeetingAccessRow(meeting_id=row.id, entry=e) for e in entries)


def _filtered(query: MeetingQuery, matches: ColumnElement[bool] | None) -> Select[MeetingRow]:
    # Unlisted meetings are in no list and no search.
    stmt = where_visible(select(MeetingRow).where(MeetingRow.unlisted.is_(False)), query.reader)
    if matches is not None:
        stmt = stmt.where(matches)
    if query.status == "recorded":
        recorded = select(RecordingSegmentRow.id).where(
            RecordingSegmentRow.meeting_id == MeetingRow.id
        )
        stmt = stmt.where(MeetingRow.status == MeetingStatus.ENDED, recorded.exists())
    elif query.status is not None:
        stmt = stmt.where(MeetingRow.status == query.status)
    # A time range selects the meetings with an occurrence that overlaps it.
    if query.start_from is not None or query.start_to is not None:
        overlapping = select(OccurrenceRow.id).where(OccurrenceRow.meeting_id == MeetingRow.id)
        if query.start_from is not None:
            overlapping = overlapping.where(OccurrenceRow.end_at > query.start_from)
        if query.start_to is not None:
            overlapping = overlapping.where(OccurrenceRow.start_at < query.start_to)
        stmt = stmt.where(overlapping.exists())
    return stmt


async def list_meetings(
    session: AsyncSession, query: MeetingQuery
) -> tuple[list[MeetingRow], str | None]:
    """One page of meetings and the cursor of the next page (None at the end)."""
    column = _SORT_COLUMNS[query.sort]
    stmt = _filtered(query, await search_condition(session, query.q) if query.q else None)
    if query.cursor:
        value, last_id = _decode_cursor(query.cursor, query.sort, query.order)
        if query.order == "asc":
            stmt = stmt.where(or_(column > value, and_(column == value, MeetingRow.id > last_id)))
        else:
            stmt = stmt.where(or_(column < value, and_(column == value, MeetingRow.id < last_id)))
    if query.order == "asc":
        stmt = stmt.order_by(column.asc(), MeetingRow.id.asc())
    else:
        stmt = stmt.order_by(column.desc(), MeetingRow.id.desc())
    rows = list(
        (await session.scalars(stmt.limit(query.limit + 1), query.reader.parameters())).all()
    )
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        sort_value: datetime | str = (
            last.start_at if query.sort == "start" else getattr(last, query.sort)
        )
        next_cursor = _encode_cursor(query.sort, query.order, sort_value, last.id)
    return rows, next_cursor


async def get_meeting(session: AsyncSession, meeting_id: str) -> MeetingRow | None:
    return await session.get(MeetingRow, meeting_id)


async def meetings_in_progress(session: AsyncSession) -> list[MeetingRow]:
    stmt = select(MeetingRow).where(MeetingRow.status == MeetingStatus.IN_PROGRESS)
    return list((await session.scalars(stmt)).all())


async def scheduled_until_after(session: AsyncSession, now: datetime) -> list[MeetingRow]:
    """Scheduled meetings whose time is not over: the bookings to restore at start-up."""
    rows = await session.scalars(
        select(MeetingRow)
        .where(MeetingRow.status == MeetingStatus.SCHEDULED, MeetingRow.end_at > now)
        .order_by(MeetingRow.start_at, MeetingRow.id)
    )
    return list(rows)


async def unbooked_scheduled(session: AsyncSession, now: datetime) -> list[MeetingRow]:
    """Scheduled meetings ahead that are booked on no server."""
    rows = await session.scalars(
        select(MeetingRow)
        .where(
            MeetingRow.status == MeetingStatus.SCHEDULED,
            MeetingRow.end_at > now,
            MeetingRow.booked_server.is_(None),
            MeetingRow.instant.is_(False),
        )
        .order_by(MeetingRow.start_at, MeetingRow.id)
    )
    return list(rows)


async def booked_on(session: AsyncSession, server_name: str) -> list[MeetingRow]:
    """Scheduled meetings booked on a server."""
    rows = await session.scalars(
        select(MeetingRow)
        .where(
            MeetingRow.status == MeetingStatus.SCHEDULED, MeetingRow.booked_server == server_name
        )
        .order_by(MeetingRow.start_at, MeetingRow.id)
    )
    return list(rows)


async def meetings_on_server(session: AsyncSession, server_name: str) -> list[MeetingRow]:
    stmt = select(MeetingRow).where(
        MeetingRow.server_name == server_name, MeetingRow.status == MeetingStatus.IN_PROGRESS
    )
    return list((await session.scalars(stmt)).all())


async def attendance_of(session: AsyncSession, meeting_id: str) -> list[AttendanceRow]:
    stmt = (
        select(AttendanceRow)
        .where(AttendanceRow.meeting_id == meeting_id)
        .order_by(AttendanceRow.joined_at, AttendanceRow.id)
    )
    return list((await session.scalars(stmt)).all())


async def record_join(
    session: AsyncSession,
    *,
    meeting_id: str,
    user: str,
    role: str,
    server: str,
    epoch: int,
    at: datetime,
) -> None:
    session.add(
        AttendanceRow(
            meeting_id=meeting_id,
            user_name=user,
            role=role,
            server_name=server,
            epoch=epoch,
            joined_at=at,
        )
    )


async def record_leave(session: AsyncSession, *, meeting_id: str, user: str, at: datetime) -> None:
    """Close the user's open stay in the meeting (the latest one)."""
    stmt = (
        select(AttendanceRow)
        .where(
            AttendanceRow.meeting_id == meeting_id,
            AttendanceRow.user_name == user,
            AttendanceRow.left_at.is_(None),
        )
        .order_by(AttendanceRow.joined_at.desc())
        .limit(1)
    )
    row = (await session.scalars(stmt)).first()
    if row is not None:
        row.left_at = at


async def close_attendance(session: AsyncSession, meeting_id: str, at: datetime) -> None:
    """Everyone still in the meeting leaves at `at` (its occurrence is over, or it ended)."""
    await session.execute(
        update(AttendanceRow)
        .where(AttendanceRow.meeting_id == meeting_id, AttendanceRow.left_at.is_(None))
        .values(left_at=at)
    )
