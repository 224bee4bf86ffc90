"""Files attached to meetings: their rows, and their bytes read in slices.

Lists and checks read every column but `data` (deferred in the model); the bytes are
written with a Core insert, so no ORM object keeps them in memory after the flush, and
read back a slice at a time, so a download of a large file never holds the whole of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import LargeBinary, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import MeetingFileRow, MeetingRow

__all__ = [
    "MeetingFileRow",
    "count_files",
    "delete_files",
    "file_of",
    "files_of",
    "insert_file",
    "lock_meeting",
    "read_slice",
]


async def files_of(session: AsyncSession, meeting_id: str) -> list[MeetingFileRow]:
    """The meeting's files in the order they were attached, without their bytes."""
    return list(
        await session.scalars(
            select(MeetingFileRow)
            .where(MeetingFileRow.meeting_id == meeting_id)
            .order_by(MeetingFileRow.id)
        )
    )


async def file_of(session: AsyncSession, meeting_id: str, file_id: int) -> MeetingFileRow | None:
    """One file of the meeting (without its bytes); None if it has no such file."""
    row: MeetingFileRow | None = await session.scalar(
        select(MeetingFileRow).where(
            MeetingFileRow.id == file_id, MeetingFileRow.meeting_id == meeting_id
        )
    )
    return row


async def count_files(session: AsyncSession, meeting_id: str) -> int:
    counted = await session.scalar(
        select(func.count())
        .select_from(MeetingFileRow)
        .where(MeetingFileRow.meeting_id == meeting_id)
    )
    return int(counted or 0)


async def lock_meeting(session: AsyncSession, meeting_id: str) -> MeetingRow | None:
    """The meeting, locked until commit: concurrent uploads (from any EMS node) count its
    files in turn. Call it first in its transaction.

    PostgreSQL locks the meeting's row (FOR UPDATE). SQLite ignores FOR UPDATE, and its
    driver would begin the transaction only at the first INSERT, after the count: there
    the transaction begins IMMEDIATE instead, taking the database's write lock now (a
    second writer waits for it, up to the busy timeout).
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("BEGIN IMMEDIATE"))
    row: MeetingRow | None = await session.scalar(
        select(MeetingRow).where(MeetingRow.id == meeting_id).with_for_update()
    )
    return row


async def insert_file(
    session: AsyncSession,
    *,
    meeting_id: str,
    name: str,
    content_type: str,
    data: bytes,
    sha256: str,
    uploaded_by: str,
    at: datetime,
) -> int:
    """Store one file in the session's transaction; its new id."""
    new_id = await session.scalar(
        insert(MeetingFileRow)
        .values(
            meeting_id=meeting_id,
            name=name,
            content_type=content_type,
            size=len(data),
            sha256=sha256,
            uploaded_by=uploaded_by,
            uploaded_at=at,
            data=data,
        )
        .returning(MeetingFileRow.id)
    )
    assert new_id is not None
    return int(new_id)


async def read_slice(session: AsyncSession, file_id: int, offset: int, length: int) -> bytes | None:
    """`length` bytes of a file from `offset` (0-based); None if the file is gone."""
    piece = await session.scalar(
        select(func.substr(MeetingFileRow.data, offset + 1, length, type_=LargeBinary)).where(
            MeetingFileRow.id == file_id
        )
    )
    return None if piece is None else bytes(piece)


async def delete_files(session: AsyncSession, meeting_id: str, file_ids: Iterable[int]) -> int:
    """Delete files of the meeting; how many there were."""
    ids = list(file_ids)
    if not ids:
        return 0
    result = await session.execute(
        delete(MeetingFileRow).where(
            MeetingFileRow.meeting_id == meeting_id, MeetingFileRow.id.in_(ids)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
