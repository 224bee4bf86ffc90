"""Calendar feeds: a person's meetings, by name or at a secret address of theirs."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from moot.core.ical import feed_calendar
from moot.ems.auth.identity import NotPermitted
from moot.ems.deps import (
    AuthDep,
    FeedsDep,
    IdentityDep,
)
from moot.ems.web.pages import (
    MAX_NAME,
    raw_message,
)

router = APIRouter(include_in_schema=False)


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
        return raw_message(
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
