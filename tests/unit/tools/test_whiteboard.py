"""The whiteboard state machine: elements, erase, undo and redo of one's own, clear,
pages, who may draw; and the deltas pages get."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from moot.protocol.tools import (
    BoardAdd,
    BoardAddPage,
    BoardClear,
    BoardElement,
    BoardErase,
    BoardPolicy,
    BoardRedo,
    BoardShowPage,
    BoardUndo,
    ToolEvent,
    tool_event,
)
from moot.room.tools.base import Actor, Refused
from moot.room.tools.whiteboard.state import TOOL, Board, apply, delta, view

MOD = Actor("Mia", "user::mia", "moderator")
ADA = Actor("Ada", "guest:a", "participant")
BEN = Actor("Ben", "guest:b", "participant")


def stroke(element_id: str, page: int = 0) -> BoardAdd:
    points = [(10.0 * i, 5.0 * i) for i in range(5)]
    return BoardAdd(page=page, element=BoardElement(id=element_id, shape="pen", points=points))


def run(*steps: tuple[ToolEvent, Actor], state: Board | None = None) -> Board:
    state = state or TOOL.initial()
    for event, actor in steps:
        state = apply(state, event, actor)
    return state


def ids(state: Board) -> list[str]:
    return list(state.items)


def test_undo_and_redo_touch_only_ones_own_work() -> None:
    state = run((stroke("a1"), ADA), (stroke("b1"), BEN), (stroke("a2"), ADA))
    state = apply(state, BoardUndo(), ADA)
    assert ids(state) == ["a1", "b1"]
    state = apply(state, BoardUndo(), ADA)
    assert ids(state) == ["b1"]  # Ben's stroke stays
    with pytest.raises(Refused, match="nothing to undo"):
        apply(state, BoardUndo(), ADA)
    state = apply(state, BoardRedo(), ADA)
    assert ids(state) == ["b1", "a1"]
    with pytest.raises(Refused, match="nothing to redo"):
        apply(apply(state, stroke("a3"), ADA), BoardRedo(), ADA)  # a new action ends redo


def test_an_erase_is_undone_by_its_eraser() -> None:
    state = run((stroke("a1"), ADA), (stroke("b1"), BEN), (BoardErase(ids=["a1"]), BEN))
    assert ids(state) == ["b1"]
    state = apply(state, BoardUndo(), BEN)
    assert sorted(ids(state)) == ["a1", "b1"]
    # Ada's undo of her stroke, erased by someone else meanwhile: what is left of it.
    erased = run((BoardErase(ids=["a1"]), BEN), state=state)
    assert ids(apply(erased, BoardUndo(), ADA)) == ["b1"]


def test_clear_is_for_moderators_and_presenters_and_nothing_cleared_comes_back() -> None:
    state = run((stroke("a1"), ADA), (BoardAddPage(), MOD), (stroke("a2", page=1), ADA))
    with pytest.raises(Refused, match="only a presenter can clear"):
        apply(state, BoardClear(page=0), ADA)
    presenter = Actor("Pia", "guest:p", "participant", presenter=True)
    assert ids(apply(state, BoardClear(page=0), presenter)) == ["a2"]
    # Only moderators and presenters draw: a presenter does, a participant not.
    only = apply(state, BoardPolicy(who="moderators"), MOD)
    assert "p1" in ids(apply(only, stroke("p1"), presenter))
    with pytest.raises(Refused, match="only moderators and presenters may draw"):
        apply(only, stroke("a3"), ADA)
    state = apply(state, BoardClear(page=0), MOD)
    assert ids(state) == ["a2"]
    state = apply(state, BoardUndo(), ADA)  # undoes a2 (page 1); a1's step is gone
    assert ids(state) == []
    with pytest.raises(Refused, match="nothing to undo"):
        apply(state, BoardUndo(), ADA)


def test_pages_and_who_may_draw() -> None:
    state = run((BoardAddPage(), MOD), (BoardShowPage(page=0), MOD))
    assert (state.pages, state.shown) == (2, 0)
    with pytest.raises(Refused, match="no such page"):
        apply(state, stroke("x", page=2), ADA)
    state = apply(state, BoardPolicy(who="moderators"), MOD)
    with pytest.raises(Refused, match="only moderators and presenters may draw"):
        apply(state, stroke("x"), ADA)
    assert ids(apply(state, stroke("m"), MOD)) == ["m"]


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([(stroke("a"), ADA), (stroke("a"), BEN)], "on the board already"),
        ([(BoardErase(ids=["zz"]), ADA)], "not on the board"),
        ([(BoardAddPage(), ADA)], "only a presenter"),
        ([(BoardShowPage(page=3), MOD)], "no such page"),
        ([(BoardPolicy(who="moderators"), ADA)], "only a moderator"),
    ],
)
def test_refusals_say_why(steps: list[tuple[ToolEvent, Actor]], reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        run(*steps)


def test_a_delta_says_what_changed_and_a_view_is_the_whole_board() -> None:
    before = run((stroke("a1"), ADA), (stroke("b1"), BEN))
    after = apply(before, BoardErase(ids=["a1"]), BEN)
    change = delta(before, after)
    assert change["remove"] == ["a1"] and change["add"] == []
    added = delta(after, apply(after, BoardUndo(), BEN))
    assert [e["id"] for e in added["add"]] == ["a1"] and added["add"][0]["by"] == "Ada"
    whole = view(before, ADA)
    assert [e["id"] for e in whole["items"]] == ["a1", "b1"]
    assert (whole["pages"], whole["shown"], whole["who"]) == (1, 0, "everyone")


def element(**fields: Any) -> dict[str, Any]:
    return {"kind": "board.add", "page": 0, "element": {"id": "e", **fields}}


@pytest.mark.parametrize(
    "event",
    [
        element(shape="pen", points=[[1, 2]] * 2001),
        element(shape="pen", points=[[1700, 2]]),
        element(shape="pen", points=[[1, -1]]),
        element(shape="rect", points=[[1, 2]]),
        element(shape="text", points=[[1, 2]]),
        element(shape="pen", points=[[1, 2]], text="hi"),
        element(shape="pen", points=[[1, 2]], color="red"),
        element(shape="pen", points=[[1, 2]], width=41),
        element(shape="blob", points=[[1, 2]]),
        {
            "kind": "board.add",
            "page": 20,
            "element": {"id": "e", "shape": "pen", "points": [[1, 2]]},
        },
        {"kind": "board.erase", "ids": []},
    ],
    ids=[
        "too-many-points",
        "off-the-page",
        "negative",
        "rect-one-point",
        "text-without-text",
        "pen-with-text",
        "named-colour",
        "too-wide",
        "unknown-shape",
        "page-20",
        "erase-nothing",
    ],
)
def test_bad_board_events_are_refused_before_the_state_machine(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        tool_event.validate_python(event)


def _script(seed: int, length: int) -> list[tuple[ToolEvent, Actor]]:
    """A random session of drawing, erasing, undoing, redoing, clearing and turning pages,
    some of it refused (erasing what is gone, undoing nothing), as a journal could hold."""
    import random

    rng = random.Random(seed)
    people = (MOD, ADA, BEN)
    script: list[tuple[ToolEvent, Actor]] = []
    for n in range(length):
        actor = rng.choice(people)
        roll = rng.random()
        event: ToolEvent
        if roll < 0.5:
            event = stroke(f"e{n}", page=rng.choice((0, 0, 1)))
        elif roll < 0.65:
            event = BoardErase(ids=[f"e{rng.randrange(n + 1)}" for _ in range(2)])
        elif roll < 0.8:
            event = BoardUndo()
        elif roll < 0.92:
            event = BoardRedo()
        elif roll < 0.95:
            event = BoardClear(page=rng.choice((0, 1)))
        elif roll < 0.97:
            event = BoardAddPage()
        else:
            event = BoardShowPage(page=0)
        script.append((event, actor))
    return script


@pytest.mark.parametrize("seed", range(6))
def test_a_replay_in_place_rebuilds_the_same_board_as_the_pure_apply(seed: int) -> None:
    """A failover's replay changes the board in place (linear, not a copy per stroke): it
    must end with exactly the board the live meeting had, refused events included."""
    assert TOOL.apply_in_place is not None
    live, replayed = TOOL.initial(), TOOL.initial()
    history: list[tuple[Board, dict[str, Any]]] = []
    for event, actor in _script(seed, 400):
        try:
            after = apply(live, event, actor)
        except Refused:
            with pytest.raises(Refused):
                TOOL.apply_in_place(replayed, event, actor)
            continue
        history.append((live, view(live, MOD)))
        live = after
        replayed = TOOL.apply_in_place(replayed, event, actor)
    assert view(replayed, MOD) == view(live, MOD)
    assert replayed.undo == live.undo and replayed.redo == live.redo
    # The sizes the page limit is checked against are the elements there, both ways.
    counted = Counter(i.surface for i in live.items.values())
    assert {k: n for k, n in live.sizes.items() if n} == counted
    assert {k: n for k, n in replayed.sizes.items() if n} == counted
    # The pure apply left every earlier state as it was (pages were sent those).
    for state, seen in history:
        assert view(state, MOD) == seen


def test_a_replay_in_place_does_not_copy_the_board_per_stroke() -> None:
    assert TOOL.apply_in_place is not None
    state = TOOL.apply_in_place(TOOL.initial(), stroke("a"), ADA)
    after = TOOL.apply_in_place(state, stroke("b"), ADA)
    assert after.items is state.items  # the same map, one more element: no copy
    assert list(after.items) == ["a", "b"]
