"""How the recording plays a tool's journal rows: what the live meeting withheld stays
withheld, each sender is a stand-in, and a tool the EMS does not know is still a line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moot.ems.recording_events import Anonymizer, played
from moot.ems.store.models import JournalRow


def row(sender: str, person: str, event: dict[str, Any], role: str = "participant") -> JournalRow:
    return JournalRow(
        meeting_id="m1",
        epoch=1,
        event_id="e",
        sender=sender,
        kind=str(event["kind"]).split(".")[0],
        body={"event": event, "person": person, "role": role},
        at=datetime.now(UTC),
    )


def test_an_anonymous_polls_votes_name_nobody_and_show_no_choice() -> None:
    anonymizer = Anonymizer()
    create = {"kind": "poll.create", "poll_id": "q", "question": "Lunch?", "options": ["A", "B"]}
    opened = played(row("Mia", "u-mia", create, "moderator"), anonymizer)
    assert opened.line == "Mia opened a poll: Lunch?"
    ada = row("Ada", "u-ada", {"kind": "board.add", "page": 0, "element": {"id": "s1"}})
    stroke = played(ada, anonymizer)
    vote = played(
        row("Ada", "u-ada", {"kind": "poll.vote", "poll_id": "q", "choices": [1]}), anonymizer
    )
    assert (vote.user, vote.line, vote.event) == ("", "", {"kind": "poll.vote", "poll_id": "q"})
    # Her stand-in on the board is not her stand-in as a voter (that would name her).
    assert stroke.actor == "p2" and vote.actor not in ("p1", "p2")
    again = played(
        row("Ada", "u-ada", {"kind": "poll.vote", "poll_id": "q", "choices": [0]}), anonymizer
    )
    assert again.actor == vote.actor  # one voter, however often she changes her vote
    closed = played(
        row("Mia", "u-mia", {"kind": "poll.close", "poll_id": "q", "results": [1, 0]}), anonymizer
    )
    assert closed.line == "Mia closed the poll “Lunch?”: A 1, B 0"


def test_a_named_polls_vote_names_its_voter_and_person_ids_never_show() -> None:
    anonymizer = Anonymizer()
    create = {"kind": "poll.create", "poll_id": "n", "question": "Who?", "options": ["A", "B"]}
    played(row("Mia", "u-mia", {**create, "anonymous": False}, "moderator"), anonymizer)
    vote = played(
        row("Ada", "u-ada", {"kind": "poll.vote", "poll_id": "n", "choices": [0]}), anonymizer
    )
    assert (vote.user, vote.actor) == ("Ada", "p2")
    removed = played(
        row("Mia", "u-mia", {"kind": "moderation.remove", "user": "Ada", "person": "u-ada"}),
        anonymizer,
    )
    assert "person" not in removed.event and "u-ada" not in removed.line
    assert removed.line == "Mia removed Ada from the meeting"


def test_a_tool_the_ems_does_not_know_is_a_line_naming_its_event() -> None:
    event = {"kind": "presentation.show_page", "page": 7, "file_id": "f1", "big": [1, 2]}
    shown = played(row("Mia", "u-mia", event, "moderator"), Anonymizer())
    assert shown.line == "Mia: presentation.show_page (page 7, file_id f1)"
    assert shown.event == event


def test_roles_and_mutes_name_people_by_name_only() -> None:
    anonymizer = Anonymizer()
    grant = {"kind": "moderation.grant", "user": "Ada", "role": "presenter", "person": "u-ada"}
    made = played(row("Mia", "u-mia", grant, "moderator"), anonymizer)
    assert made.line == "Mia made Ada presenter" and "person" not in made.event
    everyone = {"kind": "moderation.mute_all", "people": {"u-ada": "Ada", "u-bob": "Bob"}}
    muted = played(row("Mia", "u-mia", everyone, "moderator"), anonymizer)
    assert muted.event["people"] == ["Ada", "Bob"]
    assert muted.line == "Mia muted everyone but the moderators"
    several = played(row("Mia", "u-mia", {"kind": "moderation.screens", "many": True}), anonymizer)
    assert several.line == "Mia let several people share a screen at once"


def test_presentations_and_web_pages_are_lines_of_their_own() -> None:
    events = [
        (
            {"kind": "slides.open", "file_id": 7, "pages": 9, "name": "Plan.pdf"},
            "Mia presented Plan.pdf",
        ),
        ({"kind": "slides.page", "page": 6}, "The presentation shows page 7"),
        ({"kind": "board.clear", "page": 0, "slide": "7:6"}, "Mia cleared the notes on a slide"),
        (
            {"kind": "web.share", "url": "https://a.example/", "frameable": True, "reason": ""},
            "Mia sent the web page https://a.example/",
        ),
        ({"kind": "web.close"}, "Mia took the web page off the stage"),
        ({"kind": "slides.close"}, "Mia closed the presentation"),
    ]
    for event, line in events:
        assert played(row("Mia", "u-mia", event, "moderator"), Anonymizer()).line == line
