"""Raised hands: a queue in the order raised; a moderator lowers anyone's."""

from __future__ import annotations

import pytest

from moot.protocol.tools import HandLower, HandRaise, HandsLowerAll, ToolEvent
from moot.room.tools.base import Actor, Refused
from moot.room.tools.hands.state import TOOL, Hands, apply, view

MOD = Actor("Mia", "user::mia", "moderator")
ADA = Actor("Ada", "guest:a", "participant")
BEN = Actor("Ben", "guest:b", "participant")


def run(*steps: tuple[ToolEvent, Actor]) -> Hands:
    state = TOOL.initial()
    for event, actor in steps:
        state = apply(state, event, actor)
    return state


def test_the_queue_is_in_the_order_hands_went_up() -> None:
    state = run((HandRaise(), BEN), (HandRaise(), ADA))
    assert view(state, MOD) == {"queue": ["Ben", "Ada"]}
    state = apply(state, HandLower(), BEN)
    assert view(state, ADA) == {"queue": ["Ada"]}


def test_a_moderator_lowers_one_hand_or_all() -> None:
    state = run((HandRaise(), BEN), (HandRaise(), ADA))
    assert view(apply(state, HandLower(user="ada"), MOD), MOD) == {"queue": ["Ben"]}
    assert view(apply(state, HandsLowerAll(), MOD), MOD) == {"queue": []}


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([(HandRaise(), ADA), (HandRaise(), ADA)], "raised already"),
        ([(HandLower(), ADA)], "not raised"),
        ([(HandRaise(), BEN), (HandLower(user="Ben"), ADA)], "only a moderator"),
        ([(HandsLowerAll(), ADA)], "only a moderator"),
        ([(HandLower(user="Zed"), MOD)], "Zed has no hand raised"),
    ],
)
def test_refusals_say_why(steps: list[tuple[ToolEvent, Actor]], reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        run(*steps)
