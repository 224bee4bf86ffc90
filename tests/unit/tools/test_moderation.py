"""Moderator controls: lock (nobody new), remove (and readmit), by role only."""

from __future__ import annotations

import pytest

from moot.protocol.tools import (
    Lock,
    NewOccurrence,
    Readmit,
    Remove,
    ScreenShares,
    ToolEvent,
    Unlock,
)
from moot.room.tools.base import Actor, Refused, Room
from moot.room.tools.moderation.state import (
    LOCKED_TEXT,
    REMOVED_TEXT,
    TOOL,
    Moderation,
    admits,
    apply,
    prepare,
    view,
)

MOD = Actor("Mia", "user::mia", "moderator")
ADA = Actor("Ada", "guest:a", "participant")
ROOM = Room(
    {
        "mia": ("user::mia", "moderator", "Mia"),
        "ada": ("guest:a", "participant", "Ada"),
    }
)


def step(state: Moderation, event: ToolEvent, actor: Actor) -> Moderation:
    return apply(state, prepare(state, event, actor, ROOM), actor)


def test_a_lock_keeps_out_newcomers_but_not_who_was_in_or_moderators() -> None:
    state = step(TOOL.initial(), Lock(), MOD)
    assert admits(state, "guest:a", "participant") == ""  # was in when locked
    assert admits(state, "guest:new", "participant") == LOCKED_TEXT
    assert admits(state, "user::other-mod", "moderator") == ""
    state = step(state, Unlock(), MOD)
    assert admits(state, "guest:new", "participant") == ""


def test_removed_stays_out_until_readmitted_even_as_another_name() -> None:
    state = step(TOOL.initial(), Remove(user="ADA"), MOD)
    assert admits(state, "guest:a", "participant") == REMOVED_TEXT
    assert view(state, MOD)["removed"] == ["Ada"]
    assert view(state, ADA)["removed"] == []  # names for moderators only
    state = step(state, Readmit(user="ada"), MOD)
    assert admits(state, "guest:a", "participant") == ""


@pytest.mark.parametrize(
    ("event", "actor", "reason"),
    [
        (Lock(), ADA, "only a moderator can lock"),
        (Remove(user="Mia"), MOD, "a moderator cannot be removed"),
        (Remove(user="Zed"), MOD, "Zed is not in this meeting"),
        (Remove(user="Ada"), ADA, "only a moderator"),
        (Readmit(user="Ada"), MOD, "Ada was not removed"),
        (Unlock(), MOD, "not locked"),
    ],
)
def test_refusals_say_why(event: ToolEvent, actor: Actor, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        step(TOOL.initial(), event, actor)


def test_a_replayed_remove_needs_no_roster() -> None:
    """The person is in the journaled event: a new room server, empty, decides the same."""
    journaled = prepare(TOOL.initial(), Remove(user="Ada"), MOD, ROOM)
    state = apply(TOOL.initial(), journaled, MOD)
    assert admits(state, "guest:a", "participant") == REMOVED_TEXT


def test_only_a_moderator_lets_several_share_a_screen_and_a_new_occurrence_forgets_it() -> None:
    state = TOOL.initial()
    assert view(state, ADA)["many_screens"] is False  # one at a time by default
    with pytest.raises(Refused, match="only a moderator"):
        step(state, ScreenShares(many=True), ADA)
    state = step(state, ScreenShares(many=True), MOD)
    assert view(state, ADA)["many_screens"] is True
    with pytest.raises(Refused, match="several people may share a screen already"):
        step(state, ScreenShares(many=True), MOD)
    assert TOOL.announce(ScreenShares(many=False), MOD) == "Mia allowed one screen share at a time"
    assert apply(state, NewOccurrence(), MOD).many_screens is False  # journaled by the EMS
