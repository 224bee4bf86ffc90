"""The Meeting Center's pages: the home page, the new-meeting form, attend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from moot.core.filetypes import human_size
from moot.core.ical import meeting_calendar
from moot.core.permissions import Action
from moot.core.text import sentence
from moot.ems import moderator_keys
from moot.ems.attending import Unavailable
from moot.ems.deps import (
    AuthDep,
    FilesDep,
    IdentityDep,
    MeetingsDep,
    ScheduleDep,
    ServersDep,
)
from moot.ems.errors import InvalidChange, MeetingNotFound
from moot.ems.files import (
    FileRefused,
    FileService,
    Upload,
    chosen,
    close_uploads,
    download_allowed,
    read_uploads,
)
from moot.ems.model.meetings import MeetingCreate
from moot.ems.store.meetings import MeetingQuery
from moot.ems.store.models import MeetingFileRow, MeetingRow
from moot.ems.web.meeting_form import (
    COMMON_ZONES,
    TOOL_LABELS,
    FormValues,
    new_form,
    payload_of,
    read_form,
)
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

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


def form_context(
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


async def uploads_of(
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
            **form_context(_new_form(identity), {}, await servers.locations(), files),
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


def errors_of(exc: ValidationError) -> dict[str, str]:
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
        uploads, names = await uploads_of(posted, files, errors)
        try:
            partition = identity.claims.partition if identity.claims else None
            payload = payload_of(form)
            password = str(posted.get("password", ""))
            if password:
                payload["password"] = password
            data = MeetingCreate.model_validate(payload)
            if not errors:
                key = moderator_keys.new_key() if identity.needs_moderator_key() else None
                row = await meetings.create(
                    data,
                    partition=partition,
                    moderator_key_hash=moderator_keys.key_hash(key) if key else None,
                )
                await _attach_or_undo(meetings, files, row, uploads, identity.name)
                done = RedirectResponse(f"/?created={row.id}", status_code=303)
                if key:  # the creator's browser moderates it; the page shows the link
                    keep_key(done, request, row.id, key)
                return done
        except ValidationError as exc:
            errors = {**errors_of(exc), **errors}
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
                **form_context(form, errors, locations, files, chosen_names=names),
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
    request: Request,
    meeting_id: str,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> Response:
    """The meeting for a calendar: its occurrences, skipped and moved ones included."""
    auth.require_on(identity, Action.BROWSE, await meetings.get(meeting_id))
    entry = await schedule.calendar_entry(meeting_id)
    return Response(
        meeting_calendar(entry),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{meeting_id}.ics"'},
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
            **form_context(_new_form(identity), {}, await servers.locations(), files),
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
    row, attendance = await meetings.get_with_attendance(meeting_id)
    auth.require_on(identity, Action.BROWSE, row)
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


@router.get("/meetings/{meeting_id}/delete", response_class=HTMLResponse)
async def delete_confirm(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> HTMLResponse:
    row = await meetings.get(meeting_id)
    auth.require_on(identity, Action.DELETE, row)
    return templates.TemplateResponse(request, "delete.html", {"m": row})


@router.post(
    "/meetings/{meeting_id}/delete", response_model=None, dependencies=[Depends(check_csrf)]
)
async def delete_from_form(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> Response:
    row = await meetings.get(meeting_id)
    auth.require_on(identity, Action.DELETE, row)
    await meetings.delete(meeting_id)
    return RedirectResponse(f"/?deleted={quote(row.name)}", status_code=303)


def keep_key(response: Response, request: Request, meeting_id: str, key: str) -> None:
    """The browser keeps a meeting's moderator key in a cookie of its own (a year)."""
    response.set_cookie(
        moderator_keys.cookie_name(meeting_id),
        key,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    return raw_message(request, title, sentence(text), status_code)


def raw_message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
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
