"""Protocol messages survive a round trip through JSON; malformed ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError

from moot.protocol import PROTOCOL_VERSION, is_compatible
from moot.protocol.client import EndMeeting, Ping, Pong, SendChat, parse_client
from moot.protocol.control import (
    CloseMeeting,
    CommandResult,
    MeetingEnded,
    MeetingStatus,
    OpenMeeting,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    Refused,
    Register,
    Registered,
    ServerLimits,
    ShuttingDown,
    Status,
    parse_down,
    parse_up,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LIMITS = ServerLimits(max_active_meetings=10, max_users_per_meeting=50, instant_meetings=None)
MEETING = MeetingStatus(
    meeting_id="m1",
    epoch=2,
    participants=[Participant(user="Alice", role="moderator")],
    tools=["chat"],
)

UP: list[BaseModel] = [
    Register(
        name="room1",
        url="http://127.0.0.1:8081",
        protocol_version=PROTOCOL_VERSION,
        secret="s",
        limits=LIMITS,
        meetings=[MEETING],
    ),
    Status(seq=7, meetings=[MEETING], logins=1, cpu_percent=12.5, memory_percent=40.0),
    ParticipantJoined(meeting_id="m1", epoch=2, user="Bob", role="participant", at=NOW),
    ParticipantLeft(meeting_id="m1", epoch=2, user="Bob", at=NOW),
    MeetingEnded(meeting_id="m1", epoch=2, ended_by="Alice", at=NOW),
    CommandResult(request_id="r1", ok=False, error="full"),
    ShuttingDown(),
]
DOWN: list[BaseModel] = [
    Registered(heartbeat_interval=1.0, join_token_public_key="PEM", limits=LIMITS),
    Refused(reason="wrong cluster secret"),
    OpenMeeting(
        request_id="r1", meeting_id="m1", epoch=1, name="Standup", moderator="Alice", tools=["chat"]
    ),
    CloseMeeting(request_id="r2", meeting_id="m1", reason="ended"),
]


@pytest.mark.parametrize("message", UP, ids=lambda m: type(m).__name__)
def test_up_messages_round_trip(message: BaseModel) -> None:
    assert parse_up(message.model_dump_json()) == message


@pytest.mark.parametrize("message", DOWN, ids=lambda m: type(m).__name__)
def test_down_messages_round_trip(message: BaseModel) -> None:
    assert parse_down(message.model_dump_json()) == message


def test_every_envelope_names_its_type() -> None:
    for message in UP + DOWN:
        assert '"type":' in message.model_dump_json()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"type": "no_such_message"}',
        '{"type": "status", "seq": 1}',
        '{"type": "shutting_down", "extra": 1}',
    ],
)
def test_malformed_messages_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        parse_up(raw)


def test_down_parser_refuses_up_messages() -> None:
    with pytest.raises(ValidationError):
        parse_down(ShuttingDown().model_dump_json())


def test_client_messages() -> None:
    assert parse_client('{"type":"chat","id":"e1","text":"hi"}') == SendChat(id="e1", text="hi")
    assert parse_client('{"type":"end_meeting"}') == EndMeeting()
    assert parse_client('{"type":"ping"}') == Ping()
    assert Pong().model_dump_json() == '{"type":"pong"}'
    with pytest.raises(ValidationError):
        parse_client('{"type":"chat","id":"e1","text":""}')
    with pytest.raises(ValidationError):
        parse_client('{"type":"chat","id":"e1","text":"' + "x" * 2001 + '"}')


@pytest.mark.parametrize(
    ("version", "ok"), [("1.0", True), ("1.7", True), ("2.0", False), ("0.9", False), ("x", False)]
)
def test_only_the_same_major_version_is_compatible(version: str, ok: bool) -> None:
    assert is_compatible(version) is ok
