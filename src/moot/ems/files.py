"""Files attached to meetings: checked, stored in the database, served, and told to rooms.

An upload is checked whole before anything is stored (`check_upload`, pure): its size, its
name and its type (moot.core.filetypes). A batch of files is stored in one transaction, with
the meeting's file count checked inside it, so a refused file leaves none of its batch.
A request holds one file in memory at a time: the files wait in the request's spooled
temporary files (on disk past 1 MiB), each is read to be checked, dropped, and read again
to be stored. Uploads to one meeting are stored in turn: on this node by a lock per
meeting, between nodes by the database (moot.ems.store.files.lock_meeting).

Inside a meeting, the room server's page lists the files with links to the EMS. A link
carries a capability, an EdDSA token the EMS signed for that meeting at that epoch, so an
attendee of a password-protected meeting downloads without signing in again, and a link
stops working when the meeting moves (its pages then get new links) or the token expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import UploadFile

from moot.core.filetypes import FileType, FileTypeRefused, check_type, clean_name, human_size
from moot.core.meeting_status import MeetingStatus
from moot.core.permissions import Action
from moot.ems.auth.identity import Identity, NotPermitted
from moot.ems.auth.service import AuthService
from moot.ems.cluster.needs import FilesPush
from moot.ems.errors import Code, DomainError, MeetingNotFound
from moot.ems.store import files as store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingFileRow, MeetingRow
from moot.infra.settings import EmsSettings
from moot.protocol.control import MeetingFile

CAPABILITY_AUDIENCE = "moot-files"
# How long a link in a meeting page works after the meeting's end (or after it was made,
# for a meeting that runs on): the page gets fresh links whenever its files change.
CAPABILITY_GRACE = timedelta(hours=24)
# A download reads this much of a file per query: memory per download stays small.
SLICE = 1024 * 1024
# Room for the form's other fields and the multipart framing in a request's size limit.
FORM_ALLOWANCE = 1024 * 1024


class FileRefused(DomainError):
    """A file that may not be attached; `field` names the form field, `status_code` the
    HTTP answer (413 too large, 415 a refused type, 422 otherwise)."""

    code = Code.FILE_REFUSED

    def __init__(self, message: str, *, status_code: int = 422, field: str = "files") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.field = field


class FileNotFound(DomainError):
    """The meeting has no file of this id."""

    code = Code.FILE_NOT_FOUND


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_bytes: int
    max_files: int
    allowed: frozenset[str]

    @classmethod
    def of(cls, settings: EmsSettings) -> FileLimits:
        return cls(
            max_bytes=settings.max_file_bytes,
            max_files=settings.max_files_per_meeting,
            allowed=settings.allowed_file_extensions(),
        )

    @property
    def request_bytes(self) -> int:
        """The most one request may carry: every file a meeting may have, and the form."""
        return max(1, self.max_files) * self.max_bytes + FORM_ALLOWANCE


@dataclass(frozen=True, slots=True)
class Upload:
    """A file that passed every check, ready to store. Its bytes are not kept here but
    in `source` (the request's temporary file), read again when it is stored."""

    name: str
    kind: FileType
    size: int
    sha256: str
    source: UploadFile | None = None

    async def read(self) -> bytes:
        """The file's bytes, as they were checked."""
        if self.source is None:
            raise ValueError(f"{self.name}: checked without its source")
        await self.source.seek(0)
        data = await self.source.read(self.size + 1)
        if len(data) != self.size:  # its temporary file changed under us: never store that
            raise ValueError(f"{self.name} changed after it was checked")
        return data


def check_upload(
    raw_name: str, data: bytes, limits: FileLimits, *, size: int | None = None
) -> Upload:
    """The file as it will be stored (without its bytes), or FileRefused saying what is
    wrong with it.

    `size`: the whole file's, when `data` holds only its beginning (an oversized upload)."""
    name = clean_name(raw_name)
    if not name:
        raise FileRefused("a file needs a name")
    size = max(len(data), size or 0)
    if size > limits.max_bytes:
        raise FileRefused(
            f"{name} is {human_size(size, up=True)}; a file may be at most "
            f"{human_size(limits.max_bytes)}",
            status_code=413,
        )
    if not data:
        raise FileRefused(f"{name} is empty")
    try:
        kind = check_type(name, data, limits.allowed)
    except FileTypeRefused as exc:
        raise FileRefused(str(exc), status_code=415) from exc
    return Upload(name=name, kind=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def chosen(items: Iterable[object]) -> list[UploadFile]:
    """The files of a form field; a file input left empty sends a part with no name."""
    return [i for i in items if isinstance(i, UploadFile) and (i.filename or i.size)]


async def read_uploads(files: Sequence[UploadFile], limits: FileLimits) -> list[Upload]:
    """Check every file of a form or request; FileRefused for the first that fails.

    One file at a time is in memory, and at most one byte past the limit of it: an
    oversized one is not read whole. The files stay open (the request closes them) and are
    read again when they are stored (`FileService.add`).
    """
    if len(files) > limits.max_files:
        raise FileRefused(f"at most {limits.max_files} files may be attached to a meeting")
    uploads = []
    for upload in files:
        await upload.seek(0)
        data = await upload.read(limits.max_bytes + 1)
        checked = check_upload(upload.filename or "", data, limits, size=upload.size)
        del data  # before the next file is read
        uploads.append(replace(checked, source=upload))
    return uploads


async def close_uploads(files: Iterable[object]) -> None:
    """Close a form's files (their temporary files) once the request is answered."""
    for item in files:
        if isinstance(item, UploadFile):
            await item.close()


class FileService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster: FilesPush,
        signing_key: Ed25519PrivateKey,
        public_url: str,
        limits: FileLimits,
    ) -> None:
        self._sessions = sessions
        self._cluster = cluster
        self._key = signing_key
        self.public_url = public_url
        self.limits = limits
        # A lock per meeting with uploads under way: this node stores them in turn, so
        # they queue here rather than each holding a connection while the database waits.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, meeting_id: str) -> asyncio.Lock:
        lock = self._locks.get(meeting_id)
        if lock is None:
            lock = self._locks[meeting_id] = asyncio.Lock()
        return lock

    def changed(self, meeting_id: str) -> None:
        """Tell the meeting's pages (if it runs) that its files changed."""
        self._cluster.files_changed(meeting_id)

    # -- change ----------------------------------------------------------

    async def add(
        self,
        meeting_id: str,
        uploads: list[Upload],
        by: str,
        *,
        leaving: int = 0,
        notify: bool = True,
    ) -> list[int]:
        """Store the files in one transaction, one file in memory at a time; their ids.

        `leaving`: files of the meeting the caller removes next, not counted against the
        limit. `notify=False`: the caller tells the meeting's pages (`changed`) once its
        whole change is saved."""
        if not uploads:
            return []
        lock = self._lock(meeting_id)
        async with lock, self._sessions() as session:
            meeting = await store.lock_meeting(session, meeting_id)
            if meeting is None:
                raise MeetingNotFound(meeting_id)
            if meeting.status == MeetingStatus.ENDED:
                raise FileRefused("an ended meeting cannot be changed", status_code=409)
            have = await store.count_files(session, meeting_id) - leaving
            if have + len(uploads) > self.limits.max_files:
                raise FileRefused(
                    f"a meeting has at most {self.limits.max_files} files; this one has "
                    f"{have} and {len(uploads)} more were chosen"
                )
            now = utcnow()
            ids = []
            for upload in uploads:
                data = await upload.read()
                ids.append(
                    await store.insert_file(
                        session,
                        meeting_id=meeting_id,
                        name=upload.name,
                        content_type=upload.kind.content_type,
                        data=data,
                        sha256=upload.sha256,
                        uploaded_by=by,
                        at=now,
                    )
                )
                del data  # before the next file is read
            await session.commit()
        if notify:
            self.changed(meeting_id)
        return ids

    async def remove(self, meeting_id: str, file_ids: Iterable[int], *, notify: bool = True) -> int:
        """Delete files of the meeting; how many it had of them."""
        async with self._sessions() as session:
            removed = await store.delete_files(session, meeting_id, file_ids)
            await session.commit()
        if removed and notify:
            self.changed(meeting_id)
        return removed

    # -- read ------------------------------------------------------------

    async def of_meeting(self, meeting_id: str) -> list[MeetingFileRow]:
        async with self._sessions() as session:
            return await store.files_of(session, meeting_id)

    async def get(self, meeting_id: str, file_id: int) -> MeetingFileRow:
        async with self._sessions() as session:
            row = await store.file_of(session, meeting_id, file_id)
        if row is None:
            raise FileNotFound(file_id)
        return row

    async def content(self, row: MeetingFileRow) -> AsyncIterator[bytes]:
        """The file's bytes, a slice per query, each with a connection of its own: a slow
        download holds no connection of the pool between two slices."""
        offset = 0
        while offset < row.size:
            async with self._sessions() as session:
                piece = await store.read_slice(session, row.id, offset, SLICE)
            if not piece:
                return  # deleted while it was being downloaded
            yield piece
            offset += len(piece)

    # -- links for the meeting's pages -------------------------------------

    def url(self, meeting_id: str, file_id: int) -> str:
        return f"{self.public_url}/api/v1/meetings/{meeting_id}/files/{file_id}"

    def capability(self, meeting: MeetingRow, epoch: int, now: float | None = None) -> str:
        """A token that opens the meeting's files, at this epoch, until a day after its end."""
        issued = time.time() if now is None else now
        until = max(issued, meeting.end_at.timestamp()) + CAPABILITY_GRACE.total_seconds()
        claims = {"aud": CAPABILITY_AUDIENCE, "mid": meeting.id, "epoch": epoch, "exp": int(until)}
        return jwt.encode(claims, self._key, algorithm="EdDSA")

    def opens(self, token: str, meeting: MeetingRow) -> bool:
        """Whether the capability opens this meeting's files now."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["EdDSA"],
                audience=CAPABILITY_AUDIENCE,
                options={"require": ["exp", "aud"]},
            )
        except jwt.InvalidTokenError:
            return False
        return claims.get("mid") == meeting.id and claims.get("epoch") == meeting.epoch

    async def links(self, meeting: MeetingRow, epoch: int) -> list[MeetingFile]:
        """The files as the meeting's pages list them (the cluster manager sends these)."""
        rows = await self.of_meeting(meeting.id)
        if not rows:
            return []
        key = self.capability(meeting, epoch)
        return [
            MeetingFile(
                id=r.id,
                name=r.name,
                size=r.size,
                content_type=r.content_type,
                url=f"{self.url(meeting.id, r.id)}?key={key}",
            )
            for r in rows
        ]


# -- who may download ---------------------------------------------------------


def may_download(auth: AuthService, identity: Identity, row: MeetingRow) -> None:
    """Those who may attend; for a meeting with a password, those who may change it (its
    moderator, administrators): everyone else proves the password from inside the meeting,
    whose page's links carry the capability instead."""
    auth.require_on(identity, Action.ATTEND, row)
    if (
        row.password_hash is not None
        and not auth.decide_on(identity, Action.CHANGE_ACCESS, row).allowed
    ):
        raise NotPermitted(
            "this meeting has a password: its files are open from inside the meeting",
            signed_in=identity.claims is not None,
        )


def download_allowed(auth: AuthService, identity: Identity, row: MeetingRow) -> bool:
    try:
        may_download(auth, identity, row)
    except NotPermitted:
        return False
    return True
