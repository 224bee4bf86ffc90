"""Moderator controls, second part: make presenter, make moderator, take back; mute;
a new occurrence's fresh start. A role is the join token's raised by a grant."""

from __future__ import annotations

import pytest

from moot.protocol.tools import (
    Grant,
    Lock,
    Mute,
    MuteAll,
    NewOccurrence,
    Remove,
    TakeBack,
    ToolEvent,
    Unmute,
)
from moot.room.tools.base import Actor, Refused, Room, only_moderators, only_presenters
from moot.room.tools.moderation.roles import actor_of
from moot.room.tools.moderation.state import (
    LOCKED_TEXT,
    TOOL,
    Moderation,
    admits,
    apply,
    prepare,
    view,
)

MOD = Actor("Mia", "user::mia", "moderator")
ROOM = Room(
    {
        "mia": ("user::mia", "moderator", "Mia"),
        "ada": ("guest:a", "participant", "Ada"),
        "bob": ("guest:b", "participant", "Bob"),
    }
)


def step(state: Moderation, event: ToolEvent, actor: Actor = MOD, room: Room = ROOM) -> Moderation:
    return apply(state, prepare(state, event, actor, room), actor)


def ada(state: Moderation) -> Actor:
    return actor_of(state, "Ada", "guest:a", "participant")


def test_a_presenter_presents_and_a_take_back_makes_them_a_participant_again() -> None:
    state = TOOL.initial()
    assert not ada(state).presents
    state = step(state, Grant(user="ada", role="presenter"))
    assert ada(state).presents and not ada(state).moderates
    only_presenters(ada(state), "show slides")  # no refusal
    with pytest.raises(Refused, match="only a moderator"):
        only_moderators(ada(state), "lock the meeting")
    assert view(state, ada(state))["you"] == {"role": "presenter", "muted": False}
    assert view(state, MOD)["roles"] == {"Ada": "presenter"}  # the roster shows it
    state = step(state, TakeBack(user="Ada"))
    assert not ada(state).presents
    assert view(state, ada(state))["you"]["role"] == "participant"


def test_a_granted_moderator_moderates_and_enters_a_locked_meeting() -> None:
    state = step(TOOL.initial(), Grant(user="Bob", role="moderator"))
    bob = actor_of(state, "Bob", "guest:b", "participant")
    assert bob.moderates and bob.presents
    # Bob, now a moderator, makes Ada presenter; then the meeting is locked while he is away.
    state = step(state, Grant(user="Ada", role="presenter"), bob)
    away = Room({k: v for k, v in ROOM.people.items() if k != "bob"})
    state = step(state, Lock(), MOD, away)
    assert admits(state, "guest:b", "participant") == ""
    assert admits(state, "guest:new", "participant") == LOCKED_TEXT
    # A moderator (granted) cannot be removed; the role taken back, they can.
    with pytest.raises(Refused, match="a moderator cannot be removed"):
        step(state, Remove(user="Bob"))
    state = step(state, TakeBack(user="Bob"))
    assert admits(state, "guest:b", "participant") == LOCKED_TEXT
    state = step(state, Remove(user="Bob"))
    assert "guest:b" not in state.granted


def test_a_replay_decides_as_the_live_meeting_did() -> None:
    """The journal keeps the events as prepared: an empty room server rebuilds the roles."""
    live, journal = TOOL.initial(), list[ToolEvent]()
    for asked in (Grant(user="Ada", role="moderator"), Mute(user="Bob")):
        event = prepare(live, asked, MOD, ROOM)
        journal.append(event)
        live = apply(live, event, MOD)
    replayed = TOOL.initial()
    for event in journal:
        replayed = apply(replayed, event, MOD)
    assert replayed == live
    assert ada(replayed).moderates


@pytest.mark.parametrize(
    ("events", "actor", "reason"),
    [
        ([Grant(user="Ada", role="presenter")], Actor("Ada", "guest:a", "participant"), "only a"),
        ([Grant(user="Mia", role="presenter")], MOD, "Mia is one of the meeting's own moderators"),
        ([Grant(user="Zed", role="moderator")], MOD, "Zed is not in this meeting"),
        ([TakeBack(user="Mia")], MOD, "one of the meeting's own moderators: that stays"),
        ([TakeBack(user="Ada")], MOD, "Ada has no role to take back"),
        ([Grant(user="Ada", role="presenter")] * 2, MOD, "Ada is presenter already"),
        ([Mute(user="Ada")] * 2, MOD, "Ada is muted already"),
        ([Unmute()], MOD, "you are not muted"),
        ([NewOccurrence()], MOD, "only the Meeting Center"),
    ],
)
def test_refusals_say_why(events: list[ToolEvent], actor: Actor, reason: str) -> None:
    state = TOOL.initial()
    with pytest.raises(Refused, match=reason):
        for event in events:
            state = step(state, event, actor)


def test_a_granted_moderator_cannot_raise_themself_or_take_the_owners_role() -> None:
    state = step(TOOL.initial(), Grant(user="Ada", role="moderator"))
    with pytest.raises(Refused, match="you cannot change your own role"):
        step(state, Grant(user="Ada", role="presenter"), ada(state))
    with pytest.raises(Refused, match="that stays"):
        step(state, TakeBack(user="Mia"), ada(state))


def test_moderators_mute_only_the_person_unmutes() -> None:
    state = step(TOOL.initial(), Mute(user="ada"))
    assert view(state, ada(state))["you"] == {"role": "participant", "muted": True}
    assert view(state, MOD)["muted"] == ["Ada"]
    bob = actor_of(state, "Bob", "guest:b", "participant")
    with pytest.raises(Refused, match="you are not muted"):
        step(state, Unmute(), bob)  # there is no unmuting someone else
    state = step(state, Unmute(), ada(state))
    assert view(state, MOD)["muted"] == []


def test_mute_all_mutes_everyone_but_the_moderators() -> None:
    state = step(TOOL.initial(), Grant(user="Bob", role="moderator"))
    state = step(state, MuteAll())
    assert view(state, MOD)["muted"] == ["Ada"]
    with pytest.raises(Refused, match="muted already"):
        step(state, MuteAll())


def test_a_new_occurrence_starts_unlocked_with_nobody_removed_muted_or_granted() -> None:
    state = TOOL.initial()
    for event in (
        Grant(user="Bob", role="presenter"),
        Mute(user="Bob"),
        Lock(),
        Remove(user="Ada"),
    ):
        state = step(state, event)
    # Journaled by the EMS, never by a page: applied as the replay applies it.
    state = apply(state, NewOccurrence(), Actor("Meeting Center", "", "moderator"))
    assert state == Moderation()
    assert admits(state, "guest:a", "participant") == ""
    assert admits(state, "guest:new", "participant") == ""
