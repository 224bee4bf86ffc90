"""Moderator controls as a pure state machine: apply(state, event, actor) -> state.

Locked: nobody new enters; moderators, and whoever was in the meeting when it was locked,
still do (a page that lost its room server comes back). Removed: that person is put out
and may not enter again until a moderator readmits them. The room server checks `admits`
at every join; the EMS reads the same events from the journal at attend (ems/door.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moot.infra.tokens import Role
from moot.protocol.tools import Lock, Readmit, Remove, ToolEvent, Unlock
from moot.room.tools.base import Actor, Refused, Room, Tool, only_moderators

LOCKED_TEXT = "This meeting is locked: nobody new may join it now."
REMOVED_TEXT = "A moderator removed you from this meeting."


@dataclass(frozen=True, slots=True)
class Moderation:
    locked: bool = False
    present_at_lock: frozenset[str] = frozenset()
    removed: dict[str, str] = field(default_factory=dict)  # person -> their name


def prepare(state: Moderation, event: ToolEvent, actor: Actor, room: Room) -> ToolEvent:
    """Who is in at a lock, and who is behind a removed name: kept with the event."""
    if isinstance(event, Lock):
        return event.model_copy(update={"present": sorted(p for p, _, _ in room.people.values())})
    if isinstance(event, Remove):
        found = room.find(event.user)
        if found is None:
            raise Refused(f"{event.user} is not in this meeting")
        person, role, name = found
        if role == "moderator":
            raise Refused("a moderator cannot be removed")
        return event.model_copy(update={"user": name, "person": person})
    return event


def apply(state: Moderation, event: ToolEvent, actor: Actor) -> Moderation:
    if isinstance(event, Lock):
        only_moderators(actor, "lock the meeting")
        if state.locked:
            raise Refused("the meeting is locked already")
        return Moderation(True, frozenset(event.present), state.removed)
    if isinstance(event, Unlock):
        only_moderators(actor, "unlock the meeting")
        if not state.locked:
            raise Refused("the meeting is not locked")
        return Moderation(False, frozenset(), state.removed)
    if isinstance(event, Remove):
        only_moderators(actor, "remove someone")
        if not event.person:
            raise Refused(f"{event.user} is not in this meeting")
        if event.person == actor.person:
            raise Refused("you cannot remove yourself")
        removed = {**state.removed, event.person: event.user}
        return Moderation(state.locked, state.present_at_lock, removed)
    if isinstance(event, Readmit):
        only_moderators(actor, "readmit someone")
        kept = {p: n for p, n in state.removed.items() if n.casefold() != event.user.casefold()}
        if len(kept) == len(state.removed):
            raise Refused(f"{event.user} was not removed")
        return Moderation(state.locked, state.present_at_lock, kept)
    raise Refused(f"moderator controls do not take {event.kind}")


def admits(state: Moderation, person: str, role: Role) -> str:
    """Why this person may not enter now ("" if they may)."""
    if person in state.removed:
        return REMOVED_TEXT
    if state.locked and role != "moderator" and person not in state.present_at_lock:
        return LOCKED_TEXT
    return ""


def view(state: Moderation, viewer: Actor) -> dict[str, Any]:
    removed = sorted(state.removed.values(), key=str.casefold) if viewer.moderates else []
    return {"locked": state.locked, "removed": removed}


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, Lock):
        return f"{actor.user} locked the meeting"
    if isinstance(event, Unlock):
        return f"{actor.user} unlocked the meeting"
    if isinstance(event, Remove):
        return f"{actor.user} removed {event.user} from the meeting"
    if isinstance(event, Readmit):
        return f"{actor.user} let {event.user} back into the meeting"
    return ""


TOOL: Tool[Moderation] = Tool(
    name="moderation",
    enabled_by=None,
    initial=Moderation,
    apply=apply,
    view=view,
    announce=announce,
    prepare=prepare,
)
