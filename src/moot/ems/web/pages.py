"""The Meeting Center's pages: the home page, the new-meeting form, attend."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from moot.ems import moderator_keys
from moot.ems.admission import Visitor
from moot.ems.api.files import FilesDep, download_allowed
from moot.ems.api.meetings import allowed, needs_moderator_key, recording_out
from moot.ems.api.schemas import MeetingCreate, MeetingPatch
from moot.ems.auth.service import NotPermitted, SignInFailed
from moot.ems.deps import (
    SESSION_COOKIE,
    AdmissionDep,
    AuthDep,
    FeedsDep,
    IdentityDep,
    MeetingsDep,
    ServersDep,
    client_address,
)
from moot.ems.errors import InvalidChange
from moot.ems.files import (
    FileRefused,
    FileService,
    Upload,
    chosen,
    close_uploads,
    read_uploads,
)
from moot.ems.filetypes import human_size
from moot.ems.ical import feed_calendar, meeting_calendar
from moot.ems.meetings import (
    AttendInfo,
    CannotAttend,
    MeetingNotFound,
    NotAllowed,
    NotRecorded,
    NotYetOpen,
    Unavailable,
    changes_access,
)
from moot.ems.store.meetings import MeetingQuery
from moot.ems.store.models import MeetingFileRow, MeetingRow
from moot.ems.web.meeting_form import (
    COMMON_ZONES,
    TOOL_LABELS,
    FormValues,
    form_of,
    new_form,
    payload_of,
    read_form,
)
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates
from moot.permissions import Action
from moot.text import sentence

router = APIRouter(include_in_schema=False)

NAME_COOKIE = "moot_name"
# A browser's own id: two tabs of one browser are one person; another browser, another.
GUEST_COOKIE = "moot_guest"
MAX_NAME = 200


async def _home_lists(
    meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> dict[str, Any]:
    """The home page's lists, as far as the reader may browse; and whether they may create."""
    may_browse = auth.decide(identity, Action.BROWSE).allowed
    may_create = auth.decide(identity, Action.CREATE).allowed
    if not may_browse:
        return {
            "in_progress": [],
            "scheduled": [],
            "recorded": [],
            "may_browse": False,
            "may_create": may_create,
        }
    reader = auth.reader_of(identity)
    in_progress, _ = await meetings.list(
        MeetingQuery(status="in_progress", limit=100, reader=reader)
    )
    scheduled, _ = await meetings.list(
        MeetingQuery(status="scheduled", start_from=datetime.now(UTC), limit=100, reader=reader)
    )
    recorded, _ = await meetings.list(
        MeetingQuery(status="recorded", sort="start", order="desc", limit=20, reader=reader)
    )
    return {
        "in_progress": in_progress,
        "scheduled": scheduled,
        "recorded": recorded,
        "may_browse": True,
        "may_create": may_create,
    }


def _new_form(identity: IdentityDep) -> FormValues:
    form = new_form()
    if identity.claims is not None:
        form.moderator = identity.claims.username  # the signed-in user moderates by default
    return form


def _form_context(
    form: FormValues,
    errors: dict[str, str],
    locations: list[str],
    files: FileService,
    *,
    attached: list[MeetingFileRow] | None = None,
    chosen_names: list[str] | None = None,
) -> dict[str, Any]:
    limits = files.limits
    kinds = sorted(limits.allowed)
    return {
        "form": form,
        "errors": errors,
        "tools": TOOL_LABELS,
        "zones": COMMON_ZONES,
        "locations": locations,
        # The Files tab: what may be attached, what is, what must be chosen again.
        "file_limits": {
            "max_files": limits.max_files,
            "max_size": human_size(limits.max_bytes),
            "kinds": ", ".join(kinds),
            "accept": ",".join(f".{k}" for k in kinds),
        },
        "attached": [(f, human_size(f.size)) for f in attached or []],
        "chosen_names": chosen_names or [],
    }


async def _uploads_of(
    posted: Any, files: FileService, errors: dict[str, str]
) -> tuple[list[Upload], list[str]]:
    """The files chosen in the form, checked; a refusal goes beside the Files field."""
    picked = chosen(posted.getlist("files"))
    names = [p.filename or "" for p in picked]
    try:
        return await read_uploads(picked, files.limits), names
    except FileRefused as exc:
        errors["files"] = str(exc)
        return [], names


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    meetings: MeetingsDep,
    servers: ServersDep,
    files: FilesDep,
    auth: AuthDep,
    identity: IdentityDep,
    created: str | None = None,
) -> HTMLResponse:
    context = await _home_lists(meetings, auth, identity)
    created_meeting, moderator_url = None, None
    if created:
        try:
            row = await meetings.get(created)
        except MeetingNotFound:
            row = None
        # Only to whoever may see it (its creator holds its key, or moderates it).
        if row is not None and auth.decide_on(identity, Action.BROWSE, row).allowed:
            created_meeting = row
            key = request.cookies.get(moderator_keys.cookie_name(row.id), "")
            if moderator_keys.opens(key, row.moderator_key_hash):
                moderator_url = f"{meetings.join_url(row.id)}?key={key}"
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            **context,
            **_form_context(_new_form(identity), {}, await servers.locations(), files),
            "created": created_meeting,
            "moderator_url": moderator_url,
        },
    )


# The form asks for hours and minutes, not the API's minutes: its own words for the limits.
_FORM_WORDS = {
    ("duration_minutes", "greater_than_equal"): "a meeting lasts at least 1 minute",
    ("duration_minutes", "less_than_equal"): "a meeting lasts at most 24 hours",
    ("expected_participants", "greater_than_equal"): "at least 1 participant",
    ("expected_participants", "less_than_equal"): "at most 100,000 participants",
    ("expected_participants", "int_parsing"): "give the number of participants as a whole number",
}


def _errors_of(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "form"
        text = error["msg"].removeprefix("Value error, ")
        if where == "form" and "location_required" in text:
            where, text = (
                "location",
                "choose a location, or let it be preferred rather than required",
            )
        errors.setdefault(where, _FORM_WORDS.get((where, error["type"]), text))
    return errors


@router.post(
    "/meetings/new",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def create_from_form(
    request: Request,
    meetings: MeetingsDep,
    servers: ServersDep,
    files: FilesDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> Response:
    """The new-meeting form; errors come back beside their fields, nothing is saved.

    The meeting and its files are saved together or not at all: every file is checked
    before the meeting is created, and if storing them fails the meeting is deleted again.
    """
    auth.require(identity, Action.CREATE)
    unavailable = False
    posted = await request.form()
    try:
        form = read_form(posted, posted.getlist)
        errors: dict[str, str] = {}
        uploads, names = await _uploads_of(posted, files, errors)
        try:
            partition = identity.claims.partition if identity.claims else None
            payload = payload_of(form)
            password = str(posted.get("password", ""))
            if password:
                payload["password"] = password
            data = MeetingCreate.model_validate(payload)
            if not errors:
                key = moderator_keys.new_key() if needs_moderator_key(identity) else None
                row = await meetings.create(
                    data,
                    partition=partition,
                    moderator_key_hash=moderator_keys.key_hash(key) if key else None,
                )
                await _attach_or_undo(meetings, files, row, uploads, identity.name)
                done = RedirectResponse(f"/?created={row.id}", status_code=303)
                if key:  # the creator's browser moderates it; the page shows the link
                    _keep_key(done, request, row.id, key)
                return done
        except ValidationError as exc:
            errors = {**_errors_of(exc), **errors}
        except InvalidChange as exc:
            errors[exc.field] = str(exc)
        except FileRefused as exc:
            errors["files"] = str(exc)
        except Unavailable as exc:
            errors["form"] = str(exc)
            unavailable = True
        context = await _home_lists(meetings, auth, identity)
        locations = await servers.locations()
        return templates.TemplateResponse(
            request,
            "home.html",
            {
                **context,
                **_form_context(form, errors, locations, files, chosen_names=names),
                "created": None,
            },
            status_code=503 if unavailable else 422,
        )

    finally:  # the files' temporary files
        await close_uploads(posted.getlist("files"))


async def _attach_or_undo(
    meetings: MeetingsDep, files: FileService, row: MeetingRow, uploads: list[Upload], by: str
) -> None:
    """Store a new meeting's files; if that fails, the meeting goes too (nothing half)."""
    try:
        await files.add(row.id, uploads, by)
    except BaseException:
        await meetings.delete(row.id)
        raise


@router.get("/test", response_class=HTMLResponse)
async def test_meeting(request: Request, meetings: MeetingsDep) -> HTMLResponse:
    """Test Meeting: can this browser reach a room server, use its camera and microphone?"""
    return templates.TemplateResponse(request, "test.html", {"targets": meetings.test_targets()})


@router.get("/meetings/{meeting_id}.ics", response_model=None)
async def meeting_ics(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> Response:
    """The meeting for a calendar: its occurrences, skipped and moved ones included."""
    try:
        allowed(auth, identity, Action.BROWSE, await meetings.get(meeting_id))
        entry = await meetings.calendar_entry(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return Response(
        meeting_calendar(entry),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{meeting_id}.ics"'},
    )


@router.get("/calendar/{person}.ics", response_model=None)
async def personal_feed(
    request: Request, person: str, feeds: FeedsDep, auth: AuthDep, identity: IdentityDep
) -> Response:
    """One's own calendar feed, signed in: the meetings one moderates (calendar programs,
    which cannot sign in, use the secret address of /calendar/feeds/{token}.ics)."""
    person = unquote(person).strip()[:MAX_NAME]
    claims = identity.claims
    if claims is None or claims.username.casefold() != person.casefold():
        raise NotPermitted(
            "a calendar feed is its owner's: sign in as them, or use their secret feed address",
            signed_in=claims is not None,
        )
    entries = await feeds.meetings_of(identity.subject)
    return Response(
        feed_calendar(entries, name=f"Moot meetings of {claims.username}"),
        media_type="text/calendar; charset=utf-8",
    )


@router.get("/calendar/feeds/{token}.ics", response_model=None)
async def secret_feed(request: Request, token: str, feeds: FeedsDep) -> Response:
    """A person's calendar feed at its secret address (subscribe with webcal://)."""
    found = await feeds.at_address(token[:200])
    if found is None:
        return _message(
            request,
            "No such feed",
            "This calendar feed address opens nothing (any more): its owner may have made a "
            "new one, or stopped it.",
            404,
        )
    owner, entries = found
    return Response(
        feed_calendar(entries, name=f"Moot meetings of {owner}"),
        media_type="text/calendar; charset=utf-8",
    )


@router.post(
    "/attend-by-name",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def attend_by_name(
    request: Request,
    meetings: MeetingsDep,
    servers: ServersDep,
    files: FilesDep,
    auth: AuthDep,
    identity: IdentityDep,
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
) -> Response:
    """Unlisted meetings are attended by typing their whole name, exactly."""
    found = await meetings.find_by_name(name) if name.strip() else None
    if found is not None and auth.decide_on(identity, Action.ATTEND, found).allowed:
        return RedirectResponse(f"/m/{found.id}", status_code=303)
    context = await _home_lists(meetings, auth, identity)
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            **context,
            **_form_context(_new_form(identity), {}, await servers.locations(), files),
            "created": None,
            "by_name_error": f"No meeting is called \u201c{name.strip()}\u201d. "
            "Type its whole name, exactly as it was given to you.",
        },
        status_code=404,
    )


@router.get("/meetings/{meeting_id}", response_class=HTMLResponse)
async def details(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    files: FilesDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> HTMLResponse:
    """Everything about one meeting, with Attend, its link and its calendar file."""
    try:
        row, attendance = await meetings.get_with_attendance(meeting_id)
        allowed(auth, identity, Action.BROWSE, row)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return templates.TemplateResponse(
        request,
        "details.html",
        {
            "m": row,
            "attendance": attendance,
            "join_url": meetings.join_url(row.id),
            "tool_labels": dict(TOOL_LABELS),
            "may_modify": auth.decide_on(identity, Action.MODIFY, row).allowed,
            "may_delete": auth.decide_on(identity, Action.DELETE, row).allowed,
            "files": [(f, human_size(f.size)) for f in await files.of_meeting(row.id)],
            "may_download": download_allowed(auth, identity, row),
        },
    )


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
    try:
        row = await meetings.get(meeting_id)
        allowed(auth, identity, Action.MODIFY, row)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    if row.status == "ended":
        return _message(request, row.name, "This meeting has ended: it cannot be changed.", 409)
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
            "running": row.status == "in_progress",
            # Its moderator, password and restriction: the moderator's (shown, not editable).
            "may_change_access": may_change_access,
            **_form_context(
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
    try:
        row = await meetings.get(meeting_id)
        allowed(auth, identity, Action.MODIFY, row)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    may_change_access = auth.decide_on(identity, Action.CHANGE_ACCESS, row).allowed
    posted = await request.form()
    try:
        form = read_form(posted, posted.getlist)
        form.has_password = row.password_hash is not None
        running = row.status == "in_progress"
        errors: dict[str, str] = {}
        uploads, names = await _uploads_of(posted, files, errors)
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
            errors = {**_errors_of(exc), **errors}
        except InvalidChange as exc:
            errors[exc.field] = str(exc)
        except FileRefused as exc:
            errors["files"] = str(exc)
        except MeetingNotFound:
            return _message(request, "No such meeting", "There is no meeting at this address.", 404)
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


@router.get("/meetings/{meeting_id}/delete", response_class=HTMLResponse)
async def delete_confirm(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> HTMLResponse:
    try:
        row = await meetings.get(meeting_id)
        allowed(auth, identity, Action.DELETE, row)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return templates.TemplateResponse(request, "delete.html", {"m": row})


@router.post(
    "/meetings/{meeting_id}/delete", response_model=None, dependencies=[Depends(check_csrf)]
)
async def delete_from_form(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> Response:
    try:
        row = await meetings.get(meeting_id)
        allowed(auth, identity, Action.DELETE, row)
        await meetings.delete(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return RedirectResponse(f"/?deleted={quote(row.name)}", status_code=303)


@router.get("/m/{meeting_id}", response_class=HTMLResponse, response_model=None)
async def attend(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    admission: AdmissionDep,
    identity: IdentityDep,
    name: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
    key: Annotated[str | None, Query(max_length=200, description="a moderator link's key")] = None,
) -> Response:
    """Attend: ask who you are if we do not know, then send you to the room server. With
    `key` (the moderator link), this browser keeps the key and moderates the meeting."""
    return await _attend(request, meetings, admission, identity, meeting_id, name, None, key)


@router.post(
    "/m/{meeting_id}",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def attend_with_form(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    admission: AdmissionDep,
    identity: IdentityDep,
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """The attend form; a password travels in the body, never in an address."""
    return await _attend(request, meetings, admission, identity, meeting_id, name, password, None)


async def _attend(
    request: Request,
    meetings: MeetingsDep,
    admission: AdmissionDep,
    identity: IdentityDep,
    meeting_id: str,
    name: str | None,
    password: str | None,
    key: str | None,
) -> Response:
    try:
        meeting = await meetings.attend_info(meeting_id)
        if key is not None:
            if not moderator_keys.opens(key, meeting.moderator_key_hash):
                return _message(
                    request,
                    meeting.name,
                    "This moderator link is not (or no longer) the meeting's: ask whoever "
                    f"gave it to you for the new one, or attend without it at /m/{meeting_id}.",
                    403,
                )
            identity = replace(
                identity, moderator_keys=(*identity.moderator_keys, (meeting_id, key))
            )
        subject = admission.subject(identity, meeting)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    browser = request.cookies.get(GUEST_COOKIE, "")
    visitor = Visitor(identity, browser=browser or secrets.token_urlsafe(12))
    if visitor.signed_in and identity.claims is not None:
        name = identity.claims.username  # signed in: that is who attends
    user = (name or unquote(request.cookies.get(NAME_COOKIE, ""))).strip()[:MAX_NAME]
    needs_password = admission.needs_password(subject, meeting)
    response: Response
    if not user or (needs_password and password is None):
        response = _attend_form(request, meeting, user, None, 200, needs_password)
    else:
        response = await _admit(
            request, admission, meeting, replace(visitor, typed_name=user), password
        )
    if key is not None:  # this browser keeps the moderator key of the meeting
        _keep_key(response, request, meeting_id, key)
    if not browser:
        response.set_cookie(
            GUEST_COOKIE, visitor.browser, max_age=365 * 86400, httponly=True, samesite="lax"
        )
    return response


async def _admit(
    request: Request,
    admission: AdmissionDep,
    meeting: AttendInfo,
    visitor: Visitor,
    password: str | None,
) -> Response:
    try:
        target = await admission.admit(meeting, visitor, password, client_address(request))
    except NotYetOpen as exc:
        return templates.TemplateResponse(
            request,
            "lobby.html",
            {
                "meeting": meeting,
                "name": visitor.typed_name,
                "password": password,
                "opens_at": exc.opens_at,
            },
        )
    except CannotAttend as exc:
        if meeting.needs_password and "password" in str(exc):
            return _attend_form(request, meeting, visitor.typed_name, sentence(str(exc)), 403)
        # Not allowed: removed by a moderator, or the meeting is locked (ems/door.py).
        code = 403 if isinstance(exc, NotAllowed) else 409
        return _message(request, meeting.name, sentence(str(exc)), code)
    except Unavailable as exc:
        return _message(request, meeting.name, sentence(str(exc)), 503)
    response = RedirectResponse(target.url, status_code=303)
    response.set_cookie(NAME_COOKIE, quote(visitor.typed_name), max_age=365 * 86400, samesite="lax")
    return response


def _keep_key(response: Response, request: Request, meeting_id: str, key: str) -> None:
    """The browser keeps a meeting's moderator key in a cookie of its own (a year)."""
    response.set_cookie(
        moderator_keys.cookie_name(meeting_id),
        key,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


@router.get("/recordings/{meeting_id}", response_class=HTMLResponse)
async def recording(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> HTMLResponse:
    """Play a recording: every segment in order, whichever room servers recorded them."""
    try:
        allowed(auth, identity, Action.VIEW_RECORDING, await meetings.get(meeting_id))
        row, segments = await meetings.recording(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    except NotRecorded as exc:
        row = await meetings.get(meeting_id)
        return _message(request, row.name, sentence(str(exc)), 404)
    return templates.TemplateResponse(
        request, "recording.html", {"recording": recording_out(meetings, row, segments)}
    )


def _attend_form(
    request: Request,
    meeting: AttendInfo,
    name: str,
    error: str | None,
    status_code: int,
    needs_password: bool = True,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "attend.html",
        {
            "meeting": meeting,
            "name": name,
            "needs_password": needs_password and meeting.needs_password,
            "error": error,
        },
        status_code=status_code,
    )


def message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    return _message(request, title, sentence(text), status_code)


def _message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "text": text}, status_code=status_code
    )


def not_permitted(request: Request, reason: str, *, signed_in: bool) -> HTMLResponse:
    """A refusal page: sign in, or what an administrator must change."""
    return templates.TemplateResponse(
        request,
        "refused.html",
        {"reason": sentence(reason), "signed_in": signed_in, "next": request.url.path},
        status_code=403 if signed_in else 401,
    )


# -- sign in and out -----------------------------------------------------------


def _safe_next(target: str) -> str:
    """Only a path of this site: never a redirect elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(
        request, "signin.html", {"next": _safe_next(next), "username": "", "error": None}
    )


@router.post(
    "/signin",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def signin(
    request: Request,
    auth: AuthDep,
    username: Annotated[str, Form(max_length=MAX_NAME)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    try:
        token, claims = await auth.sign_in(username, password, client_address(request))
    except SignInFailed as exc:
        return templates.TemplateResponse(
            request,
            "signin.html",
            {"next": _safe_next(next), "username": username, "error": sentence(str(exc))},
            status_code=401,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, claims.expires_at - int(datetime.now(UTC).timestamp())),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout", response_model=None, dependencies=[Depends(check_csrf)])
async def signout(request: Request, auth: AuthDep, identity: IdentityDep) -> Response:
    if identity.claims is not None and identity.claims.jti:
        await auth.sign_out(identity.claims)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
