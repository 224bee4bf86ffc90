"""The Meeting Center's pages: the home page, the new-meeting form, attend."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from moot.ems.api.meetings import recording_out
from moot.ems.api.schemas import MeetingCreate
from moot.ems.deps import MeetingsDep
from moot.ems.errors import InvalidChange
from moot.ems.meetings import (
    AttendInfo,
    CannotAttend,
    MeetingNotFound,
    NotRecorded,
    Unavailable,
)
from moot.ems.store.meetings import MeetingQuery
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


def _form_defaults() -> dict[str, Any]:
    soon = datetime.now(UTC) + timedelta(hours=1)
    return {
        "name": "",
        "moderator": "",
        "expected_participants": "4",
        "start_mode": "now",
        "date": soon.strftime("%Y-%m-%d"),
        "time": soon.strftime("%H:00"),
        "timezone": "UTC",
        "hours": "1",
        "minutes": "0",
        "record": False,
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, meetings: MeetingsDep, created: str | None = None) -> HTMLResponse:
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
        {**context, "form": _form_defaults(), "errors": {}, "created": created_meeting},
    )


def _start_from_form(day: str, clock: str, zone: str) -> datetime:
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidChange("timezone", f"unknown time zone {zone!r}") from exc
    try:
        local = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock))
    except ValueError as exc:
        raise InvalidChange("date", "give the date as YYYY-MM-DD and the time as HH:MM") from exc
    return local.replace(tzinfo=tz)


@router.post("/meetings/new", response_class=HTMLResponse, response_model=None)
async def create_from_form(
    request: Request,
    meetings: MeetingsDep,
    name: Annotated[str, Form()] = "",
    moderator: Annotated[str, Form()] = "",
    expected_participants: Annotated[str, Form()] = "4",
    start_mode: Annotated[str, Form()] = "now",
    date_: Annotated[str, Form(alias="date")] = "",
    time_: Annotated[str, Form(alias="time")] = "",
    timezone: Annotated[str, Form()] = "UTC",
    hours: Annotated[str, Form()] = "1",
    minutes: Annotated[str, Form()] = "0",
    record: Annotated[str | None, Form()] = None,
) -> Response:
    """The new-meeting form; errors come back beside their fields, nothing is saved."""
    form = {
        "name": name,
        "moderator": moderator,
        "expected_participants": expected_participants,
        "start_mode": start_mode,
        "date": date_,
        "time": time_,
        "timezone": timezone,
        "hours": hours,
        "minutes": minutes,
        "record": record is not None,
    }
    errors: dict[str, str] = {}
    try:
        duration = int(hours or 0) * 60 + int(minutes or 0)
    except ValueError:
        errors["duration_minutes"] = "hours and minutes must be whole numbers"
        duration = 0
    payload: dict[str, Any] = {
        "name": name,
        "moderator": moderator.strip() or "Anonymous",
        "expected_participants": expected_participants,
        "duration_minutes": duration,
        "record": record is not None,
    }
    try:
        if start_mode == "schedule":
            payload["start"] = _start_from_form(date_, time_, timezone)
        data = MeetingCreate.model_validate(payload)
        if not errors:
            row = await meetings.create(data)
            return RedirectResponse(f"/?created={row.id}", status_code=303)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(field, error["msg"].removeprefix("Value error, "))
    except InvalidChange as exc:
        errors[exc.field] = str(exc)
    except Unavailable as exc:
        errors["form"] = str(exc)
    context = await _home_lists(meetings)
    return templates.TemplateResponse(
        request,
        "home.html",
        {**context, "form": form, "errors": errors, "created": None},
        status_code=422 if "form" not in errors else 503,
    )


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
