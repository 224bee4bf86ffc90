"""FastAPI dependencies: the services a route needs, taken from the app's state."""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from moot.core.permissions import Action
from moot.ems import moderator_keys
from moot.ems.admission import Admission
from moot.ems.auth.identity import ANONYMOUS, Identity, cluster_administrator
from moot.ems.auth.service import AuthService
from moot.ems.auth.tokens import BadToken
from moot.ems.broadcasts import BroadcastService
from moot.ems.calendar_feeds import CalendarFeeds
from moot.ems.configuration import ConfigService
from moot.ems.container import Ems
from moot.ems.files import FileService
from moot.ems.meetings import MeetingService
from moot.ems.polls import PollResults
from moot.ems.schedule import Schedule
from moot.ems.servers import ServerService
from moot.ems.store.reports import Reports


async def get_ems(request: Request) -> Ems:
    ems: Ems = request.app.state.ems
    return ems


async def get_meetings(request: Request) -> MeetingService:
    ems: Ems = request.app.state.ems
    return ems.meetings


async def get_servers(request: Request) -> ServerService:
    ems: Ems = request.app.state.ems
    return ems.servers


SESSION_COOKIE = "moot_session"


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def get_identity(request: Request) -> Identity:
    """Who is asking: a bearer token (API clients) or the sign-in cookie (browsers).

    A bad bearer token is refused (401): the client asked to be someone. A bad cookie is
    anonymous, and the page says the sign-in has ended (request.state.session_problem).
    """
    identity = await _identify(request)
    request.state.identity = identity  # for the pages' header: who is signed in
    return identity


async def _identify(request: Request) -> Identity:
    identity = await _signed_in(request)
    keys = tuple(
        (name.removeprefix(moderator_keys.COOKIE_PREFIX), value)
        for name, value in request.cookies.items()
        if name.startswith(moderator_keys.COOKIE_PREFIX) and value
    )
    header = request.headers.get(moderator_keys.HEADER, "").strip()
    if header:
        keys += (("*", header),)  # for the meeting the request is about
    return replace(identity, moderator_keys=keys) if keys else identity


async def _signed_in(request: Request) -> Identity:
    ems: Ems = request.app.state.ems
    address = client_address(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        secret = ems.settings.cluster_secret
        if secret and hmac.compare_digest(header[7:].strip().encode(), secret.encode()):
            # The CLI on a machine of the cluster: the holder of the secret runs the cluster.
            return cluster_administrator(ems.settings.admin_group, address)
        try:
            claims = await ems.auth.verify(header[7:].strip())
        except BadToken as exc:
            raise HTTPException(401, f"sign-in token refused: {exc}") from exc
        return Identity(claims=claims, address=address)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            return Identity(claims=await ems.auth.verify(cookie), address=address)
        except BadToken as exc:
            request.state.session_problem = str(exc)
    return Identity(claims=ANONYMOUS.claims, address=address)


async def require_admin(request: Request) -> Identity:
    """A dependency of every administrative route: members of the admin group only."""
    ems: Ems = request.app.state.ems
    identity = await get_identity(request)
    ems.auth.require(identity, Action.ADMINISTER)
    return identity


async def get_auth(request: Request) -> AuthService:
    ems: Ems = request.app.state.ems
    return ems.auth


async def get_admission(request: Request) -> Admission:
    ems: Ems = request.app.state.ems
    return ems.admission


EmsDep = Annotated[Ems, Depends(get_ems)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]


async def get_feeds(request: Request) -> CalendarFeeds:
    ems: Ems = request.app.state.ems
    return ems.feeds


FeedsDep = Annotated[CalendarFeeds, Depends(get_feeds)]
AdminDep = Annotated[Identity, Depends(require_admin)]
MeetingsDep = Annotated[MeetingService, Depends(get_meetings)]
ServersDep = Annotated[ServerService, Depends(get_servers)]


def get_config(request: Request) -> ConfigService:
    ems: Ems = request.app.state.ems
    return ems.config


async def get_broadcasts(request: Request) -> BroadcastService:
    ems: Ems = request.app.state.ems
    return ems.broadcasts


async def get_files(request: Request) -> FileService:
    ems: Ems = request.app.state.ems
    return ems.files


async def get_reports(request: Request) -> Reports:
    ems: Ems = request.app.state.ems
    return ems.reports


ConfigDep = Annotated[ConfigService, Depends(get_config)]
BroadcastsDep = Annotated[BroadcastService, Depends(get_broadcasts)]
FilesDep = Annotated[FileService, Depends(get_files)]
ReportsDep = Annotated[Reports, Depends(get_reports)]


async def get_schedule(request: Request) -> Schedule:
    ems: Ems = request.app.state.ems
    return ems.schedule


ScheduleDep = Annotated[Schedule, Depends(get_schedule)]


async def get_polls(request: Request) -> PollResults:
    ems: Ems = request.app.state.ems
    return ems.polls


PollsDep = Annotated[PollResults, Depends(get_polls)]
