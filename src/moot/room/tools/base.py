"""What every meeting tool's state machine shares: who acts, the room they act in, refusals.

Pure: no I/O. A tool is a `Tool`: `prepare` fills in what the room server adds to an event
before it is journaled, `apply` gives the next state (or raises Refused, and nothing is
journaled), `view` is what one page may see, `announce` the sentence screen readers hear.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from moot.infra.tokens import Role
from moot.protocol.tools import ToolEvent

S = TypeVar("S")


class Refused(Exception):
    """The event is not allowed now; `str()` tells the sender why, in a sentence."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends an event (or looks at a tool): from the join token, never a typed name.

    `role` is the person's role in the meeting now: the token's, raised by a moderator's
    grant (room/tools/moderation/roles.py); `presenter` is a presenter's grant."""

    user: str
    person: str
    role: Role
    presenter: bool = False

    @property
    def moderates(self) -> bool:
        return self.role == "moderator"

    @property
    def presents(self) -> bool:
        """Whether this person may drive the stage (slides, a shared web page): moderators,
        and whoever a moderator made presenter."""
        return self.moderates or self.presenter

    @property
    def standing(self) -> str:
        """The role as the roster shows it: moderator, presenter or participant."""
        return "moderator" if self.moderates else "presenter" if self.presenter else "participant"


@dataclass(frozen=True, slots=True)
class Room:
    """Who is in the meeting now, for the events that name someone: name case-folded ->
    (person, role, name as shown); and its files."""

    people: Mapping[str, tuple[str, Role, str]] = field(default_factory=dict)
    # The meeting's files (the EMS's list), for the events that name one: id -> (name,
    # content type).
    files: Mapping[int, tuple[str, str]] = field(default_factory=dict)

    def find(self, user: str) -> tuple[str, Role, str] | None:
        return self.people.get(user.casefold())


def unchanged(state: Any, event: ToolEvent, actor: Actor, room: Room) -> ToolEvent:
    """The `prepare` of a tool that adds nothing to its events."""
    return event


@dataclass(frozen=True, slots=True)
class Tool(Generic[S]):
    name: str  # the journal row's kind, the `tool` of tool_state
    # The entry of the meeting's `tools` (the form's Tools tab) that enables it; None: every
    # meeting has it.
    enabled_by: str | None
    initial: Callable[[], S]
    apply: Callable[[S, ToolEvent, Actor], S]
    view: Callable[[S, Actor], dict[str, Any]]
    announce: Callable[[ToolEvent, Actor], str]
    prepare: Callable[[S, ToolEvent, Actor, Room], ToolEvent] = unchanged
    # Whether what a page sees depends on who looks (else one view serves every page).
    personal: bool = True
    # For a tool whose state is large: what changed (sent as `tool_delta` instead of the
    # whole view after each event). Only for tools whose view is not personal.
    delta: Callable[[S, S], dict[str, Any]] | None = None
    # For a tool whose state is large: `apply` that may change the state it is given, for
    # a replay (which owns the state it rebuilds, and keeps no state before): without a
    # copy per event, a replay stays linear. None: a replay uses `apply`.
    apply_in_place: Callable[[S, ToolEvent, Actor], S] | None = None


def only_moderators(actor: Actor, what: str) -> None:
    if not actor.moderates:
        raise Refused(f"only a moderator can {what}")


def only_presenters(actor: Actor, what: str) -> None:
    if not actor.presents:
        raise Refused(f"only a presenter can {what}")
