"""The meeting engine's fan-out: roster changes, one serialisation for many, slow pages.

The engine runs here on a real event loop with in-memory sockets: a socket that takes
what it is sent, and one that never does (a browser that stopped reading).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from moot.infra.tokens import Role
from moot.protocol.client import ChatLine, Welcome
from moot.protocol.control import JournalEntry, OpenMeeting, Participant, ParticipantLeft
from moot.room import connection as connection_module
from moot.room.connection import CLOSE_TOO_SLOW, MAX_BACKLOG, Connection
from moot.room.host import FULL_ROSTER_EVERY, MeetingHost


class Socket:
    """A browser's socket that reads everything at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str | None] | None = None

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == kind]


class StuckSocket(Socket):
    """A browser that stopped reading: the first send never completes."""

    def __init__(self) -> None:
        super().__init__()
        self.never = asyncio.Event()

    async def send_text(self, data: str) -> None:
        await self.never.wait()


def open_meeting(host: MeetingHost, history: int = 0) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    host.open(
        OpenMeeting(
            request_id="r1",
            meeting_id="m1",
            epoch=1,
            name="Weekly",
            moderator="Alice",
            history=[
                JournalEntry(
                    event_id=f"e{i}", sender="Alice", kind="chat", body={"text": f"{i}"}, at=at
                )
                for i in range(history)
            ],
        )
    )


def join(
    host: MeetingHost, user: str, role: Role = "participant", socket: Socket | None = None
) -> tuple[Connection, Socket]:
    socket = socket or Socket()
    conn = Connection(channel=socket, user=user, role=role)
    host.join("m1", conn)
    return conn, socket


async def settle() -> None:
    """Let the writers run until every queue is empty (stuck sockets aside)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_newcomer_gets_the_roster_and_the_others_only_the_change() -> None:
    host = MeetingHost()
    open_meeting(host)
    _, alice = join(host, "Alice", "moderator")
    _, bob = join(host, "Bob")
    await settle()

    welcome = bob.of("welcome")[0]
    assert [p["user"] for p in welcome["roster"]] == ["Alice", "Bob"]
    assert alice.of("joined") == [{"type": "joined", "user": "Bob", "role": "participant"}]
    assert bob.of("joined") == []  # its own arrival is in its welcome
    assert alice.of("roster") == bob.of("roster") == []  # no whole roster to either


async def test_a_second_page_of_the_same_person_changes_no_roster() -> None:
    host = MeetingHost()
    open_meeting(host)
    _, alice = join(host, "Alice", "moderator")
    first, _ = join(host, "Bob")
    second, _ = join(host, "Bob")
    host.leave("m1", first)
    await settle()
    assert [m["user"] for m in alice.of("joined")] == ["Bob"]
    assert alice.of("left") == []  # Bob still has a page open

    host.leave("m1", second)
    await settle()
    assert alice.of("left") == [{"type": "left", "user": "Bob"}]
    assert [p.user for p in host.get("m1").roster()] == ["Alice"]
    assert [s.participants for s in host.statuses()] == [
        [Participant(user="Alice", role="moderator")]
    ]


async def test_a_chat_line_is_serialised_once_for_the_whole_meeting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = MeetingHost()
    open_meeting(host)
    sockets = [join(host, f"user{i}")[1] for i in range(50)]
    conn = next(iter(host.get("m1").connections))
    dumps = 0
    original = ChatLine.model_dump_json

    def counting(self: ChatLine, **kwargs: Any) -> str:
        nonlocal dumps
        dumps += 1
        return original(self, **kwargs)

    monkeypatch.setattr(ChatLine, "model_dump_json", counting)
    await host.chat("m1", conn, "c1", "hello")
    await settle()
    assert dumps == 1
    assert all(s.of("chat")[0]["text"] == "hello" for s in sockets)


async def test_a_page_that_stopped_reading_holds_up_nobody_and_is_dropped() -> None:
    host = MeetingHost()
    # Bob sends more lines than a person may a minute by default: lift the chat rate.
    host.apply_config(1, {"max_chat_lines_per_minute": 1_000_000})
    open_meeting(host)
    _, alice = join(host, "Alice", "moderator")
    stuck_conn, stuck = join(host, "Sam", socket=StuckSocket())
    sender, bob = join(host, "Bob")
    await settle()

    for i in range(MAX_BACKLOG + 5):
        await host.chat("m1", sender, f"b{i}", f"line {i}")
        await asyncio.sleep(0)  # as the journal's round trip would: the writers run
    await settle()

    # Everyone else got every line, while Sam's socket took nothing at all.
    assert len(alice.of("chat")) == len(bob.of("chat")) == MAX_BACKLOG + 5
    assert stuck_conn.behind and stuck_conn.closing
    assert stuck_conn not in host.get("m1").connections
    assert alice.of("left") == [{"type": "left", "user": "Sam"}]
    assert [p.user for p in host.get("m1").roster()] == ["Alice", "Bob"]
    assert any(isinstance(e, ParticipantLeft) and e.user == "Sam" for e in host.outbox)

    # Once the socket takes data again, it gets the close that says why.
    stuck.never.set()
    await asyncio.wait_for(stuck_conn.drained(), 5)
    assert stuck.closed == (CLOSE_TOO_SLOW, "too far behind: rejoin")


async def test_a_client_without_roster_changes_gets_the_whole_roster_at_most_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("moot.room.host.FULL_ROSTER_EVERY", 0.2)
    host = MeetingHost()
    open_meeting(host)
    old = Socket()
    host.join("m1", Connection(channel=old, user="Olga", role="moderator", roster_changes=False))
    await asyncio.sleep(0.05)
    for i in range(10):  # ten arrivals in a burst
        join(host, f"user{i}")
    await asyncio.sleep(0.5)

    rosters = old.of("roster")
    assert 1 <= len(rosters) <= 3, rosters  # not one per arrival
    assert len(rosters[-1]["roster"]) == 11  # the last says how it is now
    assert old.of("joined") == []
    assert FULL_ROSTER_EVERY == 1.0  # the documented default


async def test_welcome_is_what_the_model_would_send() -> None:
    host = MeetingHost()
    open_meeting(host, history=3)
    join(host, 'Mallory","history":[]', "participant")
    _, bob = join(host, "Bob")
    await settle()
    meeting = host.get("m1")
    you = Participant(user="Bob", role="participant")
    expected = Welcome(
        meeting_id="m1",
        meeting_name="Weekly",
        you=you,
        roster=meeting.roster(),
        history=meeting.history,
        files=[],
    )
    assert json.loads(meeting.welcome_json(you)) == json.loads(expected.model_dump_json())
    assert bob.of("welcome")[0]["history"][2]["text"] == "2"


async def test_closing_a_meeting_waits_for_no_page(monkeypatch: pytest.MonkeyPatch) -> None:
    host = MeetingHost()
    open_meeting(host)
    _, alice = join(host, "Alice", "moderator")
    stuck_conn, _ = join(host, "Sam", socket=StuckSocket())
    host.close("m1", "ended by Alice", ended_by="Alice")  # returns at once
    await settle()
    assert alice.of("ended") == [{"type": "ended", "reason": "ended by Alice"}]
    assert alice.closed == (1000, "meeting ended")
    assert stuck_conn.closing
    assert connection_module.CLOSE_TOO_SLOW == 4408
