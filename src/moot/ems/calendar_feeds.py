"""Personal calendar feeds: the meetings a person moderates, at a secret address of theirs.

A calendar program cannot sign in, so each person may have one secret address (a random
token in the path; only its SHA-256 is stored). Making a new one ends the old; stopping
ends it. The feed shows what its owner may see now: a removed user's feed ends, and a
meeting of another partition whose moderator has the same name is not theirs.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core.ical import CalendarMeeting
from moot.core.permissions import Action, Subject
from moot.ems.auth.identity import Identity
from moot.ems.auth.service import AuthService, NotSignedIn
from moot.ems.meetings import MeetingService
from moot.ems.schedule import Schedule
from moot.ems.store import feeds as store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CalendarFeeds:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        meetings: MeetingService,
        schedule: Schedule,
        auth: AuthService,
    ) -> None:
        self._sessions = sessions
        self._meetings = meetings
        self._schedule = schedule
        self._auth = auth

    def url(self, token: str) -> str:
        return f"{self._meetings.public_url}/calendar/feeds/{token}.ics"

    async def new_address(self, identity: Identity) -> str:
        """A new secret address for the signed-in person's feed (shown once); the old one
        opens nothing from now on."""
        claims = identity.claims
        assert claims is not None, "a feed is a signed-in person's"
        token = secrets.token_urlsafe(24)
        async with self._sessions() as session:
            await store.replace_feed(
                session,
                username=claims.username,
                partition=claims.partition,
                token_hash=_hash(token),
                at=utcnow(),
            )
            await session.commit()
        return self.url(token)

    async def stop(self, identity: Identity) -> bool:
        claims = identity.claims
        assert claims is not None, "a feed is a signed-in person's"
        async with self._sessions() as session:
            removed = await store.remove_feed(
                session, username=claims.username, partition=claims.partition
            )
            await session.commit()
        return removed

    async def at_address(self, token: str) -> tuple[str, list[CalendarMeeting]] | None:
        """(whose, their meetings) of a secret address; None if it opens nothing."""
        async with self._sessions() as session:
            feed = await store.feed_of(session, _hash(token))
        if feed is None:
            return None
        try:
            subject = await self._auth.subject_again(
                username=feed.username,
                source="local" if feed.partition is None else "ldap",
                partition=feed.partition,
                jti="",
                issued_at=int(feed.created_at.timestamp()),
            )
        except NotSignedIn:
            return None  # its owner was removed: the feed ends with them
        return feed.username, await self.meetings_of(subject)

    async def meetings_of(self, subject: Subject) -> list[CalendarMeeting]:
        """What `subject` moderates and may see: their own feed."""
        name = subject.name or ""
        return await self._schedule.moderated_by(name, self._visible_to(subject))

    def _visible_to(self, subject: Subject) -> Callable[[MeetingRow], bool]:
        def visible(row: MeetingRow) -> bool:
            return self._auth.decide_subject(subject, Action.BROWSE, row).allowed

        return visible
