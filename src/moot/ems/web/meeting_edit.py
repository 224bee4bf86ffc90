"""The meeting change form: /meetings/{id}/edit (its files checked and stored first)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from moot.core.meeting_status import MeetingStatus
from moot.core.permissions import Action
from moot.ems.attending import Unavailable
from moot.ems.changes import changes_access
from moot.ems.deps import (
    AuthDep,
    FilesDep,
    IdentityDep,
    MeetingsDep,
    ServersDep,
)
from moot.ems.errors import InvalidChange
from moot.ems.files import (
    FileRefused,
    FileService,
    Upload,
    close_uploads,
)
from moot.ems.model.meetings import MeetingPatch
from moot.ems.store.models import MeetingRow
from moot.ems.web.meeting_form import (
    FormValues,
    form_of,
    payload_of,
    read_form,
)
from moot.ems.web.pages import (
    errors_of,
    form_context,
    raw_message,
    uploads_of,
)
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/meetings/{meeting_id}/edit", response_class=HTMLResponse)
async def edit_form(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    servers: ServersDep,
    files: FilesDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> HTMLResponse:
    row = await meetings.get(meeting_id)
    auth.require_on(identity, Action.MODIFY, row)
    if row.status == MeetingStatus.ENDED:
        return raw_message(request, row.name, "This meeting has ended: it cannot be changed.", 409)
    may_change_access = auth.decide_on(identity, Action.CHANGE_ACCESS, row).allowed
    return await _edit_page(
        request,
        row,
        form_of(row),
        {},
        await servers.locations(),
        files,
        200,
        may_change_access=may_change_access,
    )


async def _edit_page(
    request: Request,
    row: MeetingRow,
    form: FormValues,
    errors: dict[str, str],
    locations: list[str],
    files: FileService,
    status_code: int,
    chosen_names: list[str] | None = None,
    *,
    may_change_access: bool,
) -> HTMLResponse:
    attached = await files.of_meeting(row.id)
    return templates.TemplateResponse(
        request,
        "edit.html",
        {
            "m": row,
            "running": row.status == MeetingStatus.IN_PROGRESS,
            # Its moderator, password and restriction: the moderator's (shown, not editable).
            "may_change_access": may_change_access,
            **form_context(
                form, errors, locations, files, attached=attached, chosen_names=chosen_names
            ),
        },
        status_code=status_code,
    )


@router.post(
    "/meetings/{meeting_id}/edit",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def edit_from_form(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    servers: ServersDep,
    files: FilesDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> Response:
    """The change form. Bad input saves nothing: the new files are checked first, stored
    before the meeting is changed, and removed again if the change fails in any way; the
    files to remove go, and a running meeting's pages hear of the files, only once the
    change is saved."""
    row = await meetings.get(meeting_id)
    auth.require_on(identity, Action.MODIFY, row)
    may_change_access = auth.decide_on(identity, Action.CHANGE_ACCESS, row).allowed
    posted = await request.form()
    try:
        form = read_form(posted, posted.getlist)
        form.has_password = row.password_hash is not None
        running = row.status == MeetingStatus.IN_PROGRESS
        errors: dict[str, str] = {}
        uploads, names = await uploads_of(posted, files, errors)
        attached = {f.id for f in await files.of_meeting(meeting_id)}
        removing = [i for i in _ids(posted.getlist("remove_file")) if i in attached]
        unavailable = False
        try:
            payload = payload_of(form, running=running)
            password = str(posted.get("password", ""))
            if password:
                payload["password"] = password
            elif "remove_password" in posted:
                payload["password"] = ""
            if not running and "recurrence" not in payload:
                payload["recurrence"] = None
            patch = MeetingPatch.model_validate(payload)
            if not may_change_access:
                for field in changes_access(row, patch.model_dump(exclude_unset=True)):
                    errors[field] = "only the moderator may change this"
            if not errors:
                await _change_with_files(
                    meetings, files, meeting_id, patch, uploads, removing, identity.name
                )
                return RedirectResponse(f"/meetings/{meeting_id}?changed=1", status_code=303)
        except ValidationError as exc:
            errors = {**errors_of(exc), **errors}
        except InvalidChange as exc:
            errors[exc.field] = str(exc)
        except FileRefused as exc:
            errors["files"] = str(exc)
        except Unavailable as exc:
            errors["form"] = str(exc)
            unavailable = True
        return await _edit_page(
            request,
            row,
            form,
            errors,
            await servers.locations(),
            files,
            503 if unavailable else 422,
            chosen_names=names,
            may_change_access=may_change_access,
        )
    finally:  # the files' temporary files
        await close_uploads(posted.getlist("files"))


async def _change_with_files(
    meetings: MeetingsDep,
    files: FileService,
    meeting_id: str,
    patch: MeetingPatch,
    uploads: list[Upload],
    removing: list[int],
    by: str,
) -> None:
    """Change the meeting and its files together: the new files are stored first (they are
    counted against the limit with the meeting locked) and removed again if the change
    fails for any reason; the pages inside a running meeting hear only of a saved change."""
    added = await files.add(meeting_id, uploads, by, leaving=len(removing), notify=False)
    try:
        await meetings.update(meeting_id, patch)
    except BaseException:
        if added:
            await files.remove(meeting_id, added, notify=False)
        raise
    removed = await files.remove(meeting_id, removing, notify=False)
    if added or removed:
        files.changed(meeting_id)


def _ids(values: list[Any]) -> list[int]:
    return [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) < 10]
