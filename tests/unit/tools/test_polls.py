"""The polls state machine: one vote per person, changeable until closed; who sees what."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moot.protocol.tools import PollClose, PollCreate, PollVote, ToolEvent, tool_event
from moot.room.tools.base import Actor, Refused, Room
from moot.room.tools.polls.state import TOOL, Polls, apply, prepare, view

MOD = Actor("Mia", "user::mia", "moderator")
ADA = Actor("Ada", "guest:a", "participant")
BEN = Actor("Ben", "guest:b", "participant")
# Ada again, from another tab under the same person: still one vote.
ADA_TAB = Actor("Ada", "guest:a", "participant")


def run(*steps: tuple[ToolEvent, Actor]) -> Polls:
    state = TOOL.initial()
    for event, actor in steps:
        state = apply(state, event, actor)
    return state


CREATE = PollCreate(poll_id="p1", question="Lunch?", options=["Pizza", "Soup", "Salad"])


def test_votes_count_once_per_person_and_the_last_vote_counts() -> None:
    state = run(
        (CREATE, MOD),
        (PollVote(poll_id="p1", choices=[0]), ADA),
        (PollVote(poll_id="p1", choices=[1]), BEN),
        (PollVote(poll_id="p1", choices=[1]), ADA_TAB),
    )
    poll = state.get("p1")
    assert poll.results() == [0, 2, 0]
    assert len(poll.ballots) == 2


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([(CREATE, ADA)], "only a moderator can open a poll"),
        ([(CREATE, MOD), (CREATE, MOD)], "a poll with this id exists already"),
        ([(PollVote(poll_id="nope", choices=[0]), ADA)], "there is no such poll"),
        ([(CREATE, MOD), (PollVote(poll_id="p1", choices=[5]), ADA)], "no such option"),
        ([(CREATE, MOD), (PollVote(poll_id="p1", choices=[0, 1]), ADA)], "takes one choice"),
        ([(CREATE, MOD), (PollVote(poll_id="p1", choices=[0, 0]), ADA)], "chosen twice"),
        ([(CREATE, MOD), (PollClose(poll_id="p1"), ADA)], "only a moderator can close"),
        (
            [
                (CREATE, MOD),
                (PollClose(poll_id="p1"), MOD),
                (PollVote(poll_id="p1", choices=[0]), ADA),
            ],
            "this poll is closed",
        ),
        (
            [(CREATE, MOD), (PollClose(poll_id="p1"), MOD), (PollClose(poll_id="p1"), MOD)],
            "closed already",
        ),
    ],
)
def test_refusals_say_why(steps: list[tuple[ToolEvent, Actor]], reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        run(*steps)


def test_a_refused_event_leaves_the_state_as_it_was() -> None:
    state = run((CREATE, MOD), (PollVote(poll_id="p1", choices=[0]), ADA))
    with pytest.raises(Refused):
        apply(state, PollVote(poll_id="p1", choices=[9]), ADA)
    assert state.get("p1").results() == [1, 0, 0]


def test_multiple_choice_takes_several() -> None:
    multi = PollCreate(poll_id="m", question="Days?", options=["Mon", "Tue"], multiple=True)
    state = run((multi, MOD), (PollVote(poll_id="m", choices=[1, 0]), ADA))
    assert state.get("m").results() == [1, 1]


def test_results_live_to_moderators_and_to_everyone_once_closed() -> None:
    state = run((CREATE, MOD), (PollVote(poll_id="p1", choices=[2]), ADA))
    assert view(state, MOD)["polls"][0]["results"] == [0, 0, 1]
    assert view(state, BEN)["polls"][0]["results"] is None
    assert view(state, ADA)["polls"][0]["mine"] == [2]
    assert view(state, BEN)["polls"][0]["mine"] == []
    closed = apply(state, PollClose(poll_id="p1"), MOD)
    assert view(closed, BEN)["polls"][0]["results"] == [0, 0, 1]
    assert view(closed, BEN)["polls"][0]["open"] is False


def test_names_only_in_a_named_poll() -> None:
    named = PollCreate(poll_id="n", question="Who?", options=["Yes", "No"], anonymous=False)
    state = run((named, MOD), (PollVote(poll_id="n", choices=[0]), ADA), (CREATE, MOD))
    polls = view(state, MOD)["polls"]
    assert polls[0]["names"] == [["Ada"], []]
    assert polls[1]["names"] is None  # anonymous
    assert view(state, BEN)["polls"][0]["names"] is None  # open: not to participants


def test_closing_keeps_the_results_and_a_named_polls_ballots() -> None:
    named = PollCreate(poll_id="n", question="Who?", options=["Yes", "No"], anonymous=False)
    state = run(
        (named, MOD),
        (CREATE, MOD),
        (PollVote(poll_id="n", choices=[1]), BEN),
        (PollVote(poll_id="p1", choices=[0]), BEN),
    )
    closing = prepare(state, PollClose(poll_id="n"), MOD, Room())
    assert isinstance(closing, PollClose)
    assert closing.results == [0, 1] and closing.ballots == {"Ben": [1]}
    anonymous = prepare(state, PollClose(poll_id="p1"), MOD, Room())
    assert isinstance(anonymous, PollClose)
    assert anonymous.results == [1, 0, 0] and anonymous.ballots == {}


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "poll.create", "poll_id": "x", "question": "Q", "options": ["only one"]},
        {
            "kind": "poll.create",
            "poll_id": "x",
            "question": "Q",
            "options": [str(i) for i in range(11)],
        },
        {"kind": "poll.create", "poll_id": "x", "question": "Q" * 301, "options": ["a", "b"]},
        {"kind": "poll.create", "poll_id": "x", "question": "Q", "options": ["a", "A"]},
        {"kind": "poll.create", "poll_id": "x", "question": "  ", "options": ["a", "b"]},
        {"kind": "poll.create", "poll_id": "x y", "question": "Q", "options": ["a", "b"]},
        {"kind": "poll.vote", "poll_id": "x", "choices": []},
        {"kind": "poll.launch", "poll_id": "x"},
    ],
    ids=[
        "one-option",
        "eleven",
        "long-question",
        "same-option",
        "blank",
        "bad-id",
        "no-choice",
        "unknown",
    ],
)
def test_bad_events_are_refused_before_the_state_machine(event: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        tool_event.validate_python(event)
