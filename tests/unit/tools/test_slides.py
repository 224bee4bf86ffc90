"""Presentations: one PDF of the meeting's files, everyone on the presenter's page."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moot.protocol.tools import SlidesClose, SlidesOpen, SlidesPage, ToolEvent
from moot.room.tools.base import Actor, Refused, Room
from moot.room.tools.slides.state import TOOL, Slides, apply, prepare, view

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
