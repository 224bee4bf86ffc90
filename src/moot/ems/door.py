"""The meeting's door at the EMS: a person a moderator removed, or a newcomer to a locked
meeting, gets no join token.

The room server decides this from its moderator-controls state (room/tools/moderation)
and refuses at the WebSocket; the EMS reads the same journaled events (the rows of kind
`moderation`) and refuses sooner, at attend and at rejoin, with the same words. The fold
below is that state machine's `admits`, over events the room server already accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.store import tool_events
from moot.infra.kept_reads import KeptReads
from moot.infra.tokens import Role
from moot.protocol.tools import (
    Grant,
    Lock,
    NewOccurrence,
    Readmit,
    Remove,
    TakeBack,
    Unlock,
    record_of,
)

log = logging.getLogger("moot.ems.door")

# The room server's words (room/tools/moderation/state.py): the page shows either.
LOCKED_TEXT = "This meeting is locked: nobody new may join it now."
REMOVED_TEXT = "A moderator removed you from this meeting."


def refusal(bodies: Sequence[dict[str, Any]], person: str, role: Role) -> str:
    """Why `person` may not enter, from the meeting's moderation events ("" if they may)."""
    locked, present, removed = False, frozenset[str](), set[str]()
    moderators: set[str] = set()  # made moderator by a grant: they enter a locked meeting
    for body in bodies:
        try:
            event = record_of(body).event
        except ValidationError:
            log.warning("skipped a moderation event the EMS cannot read")
            continue
        if isinstance(event, Lock):
            locked, present = True, frozenset(event.present)
        elif isinstance(event, Unlock):
            locked, present = False, frozenset()
        elif isinstance(event, Remove):
            removed.add(event.person)
            moderators.discard(event.person)
        elif isinstance(event, Readmit):
            removed = {p for p in removed if p not in _people_named(bodies, event.user)}
        elif isinstance(event, Grant):
            (moderators.add if event.role == "moderator" else moderators.discard)(event.person)
        elif isinstance(event, TakeBack):
            moderators.discard(event.person)
        elif isinstance(event, NewOccurrence):  # a new occurrence starts afresh
            locked, present, removed, moderators = False, frozenset(), set(), set()
    if person in removed:
        return REMOVED_TEXT
    if locked and role != "moderator" and person not in moderators | present:
        return LOCKED_TEXT
    return ""


def granted(bodies: Sequence[dict[str, Any]], person: str) -> str:
    """The role a moderator gave `person` in this occurrence ("presenter", "moderator"),
    "" if none (never given, taken back, removed since, or a new occurrence began)."""
    roles: dict[str, str] = {}
    for body in bodies:
        try:
            event = record_of(body).event
        except ValidationError:
            continue
        if isinstance(event, Grant):
            roles[event.person] = event.role
        elif isinstance(event, TakeBack | Remove):
            roles.pop(event.person, None)
        elif isinstance(event, NewOccurrence):
            roles.clear()
    return roles.get(person, "")


def _people_named(bodies: Sequence[dict[str, Any]], name: str) -> set[str]:
    """The persons removed under `name` (a readmission names the person as they were)."""
    found = set()
    for body in bodies:
        event = body.get("event", {})
        if event.get("kind") == "moderation.remove" and event.get("user", "").casefold() == (
            name.casefold()
        ):
            found.add(str(event.get("person", "")))
    return found


# Attend is the hot path: a meeting's moderation events are read from the store once, then
# again only when this EMS stores a new one (forget) or, for what another EMS node stored,
# after REREAD_SECONDS. The room server holds the state itself and refuses at its door too.
REREAD_SECONDS = 5.0
MAX_MEETINGS = 10_000


Bodies = list[dict[str, Any]]


class Door:
    """refusal() for a meeting, from its journal as read at most REREAD_SECONDS ago.

    `read` gives a meeting's moderation event bodies (the store's, unless a test gives
    another)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reread: float = REREAD_SECONDS,
        read: Callable[[str], Awaitable[Bodies]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._events: KeptReads[str, Bodies] = KeptReads(
            read or self._from_store, keep_for=reread, max_keys=MAX_MEETINGS
        )

    def forget(self, meeting_id: str) -> None:
        """A moderation event of the meeting was stored: read them again at the next check."""
        self._events.forget(meeting_id)

    def forget_all(self) -> None:
        """Moderation events of other nodes may have gone unheard: read each afresh."""
        self._events.forget_all()

    async def check(self, meeting_id: str, person: str, role: Role) -> str:
        bodies = await self._events.get(meeting_id)
        return refusal(bodies, person, role) if bodies else ""

    async def granted(self, meeting_id: str, person: str) -> str:
        bodies = await self._events.get(meeting_id)
        return granted(bodies, person) if bodies else ""

    async def _from_store(self, meeting_id: str) -> Bodies:
        async with self._sessions() as session:
            rows = await tool_events.events_of(session, meeting_id, "moderation")
        return [r.body for r in rows]
