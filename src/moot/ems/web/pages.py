"""The Meeting Center's pages: the home page, the new-meeting form, attend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from moot.ems.api.meetings import recording_out
from moot.ems.api.schemas import MeetingCreate, MeetingPatch
from moot.ems.deps import MeetingsDep, ServersDep
from moot.ems.errors import InvalidChange
from moot.ems.ical import feed_calendar, meeting_calendar
from moot.ems.meetings import (
    AttendInfo,
    CannotAttend,
    MeetingNotFound,
    NotRecorded,
    NotYetOpen,
    Unavailable,
)
from moot.ems.store.meetings import MeetingQuery
from moot.ems.store.models import MeetingRow
from moot.ems.web.meeting_form import (
    COMMON_ZONES,
    TOOL_LABELS,
    FormValues,
    form_of,
    new_form,
    payload_of,
    read_form,
)
from moot.text import sentence

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

NAME_COOKIE = "moot_name"
MAX_NAME = 200


async def _home_lists(meetings: MeetingsDep) -> dict[str, Any]:
    in_progress, _ = await meetings.list(MeetingQuery(status="in_progress", limit=100))
    scheduled, _ = await meetings.list(
        MeetingQuery(status="scheduled", start_from=datetime.now(UTC), limit=100)
    )
    recorded, _ = await meetings.list(
        MeetingQuery(status="recorded", sort="start", order="desc", limit=20)
    )
    return {"in_progress": in_progress, "scheduled": scheduled, "recorded": recorded}


def _form_context(form: FormValues, errors: dict[str, str], locations: list[str]) -> dict[str, Any]:
    return {
        "form": form,
        "errors": errors,
        "tools": TOOL_LABELS,
        "zones": COMMON_ZONES,
        "locations": locations,
    }


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, meetings: MeetingsDep, servers: ServersDep, created: str | None = None
) -> HTMLResponse:
    context = await _home_lists(meetings)
    created_meeting = None
    if created:
        try:
            created_meeting = await meetings.get(created)
        except MeetingNotFound:
            created_meeting = None
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            **context,
            **_form_context(new_form(), {}, await servers.locations()),
            "created": created_meeting,
        },
    )


def _errors_of(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "form"
        errors.setdefault(where, error["msg"].removeprefix("Value error, "))
    return errors


@router.post("/meetings/new", response_class=HTMLResponse, response_model=None)
async def create_from_form(
    request: Request, meetings: MeetingsDep, servers: ServersDep
) -> Response:
    """The new-meeting form; errors come back beside their fields, nothing is saved."""
    posted = await request.form()
    form = read_form(posted, posted.getlist)
    errors: dict[str, str] = {}
    try:
        row = await meetings.create(MeetingCreate.model_validate(payload_of(form)))
        return RedirectResponse(f"/?created={row.id}", status_code=303)
    except ValidationError as exc:
        errors = _errors_of(exc)
    except InvalidChange as exc:
        errors[exc.field] = str(exc)
    except Unavailable as exc:
        errors["form"] = str(exc)
    context = await _home_lists(meetings)
    return templates.TemplateResponse(
        request,
        "home.html",
        {**context, **_form_context(form, errors, await servers.locations()), "created": None},
        status_code=422 if "form" not in errors else 503,
    )


@router.get("/test", response_class=HTMLResponse)
async def test_meeting(request: Request, meetings: MeetingsDep) -> HTMLResponse:
    """Test Meeting: can this browser reach a room server, use its camera and microphone?"""
    return templates.TemplateResponse(request, "test.html", {"targets": meetings.test_targets()})


@router.get("/meetings/{meeting_id}.ics", response_model=None)
async def meeting_ics(request: Request, meeting_id: str, meetings: MeetingsDep) -> Response:
    """The meeting for a calendar: its occurrences, skipped and moved ones included."""
    try:
        entry = await meetings.calendar_entry(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return Response(
        meeting_calendar(entry),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{meeting_id}.ics"'},
    )


@router.get("/calendar/{person}.ics", response_model=None)
async def personal_feed(person: str, meetings: MeetingsDep) -> Response:
    """A personal calendar feed (subscribe with webcal://): the meetings `person` moderates."""
    person = unquote(person).strip()[:MAX_NAME]
    entries = await meetings.moderated_by(person)
    return Response(
        feed_calendar(entries, name=f"Moot meetings of {person}"),
        media_type="text/calendar; charset=utf-8",
    )


@router.post("/attend-by-name", response_class=HTMLResponse, response_model=None)
async def attend_by_name(
    request: Request,
    meetings: MeetingsDep,
    servers: ServersDep,
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
) -> Response:
    """Unlisted meetings are attended by typing their whole name, exactly."""
    found = await meetings.find_by_name(name) if name.strip() else None
    if found is not None:
        return RedirectResponse(f"/m/{found.id}", status_code=303)
    context = await _home_lists(meetings)
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            **context,
            **_form_context(new_form(), {}, await servers.locations()),
            "created": None,
            "by_name_error": f"No meeting is called \u201c{name.strip()}\u201d. "
            "Type its whole name, exactly as it was given to you.",
        },
        status_code=404,
    )


@router.get("/meetings/{meeting_id}", response_class=HTMLResponse)
async def details(request: Request, meeting_id: str, meetings: MeetingsDep) -> HTMLResponse:
    """Everything about one meeting, with Attend, its link and its calendar file."""
    try:
        row, attendance = await meetings.get_with_attendance(meeting_id)
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
        },
    )


@router.get("/meetings/{meeting_id}/edit", response_class=HTMLResponse)
async def edit_form(
    request: Request, meeting_id: str, meetings: MeetingsDep, servers: ServersDep
) -> HTMLResponse:
    try:
        row = await meetings.get(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    if row.status == "ended":
        return _message(request, row.name, "This meeting has ended: it cannot be changed.", 409)
    return _edit_page(request, row, form_of(row), {}, await servers.locations(), 200)


def _edit_page(
    request: Request,
    row: MeetingRow,
    form: FormValues,
    errors: dict[str, str],
    locations: list[str],
    status_code: int,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "edit.html",
        {
            "m": row,
            "running": row.status == "in_progress",
            **_form_context(form, errors, locations),
        },
        status_code=status_code,
    )


@router.post("/meetings/{meeting_id}/edit", response_class=HTMLResponse, response_model=None)
async def edit_from_form(
    request: Request, meeting_id: str, meetings: MeetingsDep, servers: ServersDep
) -> Response:
    try:
        row = await meetings.get(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    posted = await request.form()
    form = read_form(posted, posted.getlist)
    form.has_password = row.password_hash is not None
    running = row.status == "in_progress"
    errors: dict[str, str] = {}
    try:
        payload = payload_of(form, running=running)
        password = str(posted.get("password", ""))
        if password:
            payload["password"] = password
        elif "remove_password" in posted:
            payload["password"] = ""
        if not running and "recurrence" not in payload:
            payload["recurrence"] = None
        await meetings.update(meeting_id, MeetingPatch.model_validate(payload))
        return RedirectResponse(f"/meetings/{meeting_id}?changed=1", status_code=303)
    except ValidationError as exc:
        errors = _errors_of(exc)
    except InvalidChange as exc:
        errors[exc.field] = str(exc)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return _edit_page(request, row, form, errors, await servers.locations(), 422)


@router.get("/meetings/{meeting_id}/delete", response_class=HTMLResponse)
async def delete_confirm(request: Request, meeting_id: str, meetings: MeetingsDep) -> HTMLResponse:
    try:
        row = await meetings.get(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return templates.TemplateResponse(request, "delete.html", {"m": row})


@router.post("/meetings/{meeting_id}/delete", response_model=None)
async def delete_from_form(request: Request, meeting_id: str, meetings: MeetingsDep) -> Response:
    try:
        row = await meetings.get(meeting_id)
        await meetings.delete(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    return RedirectResponse(f"/?deleted={quote(row.name)}", status_code=303)


@router.get("/m/{meeting_id}", response_class=HTMLResponse, response_model=None)
async def attend(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    name: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
) -> Response:
    """Attend: ask who you are if we do not know, then send you to the room server."""
    return await _attend(request, meetings, meeting_id, name, None)


@router.post("/m/{meeting_id}", response_class=HTMLResponse, response_model=None)
async def attend_with_form(
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """The attend form; a password travels in the body, never in an address."""
    return await _attend(request, meetings, meeting_id, name, password)


async def _attend(
    request: Request,
    meetings: MeetingsDep,
    meeting_id: str,
    name: str | None,
    password: str | None,
) -> Response:
    try:
        meeting = await meetings.attend_info(meeting_id)
    except MeetingNotFound:
        return _message(request, "No such meeting", "There is no meeting at this address.", 404)
    user = (name or unquote(request.cookies.get(NAME_COOKIE, ""))).strip()[:MAX_NAME]
    if not user or (meeting.needs_password and password is None):
        return _attend_form(request, meeting, user, None, 200)
    try:
        target = await meetings.attend(meeting, user, password)
    except NotYetOpen as exc:
        return templates.TemplateResponse(
            request,
            "lobby.html",
            {"meeting": meeting, "name": user, "password": password, "opens_at": exc.opens_at},
        )
    except CannotAttend as exc:
        if meeting.needs_password and "password" in str(exc):
            return _attend_form(request, meeting, user, sentence(str(exc)), 403)
        return _message(request, meeting.name, sentence(str(exc)), 409)
    except Unavailable as exc:
        return _message(request, meeting.name, sentence(str(exc)), 503)
    response = RedirectResponse(target.url, status_code=303)
    response.set_cookie(NAME_COOKIE, quote(user), max_age=365 * 86400, samesite="lax")
    return response


@router.get("/recordings/{meeting_id}", response_class=HTMLResponse)
async def recording(request: Request, meeting_id: str, meetings: MeetingsDep) -> HTMLResponse:
    """Play a recording: every segment in order, whichever room servers recorded them."""
    try:
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
    request: Request, meeting: AttendInfo, name: str, error: str | None, status_code: int
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "attend.html",
        {
            "meeting": meeting,
            "name": name,
            "needs_password": meeting.needs_password,
            "error": error,
        },
        status_code=status_code,
    )


def _message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "text": text}, status_code=status_code
    )
