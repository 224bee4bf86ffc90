"""Moderator controls as a pure state machine: apply(state, event, actor) -> state.

Locked: nobody new enters; moderators, and whoever was in the meeting when it was locked,
still do (a page that lost its room server comes back). Removed: that person is put out
and may not enter again until a moderator readmits them. The room server checks `admits`
at every join; the EMS reads the same events from the journal at attend (ems/door.py).

Roles: a moderator makes someone presenter or moderator (`granted`), and takes it back.
A person's role is the join token's raised by a grant (roles.py); the meeting's own
moderators (the token's role: its owner, whoever holds its moderator key) keep theirs:
a take-back only undoes a grant. Muted: a moderator mutes someone, or everyone but the
moderators; only the person unmutes themself, as in most meeting tools. The media tools
enforce it on the microphone; the state is kept here from now.

A new occurrence of a repeating meeting (`NewOccurrence`, journaled by the EMS) starts
with none of it: unlocked, nobody removed, no grants, nobody muted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from moot.infra.tokens import Role
from moot.protocol.tools import (
    Grant,
    Lock,
    Mute,
    MuteAll,
    NewOccurrence,
    Readmit,
    Remove,
    ScreenShares,
    TakeBack,
    ToolEvent,
    Unlock,
    Unmute,
)
from moot.room.tools.base import Actor, Refused, Room, Tool, only_moderators

LOCKED_TEXT = "This meeting is locked: nobody new may join it now."
REMOVED_TEXT = "A moderator removed you from this meeting."
MUTED_TEXT = "A moderator muted your microphone: unmute it when you want to speak."

Granted = Literal["presenter", "moderator"]


@dataclass(frozen=True, slots=True)
class Moderation:
    locked: bool = False
    present_at_lock: frozenset[str] = frozenset()
    removed: dict[str, str] = field(default_factory=dict)  # person -> their name
    granted: dict[str, tuple[str, Granted]] = field(default_factory=dict)  # person -> (name, role)
    muted: dict[str, str] = field(default_factory=dict)  # person -> their name
    many_screens: bool = False  # several screen shares at once (the media hub checks it)

    def grant_of(self, person: str) -> Granted | None:
        found = self.granted.get(person)
        return None if found is None else found[1]

    def moderates(self, person: str, role: Role) -> bool:
        """Whether a person with this token role is a moderator here now."""
        return role == "moderator" or self.grant_of(person) == "moderator"


def _target(room: Room, state: Moderation, user: str) -> tuple[str, bool, str]:
    """The person in the meeting under `user`: (person, moderates, name as shown)."""
    found = room.find(user)
    if found is None:
        raise Refused(f"{user} is not in this meeting")
    person, role, name = found
    return person, state.moderates(person, role), name


def prepare(state: Moderation, event: ToolEvent, actor: Actor, room: Room) -> ToolEvent:
    """Who is in at a lock, and who is behind a name: kept with the event, so a replay
    needs no roster."""
    if isinstance(event, NewOccurrence):
        raise Refused("only the Meeting Center starts a new occurrence")
    if isinstance(event, Lock):
        return event.model_copy(update={"present": sorted(p for p, _, _ in room.people.values())})
    if isinstance(event, Remove):
        person, moderates, name = _target(room, state, event.user)
        if moderates:
            raise Refused("a moderator cannot be removed")
        return event.model_copy(update={"user": name, "person": person})
    if isinstance(event, Grant):
        found = room.find(event.user)
        if found is None:
            raise Refused(f"{event.user} is not in this meeting")
        person, role, name = found
        if role == "moderator":
            raise Refused(f"{name} is one of the meeting's own moderators already")
        return event.model_copy(update={"user": name, "person": person})
    if isinstance(event, TakeBack):
        found = room.find(event.user)
        if found is not None and found[1] == "moderator":
            raise Refused(f"{found[2]} is one of the meeting's own moderators: that stays")
        for person, (name, _) in state.granted.items():
            if name.casefold() == event.user.casefold():
                return event.model_copy(update={"user": name, "person": person})
        raise Refused(f"{event.user} has no role to take back")
    if isinstance(event, Mute):
        person, _, name = _target(room, state, event.user)
        return event.model_copy(update={"user": name, "person": person})
    if isinstance(event, MuteAll):
        people = {
            p: name
            for p, role, name in room.people.values()
            if not state.moderates(p, role) and p not in state.muted
        }
        return event.model_copy(update={"people": people})
    return event


def apply(state: Moderation, event: ToolEvent, actor: Actor) -> Moderation:
    if isinstance(event, Lock):
        only_moderators(actor, "lock the meeting")
        if state.locked:
            raise Refused("the meeting is locked already")
        return replace(state, locked=True, present_at_lock=frozenset(event.present))
    if isinstance(event, Unlock):
        only_moderators(actor, "unlock the meeting")
        if not state.locked:
            raise Refused("the meeting is not locked")
        return replace(state, locked=False, present_at_lock=frozenset())
    if isinstance(event, Remove):
        only_moderators(actor, "remove someone")
        if not event.person:
            raise Refused(f"{event.user} is not in this meeting")
        if event.person == actor.person:
            raise Refused("you cannot remove yourself")
        # Readmitted, they come back as participants, not muted.
        return replace(
            state,
            removed={**state.removed, event.person: event.user},
            granted=_without(state.granted, event.person),
            muted=_without(state.muted, event.person),
        )
    if isinstance(event, Readmit):
        only_moderators(actor, "readmit someone")
        kept = {p: n for p, n in state.removed.items() if n.casefold() != event.user.casefold()}
        if len(kept) == len(state.removed):
            raise Refused(f"{event.user} was not removed")
        return replace(state, removed=kept)
    if isinstance(event, Grant | TakeBack):
        return _roles(state, event, actor)
    if isinstance(event, Mute | MuteAll | Unmute):
        return _mute(state, event, actor)
    if isinstance(event, ScreenShares):
        only_moderators(actor, "decide how many may share a screen")
        if event.many == state.many_screens:
            raise Refused(
                "several people may share a screen already"
                if event.many
                else "one screen share at a time already"
            )
        return replace(state, many_screens=event.many)
    if isinstance(event, NewOccurrence):
        return Moderation()
    raise Refused(f"moderator controls do not take {event.kind}")


def _without(people: dict[str, Any], person: str) -> dict[str, Any]:
    return {p: v for p, v in people.items() if p != person}


def _roles(state: Moderation, event: Grant | TakeBack, actor: Actor) -> Moderation:
    if isinstance(event, Grant):
        only_moderators(actor, f"make someone {event.role}")
        if not event.person:
            raise Refused(f"{event.user} is not in this meeting")
        if event.person == actor.person:
            raise Refused("you cannot change your own role")
        if state.grant_of(event.person) == event.role:
            raise Refused(f"{event.user} is {event.role} already")
        return replace(state, granted={**state.granted, event.person: (event.user, event.role)})
    only_moderators(actor, "take back a role")
    if event.person not in state.granted:
        raise Refused(f"{event.user} has no role to take back")
    return replace(state, granted=_without(state.granted, event.person))


def _mute(state: Moderation, event: Mute | MuteAll | Unmute, actor: Actor) -> Moderation:
    if isinstance(event, Unmute):
        if actor.person not in state.muted:
            raise Refused("you are not muted")
        return replace(state, muted=_without(state.muted, actor.person))
    if isinstance(event, MuteAll):
        only_moderators(actor, "mute everyone")
        if not event.people:
            raise Refused("everyone but the moderators is muted already")
        return replace(state, muted={**state.muted, **event.people})
    only_moderators(actor, "mute someone")
    if not event.person:
        raise Refused(f"{event.user} is not in this meeting")
    if event.person in state.muted:
        raise Refused(f"{event.user} is muted already")
    return replace(state, muted={**state.muted, event.person: event.user})


def admits(state: Moderation, person: str, role: Role) -> str:
    """Why this person may not enter now ("" if they may)."""
    if person in state.removed:
        return REMOVED_TEXT
    if state.locked and not state.moderates(person, role) and person not in state.present_at_lock:
        return LOCKED_TEXT
    return ""


def view(state: Moderation, viewer: Actor) -> dict[str, Any]:
    """Everyone sees who was granted a role and who is muted (the roster shows both); only
    moderators see who was removed. `you`: the viewer's own role and whether they are muted,
    so a page shows the controls of its role at once."""
    removed = sorted(state.removed.values(), key=str.casefold) if viewer.moderates else []
    return {
        "locked": state.locked,
        "removed": removed,
        "roles": {name: role for name, role in state.granted.values()},
        "muted": sorted(state.muted.values(), key=str.casefold),
        "many_screens": state.many_screens,
        "you": {"role": viewer.standing, "muted": viewer.person in state.muted},
    }


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, Lock):
        return f"{actor.user} locked the meeting"
    if isinstance(event, Unlock):
        return f"{actor.user} unlocked the meeting"
    if isinstance(event, Remove):
        return f"{actor.user} removed {event.user} from the meeting"
    if isinstance(event, Readmit):
        return f"{actor.user} let {event.user} back into the meeting"
    if isinstance(event, Grant):
        return f"{actor.user} made {event.user} {event.role}"
    if isinstance(event, TakeBack):
        return f"{actor.user} took back the role of {event.user}"
    if isinstance(event, Mute):
        return f"{actor.user} muted {event.user}"
    if isinstance(event, MuteAll):
        return f"{actor.user} muted everyone"
    if isinstance(event, Unmute):
        return f"{actor.user} unmuted themself"
    if isinstance(event, ScreenShares):
        if event.many:
            return f"{actor.user} let several people share a screen at once"
        return f"{actor.user} allowed one screen share at a time"
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
