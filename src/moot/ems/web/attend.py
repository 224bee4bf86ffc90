"""Attending from the Meeting Center: /m/{id} (the name and password form, the lobby, the
redirect to the room server) and recordings' playback."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from moot.core.permissions import Action
from moot.core.text import sentence
from moot.ems import moderator_keys
from moot.ems.admission import Visitor
from moot.ems.attending import (
    AttendInfo,
    CannotAttend,
    NotAllowed,
    NotRecorded,
    NotYetOpen,
    Unavailable,
)
from moot.ems.deps import (
    AdmissionDep,
    AuthDep,
    IdentityDep,
    MeetingsDep,
    client_address,
)
from moot.ems.recordings import recording_out, replay_of
from moot.ems.web.pages import (
    GUEST_COOKIE,
    MAX_NAME,
    NAME_COOKIE,
    keep_key,
    raw_message,
)
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False)
YEAR = 365 * 86400


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
    return await attend_page(request, meetings, admission, identity, meeting_id, name, None, key)


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
    return await attend_page(
        request, meetings, admission, identity, meeting_id, name, password, None
    )


async def attend_page(
    request: Request,
    meetings: MeetingsDep,
    admission: AdmissionDep,
    identity: IdentityDep,
    meeting_id: str,
    name: str | None,
    password: str | None,
    key: str | None,
) -> Response:
    meeting = await meetings.attend_info(meeting_id)
    if key is not None:
        if not moderator_keys.opens(key, meeting.moderator_key_hash):
            return raw_message(
                request,
                meeting.name,
                "This moderator link is not (or no longer) the meeting's: ask whoever "
                f"gave it to you for the new one, or attend without it at /m/{meeting_id}.",
                403,
            )
        identity = replace(identity, moderator_keys=(*identity.moderator_keys, (meeting_id, key)))
    subject = admission.subject(identity, meeting)
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
        keep_key(response, request, meeting_id, key)
    if not browser:
        _keep(response, GUEST_COOKIE, visitor.browser, httponly=True)
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
        return raw_message(request, meeting.name, sentence(str(exc)), code)
    except Unavailable as exc:
        return raw_message(request, meeting.name, sentence(str(exc)), 503)
    response = RedirectResponse(target.url, status_code=303)
    _keep(response, NAME_COOKIE, quote(visitor.typed_name, safe=""))
    return response


def _keep(response: Response, name: str, value: str, *, httponly: bool = False) -> None:
    """A cookie the browser keeps a year: what `response.set_cookie` writes, without building
    a SimpleCookie for it (a tenth of attend's time). `value` is URL-quoted or a token, so it
    needs no quoting of its own."""
    flags = "; HttpOnly" if httponly else ""
    header = f"{name}={value}; Max-Age={YEAR}; Path=/; SameSite=lax{flags}"
    response.raw_headers.append((b"set-cookie", header.encode("latin-1")))


@router.get("/recordings/{meeting_id}", response_class=HTMLResponse)
async def recording(
    request: Request, meeting_id: str, meetings: MeetingsDep, auth: AuthDep, identity: IdentityDep
) -> HTMLResponse:
    """Play a recording: every segment in order, whichever room servers recorded them."""
    try:
        auth.require_on(identity, Action.VIEW_RECORDING, await meetings.get(meeting_id))
        row, segments = await meetings.recording(meeting_id)
    except NotRecorded as exc:
        row = await meetings.get(meeting_id)
        return raw_message(request, row.name, sentence(str(exc)), 404)
    out = recording_out(meetings, row, segments)
    return templates.TemplateResponse(
        request, "recording.html", {"recording": out, "replay": replay_of(out)}
    )


@router.get("/recordings/{meeting_id}/media/{media_id}", response_model=None)
async def recording_media(
    request: Request,
    meeting_id: str,
    media_id: int,
    meetings: MeetingsDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> Response:
    """A recording's audio, video or screen file, for its playback page (whole, or the
    byte range a media element asks for to seek)."""
    try:
        auth.require_on(identity, Action.VIEW_RECORDING, await meetings.get(meeting_id))
        media = await meetings.recording_media(meeting_id, media_id)
    except NotRecorded as exc:
        row = await meetings.get(meeting_id)
        return raw_message(request, row.name, sentence(str(exc)), 404)
    data, size = media.data, len(media.data)
    headers = {"accept-ranges": "bytes", "cache-control": "private, max-age=3600"}
    wanted = byte_range(request.headers.get("range", ""), size)
    if wanted is None:
        return Response(data, media_type=media.content_type, headers=headers)
    first, last = wanted
    headers["content-range"] = f"bytes {first}-{last}/{size}"
    return Response(
        data[first : last + 1], status_code=206, media_type=media.content_type, headers=headers
    )


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range of `bytes=FIRST-[LAST]` within the file; None: the whole file."""
    unit, _, spec = header.partition("=")
    first_text, dash, last_text = spec.partition("-")
    if unit.strip() != "bytes" or not dash or not first_text.isdigit() or size == 0:
        return None
    first = int(first_text)
    last = int(last_text) if last_text.isdigit() else size - 1
    if first > last or first >= size:
        return None
    return first, min(last, size - 1)


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
