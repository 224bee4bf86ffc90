"""Meeting tools in the meeting engine: refused unless enabled, journaled before shown,
rebuilt from the journal, removal and lock enforced at the door.

The engine runs on a real event loop with in-memory sockets; its journal is a list.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from moot.infra.tokens import Role
from moot.protocol.client import Draw, Pointer
from moot.protocol.control import JournalEntry, OpenMeeting
from moot.protocol.tools import (
    BoardAdd,
    BoardElement,
    HandRaise,
    Lock,
    PollClose,
    PollCreate,
    PollVote,
    Remove,
    ToolRecord,
)
from moot.room.connection import MAX_BACKLOG_BYTES, Connection
from moot.room.host import CLOSE_NOT_ADMITTED, HostedMeeting, MeetingHost, NotAdmitted
from moot.room.tools.moderation.state import LOCKED_TEXT, REMOVED_TEXT
from tests.unit.test_meeting_host import Socket, settle


class Journal:
    """The EMS's journal, in memory: stores what it is given, or (down) nothing."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self.down = False

    async def __call__(self, meeting: HostedMeeting, entry: JournalEntry) -> bool:
        if self.down:
            return False
        self.entries.append(entry)
        return True


def host_with(journal: Journal, tools: list[str], history: list[JournalEntry] = ()) -> MeetingHost:  # type: ignore[assignment]
    host = MeetingHost(journal)
    host.open(
        OpenMeeting(
            request_id="r",
            meeting_id="m1",
            epoch=1,
            name="Weekly",
            moderator="Mia",
            tools=tools,
            history=list(history),
        )
    )
    return host


def join(
    host: MeetingHost, user: str, role: Role = "participant", person: str = ""
) -> tuple[Connection, Socket]:
    socket = Socket()
    conn = Connection(
        channel=socket, user=user, role=role, person=person or f"guest:{user.lower()}"
    )
    host.join("m1", conn)
    return conn, socket


def last_state(socket: Socket, tool: str) -> dict[str, object]:
    state: dict[str, object] = [m for m in socket.of("tool_state") if m["tool"] == tool][-1][
        "state"
    ]
    return state


async def test_a_poll_is_journaled_then_shown_then_acknowledged() -> None:
    journal = Journal()
    host = host_with(journal, ["chat", "polls"])
    mia, mia_socket = join(host, "Mia", "moderator")
    ada, ada_socket = join(host, "Ada")
    create = PollCreate(poll_id="p1", question="Lunch?", options=["Pizza", "Soup"])
    await host.tools.tool_event("m1", mia, "e1", create)
    await host.tools.tool_event("m1", ada, "e2", PollVote(poll_id="p1", choices=[1]))
    await settle()
    assert [e.kind for e in journal.entries] == ["poll", "poll"]
    assert {"type": "ack", "id": "e2"} in ada_socket.sent
    moderator_view = last_state(mia_socket, "poll")["polls"]
    assert moderator_view[0]["results"] == [0, 1]  # type: ignore[index]
    ada_view = last_state(ada_socket, "poll")["polls"]
    assert ada_view[0]["results"] is None and ada_view[0]["mine"] == [1]  # type: ignore[index]
    announced = [m["announce"] for m in ada_socket.of("tool_state") if m["announce"]]
    assert announced == ["Mia opened a poll: Lunch?"]


async def test_a_tool_the_meeting_did_not_enable_is_refused_and_not_journaled() -> None:
    journal = Journal()
    host = host_with(journal, ["chat"])
    mia, socket = join(host, "Mia", "moderator")
    create = PollCreate(poll_id="p1", question="Lunch?", options=["Pizza", "Soup"])
    await host.tools.tool_event("m1", mia, "e1", create)
    await settle()
    errors = socket.of("error")
    assert errors[0]["id"] == "e1" and "does not have polls" in errors[0]["message"]
    assert journal.entries == []
    assert not [m for m in socket.of("tool_state") if m["tool"] == "poll"]  # not even shown


async def test_a_participant_cannot_open_a_poll_and_nothing_is_stored() -> None:
    journal = Journal()
    host = host_with(journal, ["polls"])
    ada, socket = join(host, "Ada")
    create = PollCreate(poll_id="p1", question="Lunch?", options=["Pizza", "Soup"])
    await host.tools.tool_event("m1", ada, "e1", create)
    await settle()
    assert socket.of("error")[0]["message"] == "only a moderator can open a poll"
    assert journal.entries == []


async def test_an_event_the_journal_could_not_store_is_not_shown_and_counts_on_resend() -> None:
    journal = Journal()
    host = host_with(journal, ["polls"])
    ada, socket = join(host, "Ada")
    journal.down = True
    await host.tools.tool_event("m1", ada, "h1", HandRaise())
    await settle()
    assert socket.of("ack") == [] and last_state(socket, "hand") == {"queue": []}
    journal.down = False
    await host.tools.tool_event("m1", ada, "h1", HandRaise())  # the page resends it
    await host.tools.tool_event("m1", ada, "h1", HandRaise())  # twice: dropped, acknowledged
    await settle()
    assert last_state(socket, "hand") == {"queue": ["Ada"]}
    assert len(journal.entries) == 1 and len(socket.of("ack")) == 2


async def test_a_new_room_server_rebuilds_the_same_state_from_the_journal() -> None:
    journal = Journal()
    host = host_with(journal, ["polls"])
    mia, _ = join(host, "Mia", "moderator")
    ada, _ = join(host, "Ada")
    ben, _ = join(host, "Ben")
    await host.tools.tool_event(
        "m1", mia, "1", PollCreate(poll_id="p", question="Q", options=["a", "b"])
    )
    await host.tools.tool_event("m1", ada, "2", PollVote(poll_id="p", choices=[0]))
    await host.tools.tool_event("m1", ben, "3", PollVote(poll_id="p", choices=[1]))
    await host.tools.tool_event("m1", ada, "4", PollVote(poll_id="p", choices=[1]))
    await host.tools.tool_event("m1", ben, "5", HandRaise())
    await host.tools.tool_event(
        "m1", mia, "6", PollCreate(poll_id="q", question="R", options=["c", "d"])
    )
    await host.tools.tool_event("m1", mia, "7", PollClose(poll_id="q"))
    before = dict(host.get("m1").tool_states)

    rebuilt = host_with(Journal(), ["polls"], journal.entries)
    assert rebuilt.get("m1").tool_states == before
    _, socket = join(rebuilt, "Ada")
    await settle()
    polls = last_state(socket, "poll")["polls"]
    assert [p["open"] for p in polls] == [True, False]  # type: ignore[index]
    assert polls[0]["mine"] == [1]  # type: ignore[index]
    assert last_state(socket, "hand") == {"queue": ["Ben"]}
    # An event resent to the new server after the failover is not applied twice.
    ben_again, ben_socket = join(rebuilt, "Ben")
    await rebuilt.tools.tool_event("m1", ben_again, "5", HandRaise())
    await settle()
    assert rebuilt.get("m1").tool_states["hand"] == before["hand"]
    assert ben_socket.of("ack") == [{"type": "ack", "id": "5"}] and not ben_socket.of("error")


async def test_removed_is_put_out_and_refused_at_the_door() -> None:
    journal = Journal()
    host = host_with(journal, ["chat"])
    mia, _ = join(host, "Mia", "moderator")
    _, ada_socket = join(host, "Ada")
    await host.tools.tool_event("m1", mia, "r1", Remove(user="Ada"))
    await settle()
    assert ada_socket.closed == (CLOSE_NOT_ADMITTED, "removed")
    assert ada_socket.of("error")[-1]["message"] == REMOVED_TEXT
    assert [p.user for p in host.get("m1").roster()] == ["Mia"]
    with pytest.raises(NotAdmitted, match="removed you"):
        join(host, "Ada2", person="guest:ada")  # the same person under another name
    rebuilt = host_with(Journal(), ["chat"], journal.entries)
    assert rebuilt.get("m1").admits("guest:ada", "participant") == REMOVED_TEXT


async def test_a_locked_meeting_takes_back_who_was_in_and_no_one_new() -> None:
    host = host_with(Journal(), ["chat"])
    mia, _ = join(host, "Mia", "moderator")
    ada, _ = join(host, "Ada")
    await host.tools.tool_event("m1", mia, "l1", Lock())
    host.leave("m1", ada)
    join(host, "Ada")  # back after a lost connection
    with pytest.raises(NotAdmitted, match="locked"):
        join(host, "Zoe")
    assert host.get("m1").admits("guest:zoe", "moderator") == ""
    assert host.get("m1").admits("guest:zoe", "participant") == LOCKED_TEXT


async def test_a_stroke_is_streamed_live_and_journaled_once_finished() -> None:
    journal = Journal()
    host = host_with(journal, ["whiteboard"])
    ada, ada_socket = join(host, "Ada")
    _, ben_socket = join(host, "Ben")
    drawing = BoardElement(id="s1", shape="pen", points=[(1, 1), (5, 5)])
    host.tools.draw("m1", ada, Draw(page=0, element=drawing))
    await settle()
    assert journal.entries == []  # live: not journaled
    assert [m["user"] for m in ben_socket.of("drawing")] == ["Ada"]
    assert ada_socket.of("drawing") == []  # not echoed to the one drawing
    finished = drawing.model_copy(update={"points": [(1, 1), (5, 5), (9, 9)]})
    await host.tools.tool_event("m1", ada, "b1", BoardAdd(page=0, element=finished))
    await settle()
    assert [e.kind for e in journal.entries] == ["board"]
    [change] = ben_socket.of("tool_delta")
    assert [e["id"] for e in change["delta"]["add"]] == ["s1"]
    assert change["delta"]["add"][0]["points"] == [[1, 1], [5, 5], [9, 9]]
    # A page that joins now gets the whole board.
    _, late = join(host, "Cy")
    await settle()
    assert [e["id"] for e in last_state(late, "board")["items"]] == ["s1"]  # type: ignore[index]


async def test_no_whiteboard_no_strokes() -> None:
    host = host_with(Journal(), ["chat"])
    ada, ada_socket = join(host, "Ada")
    _, ben_socket = join(host, "Ben")
    host.tools.draw("m1", ada, Pointer(page=0, x=5, y=5))
    await settle()
    assert ben_socket.of("drawing") == []
    assert "does not have whiteboard" in ada_socket.of("error")[0]["message"]


async def test_the_heartbeat_reports_the_tools_used_not_those_enabled() -> None:
    host = host_with(Journal(), ["chat", "polls", "whiteboard"])
    mia, _ = join(host, "Mia", "moderator")
    await settle()
    assert host.published[0][0].tools == []
    await host.chat("m1", mia, "c1", "hello")
    await host.tools.tool_event("m1", mia, "h1", HandRaise())  # hands: not a tool of the form
    await settle()
    assert host.published[0][0].tools == ["chat"]
    create = PollCreate(poll_id="p1", question="Lunch?", options=["Pizza", "Soup"])
    await host.tools.tool_event("m1", mia, "p1", create)
    await settle()
    assert host.published[0][0].tools == ["chat", "polls"]


async def test_a_board_larger_than_a_pages_backlog_still_reaches_a_joining_page() -> None:
    """A page may fall 1 MiB behind before it is dropped; a board of 40 long strokes is
    more than that, and a late joiner gets it whole, not dropped as too slow."""
    points = [(1000.5 + i % 500, 500.25) for i in range(2000)]
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    history = [
        JournalEntry(
            event_id=f"s{n}",
            sender="Ada",
            kind="board",
            body=ToolRecord(
                event=BoardAdd(
                    page=0, element=BoardElement(id=f"s{n}", shape="pen", points=points)
                ),
                person="guest:ada",
                role="participant",
            ).model_dump(mode="json"),
            at=at,
        )
        for n in range(40)
    ]
    host = host_with(Journal(), ["whiteboard"], history)
    _, socket = join(host, "Late")
    await settle()
    assert socket.closed is None
    assert len(last_state(socket, "board")["items"]) == 40  # type: ignore[arg-type]
    assert sum(len(json.dumps(m)) for m in socket.sent) > MAX_BACKLOG_BYTES
