"""/api/v1/meetings/{id}/files: the presentations and documents attached to a meeting.

Attaching and removing need the right to change the meeting; downloading, the right to
attend it (for a meeting with a password: the right to change its password), or a link from
inside the meeting (its capability, the proof that its holder got in). Downloads are served so
that no file can run script in the Meeting Center's origin (moot.core.filetypes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from moot.core.filetypes import content_disposition, extension_of, type_of
from moot.core.permissions import Action
from moot.ems.api.meetings import CROSS_ORIGIN, cross_origin
from moot.ems.attending import NotAllowed
from moot.ems.deps import AdmissionDep, AuthDep, FilesDep, IdentityDep, MeetingsDep
from moot.ems.errors import MeetingNotFound
from moot.ems.files import FileRefused, FileService, may_download, read_uploads
from moot.ems.store.models import MeetingFileRow

router = APIRouter(prefix="/api/v1/meetings", tags=["files"])

# A served file is a document of its own: no script, no plug-in, no form, nothing loaded.
SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
FileId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class FileOut(BaseModel):
    id: int
    name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    url: str


class FileList(BaseModel):
    items: list[FileOut]


def file_out(files: FileService, row: MeetingFileRow) -> FileOut:
    return FileOut(
        id=row.id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        url=files.url(row.meeting_id, row.id),
    )


_REFUSALS: dict[int | str, dict[str, str]] = {
    401: {"description": "Sign in first."},
    403: {"description": "Not allowed."},
    404: {"description": "No such meeting or file."},
}
# What either way of attaching files may answer besides who may not.
_UPLOAD_REFUSALS: dict[int | str, dict[str, str]] = {
    409: {"description": "The meeting has ended."},
    413: {"description": "A file is larger than max_file_bytes."},
    415: {"description": "A file's type may not be attached, or its content is not."},
    422: {"description": "Too many files, an empty file or no file."},
}
Uploads = Annotated[list[UploadFile], File(description="One or more files (repeat the field).")]


async def attach(
    files: FileService, meeting_id: str, uploaded: list[UploadFile], by: str
) -> FileList:
    """Check the uploads against the limits and attach them all (FileRefused: none); the
    files added, as listed."""
    uploads = await read_uploads(uploaded, files.limits)
    ids = set(await files.add(meeting_id, uploads, by))
    return FileList(
        items=[file_out(files, r) for r in await files.of_meeting(meeting_id) if r.id in ids]
    )


@router.get("/{meeting_id}/files", response_model=FileList, responses=_REFUSALS)
async def list_files(
    meeting_id: str, meetings: MeetingsDep, files: FilesDep, identity: IdentityDep, auth: AuthDep
) -> FileList:
    """The meeting's files, in the order they were attached (who may see the meeting)."""
    auth.require_on(identity, Action.BROWSE, await meetings.get(meeting_id))
    return FileList(items=[file_out(files, r) for r in await files.of_meeting(meeting_id)])


@router.post(
    "/{meeting_id}/files",
    status_code=status.HTTP_201_CREATED,
    response_model=FileList,
    responses={**_REFUSALS, **_UPLOAD_REFUSALS},
)
async def upload_files(
    meeting_id: str,
    file: Uploads,
    meetings: MeetingsDep,
    files: FilesDep,
    identity: IdentityDep,
    auth: AuthDep,
) -> FileList:
    """Attach files (multipart/form-data, field `file`): all of them, or none if one is
    refused. A running meeting's pages list them at once."""
    auth.require_on(identity, Action.MODIFY, await meetings.get(meeting_id))
    return await attach(files, meeting_id, file, identity.name)


@router.options("/{meeting_id}/files/from-meeting", include_in_schema=False)
async def upload_from_meeting_preflight(meeting_id: str) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=CROSS_ORIGIN)


@router.post(
    "/{meeting_id}/files/from-meeting",
    status_code=status.HTTP_201_CREATED,
    response_model=FileList,
    responses={
        403: {"description": "Not a moderator or presenter of the running meeting now."},
        404: {"description": "No such meeting."},
        **_UPLOAD_REFUSALS,
    },
)
async def upload_from_meeting(
    meeting_id: str,
    token: Annotated[str, Form(max_length=4000, description="The meeting page's join token.")],
    file: Uploads,
    admission: AdmissionDep,
    files: FilesDep,
) -> JSONResponse:
    """Attach files from inside the running meeting (multipart/form-data: `token`, `file`):
    the meeting page of a moderator or presenter sends them, from the room server's origin.
    The token says who the person is; their role now is decided here (a moderator, or a
    presenter or moderator by a grant in the meeting). Every page of the meeting lists the
    new files at once; a PDF can then be presented."""
    # Answered here, errors included: the page must read them across origins.
    try:
        entrant = await admission.on_stage(meeting_id, token)
        added = await attach(files, meeting_id, file, entrant.name)
    except MeetingNotFound:
        return cross_origin(404, f"meeting {meeting_id} not found")
    except NotAllowed as exc:
        return cross_origin(403, str(exc))
    except FileRefused as exc:
        return cross_origin(exc.status_code, str(exc))
    return JSONResponse(
        added.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers=CROSS_ORIGIN,
    )


@router.get(
    "/{meeting_id}/files/{file_id}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        304: {"description": "Not modified (If-None-Match)."},
        **_REFUSALS,
    },
)
async def download_file(
    request: Request,
    meeting_id: str,
    file_id: FileId,
    meetings: MeetingsDep,
    files: FilesDep,
    identity: IdentityDep,
    auth: AuthDep,
    key: Annotated[
        str | None, Query(max_length=2000, description="The capability of a meeting page.")
    ] = None,
) -> Response:
    """The file's bytes, as an attachment (pictures inline), never as a live document."""
    meeting = await meetings.get(meeting_id)
    by_key = bool(key and files.opens(key, meeting))
    if not by_key:
        may_download(auth, identity, meeting)
    row = await files.get(meeting_id, file_id)
    kind = type_of(extension_of(row.name))
    inline = kind is not None and kind.inline and kind.content_type == row.content_type
    headers = {
        "Content-Disposition": content_disposition(row.name, inline=inline),
        "Content-Security-Policy": SANDBOX,
        "ETag": f'"{row.sha256}"',
        "Cache-Control": "private, max-age=300",
    }
    if by_key:
        # The meeting page (the room server's origin) reads a presentation with pdf.js: the
        # key is the permission, and a read without cookies gets nothing the key did not.
        headers["Access-Control-Allow-Origin"] = "*"
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    headers["Content-Length"] = str(row.size)
    return StreamingResponse(files.content(row), media_type=row.content_type, headers=headers)


@router.delete(
    "/{meeting_id}/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_REFUSALS
)
async def delete_file(
    meeting_id: str,
    file_id: FileId,
    meetings: MeetingsDep,
    files: FilesDep,
    identity: IdentityDep,
    auth: AuthDep,
) -> Response:
    """Remove a file: who may change the meeting. A running meeting's pages drop it at once."""
    auth.require_on(identity, Action.MODIFY, await meetings.get(meeting_id))
    await files.get(meeting_id, file_id)  # 404 if it has no such file
    await files.remove(meeting_id, [file_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
