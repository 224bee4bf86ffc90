"""Presentations: one PDF of the meeting's files, everyone on the presenter's page."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moot.protocol.tools import (
    BoardAdd,
    BoardClear,
    BoardElement,
    BoardUndo,
    SlidesClose,
    SlidesOpen,
    SlidesPage,
    ToolEvent,
)
from moot.room.tools.base import Actor, Refused, Room
from moot.room.tools.slides.state import TOOL, Slides, apply, prepare, view
from moot.room.tools.whiteboard import state as whiteboard

MOD = Actor("Mia", "user::mia", "moderator")
ADA = Actor("Ada", "guest:a", "participant")
FILES = Room(files={7: ("deck.pdf", "application/pdf"), 8: ("notes.docx", "application/x")})


def run(*steps: tuple[ToolEvent, Actor]) -> Slides:
    state = TOOL.initial()
    for event, actor in steps:
        state = apply(state, prepare(state, event, actor, FILES), actor)
    return state


def test_everyone_sees_the_presenters_page() -> None:
    state = run((SlidesOpen(file_id=7, pages=12), MOD), (SlidesPage(page=6), MOD))
    shown = {
        "open": True,
        "file_id": 7,
        "name": "deck.pdf",
        "pages": 12,
        "page": 6,
        "by": "Mia",
    }
    assert view(state, ADA) == view(state, MOD) == shown
    assert view(apply(state, SlidesClose(), MOD), ADA) == {"open": False}


def test_opening_another_starts_at_its_first_page() -> None:
    state = run((SlidesOpen(file_id=7, pages=12), MOD), (SlidesPage(page=6), MOD))
    again = apply(state, SlidesOpen(file_id=7, pages=3, name="deck.pdf"), MOD)
    assert (again.page, again.pages) == (0, 3)


def test_the_file_name_is_the_meetings_not_the_pages() -> None:
    state = run((SlidesOpen(file_id=7, pages=2, name="evil.pdf"), MOD))
    assert state.name == "deck.pdf"


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([(SlidesOpen(file_id=7, pages=2), ADA)], "only a presenter can show"),
        ([(SlidesOpen(file_id=7, pages=2), MOD), (SlidesPage(page=1), ADA)], "only a presenter"),
        ([(SlidesOpen(file_id=7, pages=2), MOD), (SlidesClose(), ADA)], "only a presenter"),
        ([(SlidesOpen(file_id=9, pages=2), MOD)], "not attached to the meeting"),
        ([(SlidesOpen(file_id=8, pages=2), MOD)], "only PDF files are shown as slides"),
        ([(SlidesPage(page=0), MOD)], "no presentation is open"),
        ([(SlidesClose(), MOD)], "no presentation is open"),
        ([(SlidesOpen(file_id=7, pages=2), MOD), (SlidesPage(page=2), MOD)], "has 2 pages"),
    ],
)
def test_refusals_say_why(steps: list[tuple[ToolEvent, Actor]], reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        run(*steps)


def test_a_replay_does_not_ask_for_the_file_again() -> None:
    """The file may have been removed since: what was shown then is rebuilt as it was."""
    event = SlidesOpen(file_id=9, pages=4, name="gone.pdf")
    assert apply(TOOL.initial(), event, MOD).name == "gone.pdf"


@pytest.mark.parametrize("bad", [{"file_id": 0, "pages": 1}, {"file_id": 1, "pages": 0}])
def test_limits(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        SlidesOpen.model_validate(bad)


# Notes on a slide: whiteboard elements keyed to the slide, apart from the board's pages.


def note(element_id: str, slide: str | None = "7:2") -> BoardAdd:
    element = BoardElement(id=element_id, shape="line", points=[(1, 1), (50, 50)])
    return BoardAdd(page=0, element=element, slide=slide)


def test_notes_on_a_slide_are_apart_from_the_boards_pages() -> None:
    board = whiteboard.TOOL.initial()
    for event in (note("a"), note("b", "7:3"), note("c", None)):
        board = whiteboard.apply(board, event, MOD)
    items = whiteboard.view(board, ADA)["items"]
    assert [(i["id"], i.get("slide")) for i in items] == [("a", "7:2"), ("b", "7:3"), ("c", None)]
    # Clearing a slide's notes leaves the other slide and the page alone, and no undo
    # brings them back.
    cleared = whiteboard.apply(board, BoardClear(page=0, slide="7:2"), MOD)
    assert [i["id"] for i in whiteboard.view(cleared, ADA)["items"]] == ["b", "c"]
    undone = whiteboard.apply(cleared, BoardUndo(), MOD)
    assert [i["id"] for i in whiteboard.view(undone, ADA)["items"]] == ["b"]
    assert whiteboard.delta(board, cleared) == {
        "pages": 1,
        "shown": 0,
        "who": "everyone",
        "add": [],
        "remove": ["a"],
    }


def test_a_slide_key_is_a_file_and_a_page() -> None:
    with pytest.raises(ValidationError):
        note("a", "../etc")
