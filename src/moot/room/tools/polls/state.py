"""The polls of a meeting as a pure state machine: apply(state, event, actor) -> state.

A vote belongs to a person (the join token's), not to a name: one vote each, whatever
name or tab they vote from; voting again replaces it while the poll is open. Results are
live for moderators; everyone sees them once the poll is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from moot.protocol.tools import MAX_POLLS, PollClose, PollCreate, PollVote, ToolEvent
from moot.room.tools.base import Actor, Refused, Room, Tool, only_moderators


@dataclass(frozen=True, slots=True)
class Poll:
    id: str
    question: str
    options: tuple[str, ...]
    multiple: bool
    anonymous: bool
    created_by: str
    open: bool = True
    # person -> (their name when they voted, their choices); never changed in place.
    ballots: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)

    def results(self) -> list[int]:
        counts = [0] * len(self.options)
        for _, choices in self.ballots.values():
            for choice in choices:
                counts[choice] += 1
        return counts

    def ballots_by_name(self) -> dict[str, list[int]]:
        return {name: list(choices) for name, choices in self.ballots.values()}


@dataclass(frozen=True, slots=True)
class Polls:
    polls: tuple[Poll, ...] = ()

    def get(self, poll_id: str) -> Poll:
        for poll in self.polls:
            if poll.id == poll_id:
                return poll
        raise Refused("there is no such poll in this meeting")

    def put(self, poll: Poll) -> Polls:
        return Polls(tuple(poll if p.id == poll.id else p for p in self.polls))


def apply(state: Polls, event: ToolEvent, actor: Actor) -> Polls:
    if isinstance(event, PollCreate):
        only_moderators(actor, "open a poll")
        if any(p.id == event.poll_id for p in state.polls):
            raise Refused("a poll with this id exists already")
        if len(state.polls) >= MAX_POLLS:
            raise Refused(f"a meeting has at most {MAX_POLLS} polls")
        poll = Poll(
            id=event.poll_id,
            question=event.question,
            options=tuple(event.options),
            multiple=event.multiple,
            anonymous=event.anonymous,
            created_by=actor.user,
        )
        return Polls((*state.polls, poll))
    if isinstance(event, PollVote):
        poll = state.get(event.poll_id)
        if not poll.open:
            raise Refused("this poll is closed")
        choices = tuple(sorted(set(event.choices)))
        if len(choices) != len(event.choices):
            raise Refused("an option is chosen twice")
        if any(c >= len(poll.options) for c in choices):
            raise Refused("there is no such option in this poll")
        if not poll.multiple and len(choices) != 1:
            raise Refused("this poll takes one choice")
        ballots = {**poll.ballots, actor.person: (actor.user, choices)}
        return state.put(replace(poll, ballots=ballots))
    if isinstance(event, PollClose):
        only_moderators(actor, "close a poll")
        poll = state.get(event.poll_id)
        if not poll.open:
            raise Refused("this poll is closed already")
        return state.put(replace(poll, open=False))
    raise Refused(f"polls do not take {event.kind}")


def prepare(state: Polls, event: ToolEvent, actor: Actor, room: Room) -> ToolEvent:
    """A closing keeps the results with it: the EMS reads them from the journal."""
    if isinstance(event, PollClose):
        poll = state.get(event.poll_id)
        ballots = {} if poll.anonymous else poll.ballots_by_name()
        return event.model_copy(update={"results": poll.results(), "ballots": ballots})
    return event


def view(state: Polls, viewer: Actor) -> dict[str, Any]:
    """What one page shows: results live to moderators, to everyone once closed; who chose
    what only in a named poll, to moderators while open, to everyone once closed."""
    shown = []
    for poll in state.polls:
        sees = viewer.moderates or not poll.open
        mine = poll.ballots.get(viewer.person)
        names: list[list[str]] | None = None
        if sees and not poll.anonymous:
            names = [[] for _ in poll.options]
            for name, choices in sorted(poll.ballots.values()):
                for choice in choices:
                    names[choice].append(name)
        shown.append(
            {
                "id": poll.id,
                "question": poll.question,
                "options": list(poll.options),
                "multiple": poll.multiple,
                "anonymous": poll.anonymous,
                "open": poll.open,
                "created_by": poll.created_by,
                "voters": len(poll.ballots),
                "mine": list(mine[1]) if mine else [],
                "results": poll.results() if sees else None,
                "names": names,
            }
        )
    return {"polls": shown}


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, PollCreate):
        return f"{actor.user} opened a poll: {event.question}"
    if isinstance(event, PollClose):
        return "A poll is closed: its results are shown"
    return ""  # a vote: said to nobody (a hundred of them would drown the meeting)


TOOL: Tool[Polls] = Tool(
    name="poll",
    enabled_by="polls",
    initial=Polls,
    apply=apply,
    view=view,
    announce=announce,
    prepare=prepare,
)
