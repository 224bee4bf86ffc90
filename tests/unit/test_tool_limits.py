"""Item 11's limits as a page meets them: each bad event is refused with the field at fault
(room/texts.invalid_text) and its id (message_id), so the page drops it and says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from moot.protocol.client import parse_client
from moot.room.texts import invalid_text, message_id

PEN = {"id": "a", "shape": "pen", "points": [[1, 1]]}
POLL = {"kind": "poll.create", "poll_id": "p", "question": "Q", "options": ["a", "b"]}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"kind": "board.add", "page": 0, "element": {**PEN, "width": 41}},
            "element width: Input should be less than or equal to 40",
        ),
        (
            {"kind": "board.add", "page": 0, "element": {**PEN, "points": [[1, 1]] * 2001}},
            "element points: List should have at most 2000 items after validation, not 2001",
        ),
        (
            {"kind": "board.add", "page": 0, "element": {**PEN, "points": [[1601, 1]]}},
            "element points: Input should be less than or equal to 1600",
        ),
        ({"kind": "board.add", "page": 20, "element": PEN}, "page: Input should be less than 20"),
        (
            {**POLL, "options": [str(n) for n in range(11)]},
            "options: List should have at most 10 items after validation, not 11",
        ),
        ({**POLL, "question": "Q" * 301}, "question: String should have at most 300 characters"),
        (
            {**POLL, "options": ["a" * 201, "b"]},
            "options: String should have at most 200 characters",
        ),
        ({**POLL, "options": ["Yes", "yes"]}, "options: two options of a poll are the same"),
        (
            {"kind": "moderation.grant", "user": "Ada", "role": "king"},
            "role: Input should be 'presenter' or 'moderator'",
        ),
    ],
)
def test_each_limit_is_said_with_its_field(event: dict[str, Any], reason: str) -> None:
    text = json.dumps({"type": "tool", "id": "e1", "event": event})
    with pytest.raises(ValidationError) as caught:
        parse_client(text)
    assert invalid_text(caught.value) == reason
    assert message_id(text) == "e1"


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"id": 5}', '{"id": ""}'])
def test_no_id_when_the_message_has_none(text: str) -> None:
    assert message_id(text) is None
