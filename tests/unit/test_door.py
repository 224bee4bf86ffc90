"""The EMS's door (ems/door.py) decides from journaled moderation events as the room
server's state machine does (room/tools/moderation): the same events, the same answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from moot.ems.door import LOCKED_TEXT, REMOVED_TEXT, Door, granted, refusal
from moot.infra.tokens import Role
from moot.protocol.tools import (
    Grant,
    Lock,
    NewOccurrence,
    Readmit,
    Remove,
    TakeBack,
    ToolEvent,
    ToolRecord,
    Unlock,
)
from moot.room.tools.base import Actor, Room
from moot.room.tools.moderation import state as moderation

MOD = Actor("Mia", "user::mia", "moderator")
ROOM = Room({"mia": ("user::mia", "moderator", "Mia"), "ada": ("guest:a", "participant", "Ada")})
LOCK, UNLOCK = Lock(), Unlock()
REMOVE, READMIT = Remove(user="Ada"), Readmit(user="Ada")
# Ada made moderator, then away when the meeting is locked: she still enters.
GRANT, TAKE_BACK, AWAY = Grant(user="Ada", role="moderator"), TakeBack(user="Ada"), "away"
NEW = NewOccurrence()


def journaled(events: list[ToolEvent | str]) -> tuple[list[dict[str, Any]], moderation.Moderation]:
    """The rows' bodies the room server journals, and its state after them."""
    bodies, state, room = [], moderation.TOOL.initial(), ROOM
    for event in events:
        if isinstance(event, str):  # AWAY: Ada leaves, not in at a lock from now on
            room = Room({"mia": ROOM.people["mia"]})
            continue
        if not isinstance(event, NewOccurrence):  # the EMS journals it, unprepared
            event = moderation.prepare(state, event, MOD, room)
        state = moderation.apply(state, event, MOD)
        record = ToolRecord(event=event, person=MOD.person, role=MOD.role)
        bodies.append(record.model_dump(mode="json"))
    return bodies, state


@pytest.mark.parametrize(
    "events",
    [
        [],
        [LOCK],
        [LOCK, UNLOCK],
        [REMOVE],
        [REMOVE, READMIT],
        [LOCK, REMOVE],
        [REMOVE, READMIT, LOCK],
        [GRANT, AWAY, LOCK],
        [GRANT, TAKE_BACK, AWAY, LOCK],
        [GRANT, AWAY, LOCK, NEW],
        [REMOVE, NEW],
        [LOCK, NEW],
    ],
)
@pytest.mark.parametrize(
    ("person", "role"),
    [("guest:a", "participant"), ("guest:new", "participant"), ("guest:new", "moderator")],
)
def test_the_ems_and_the_room_server_agree(
    events: list[ToolEvent | str], person: str, role: Role
) -> None:
    bodies, state = journaled(events)
    assert refusal(bodies, person, role) == moderation.admits(state, person, role)


def test_the_words_are_the_room_servers() -> None:
    assert (LOCKED_TEXT, REMOVED_TEXT) == (moderation.LOCKED_TEXT, moderation.REMOVED_TEXT)
    bodies, _ = journaled([REMOVE])
    assert refusal(bodies, "guest:a", "participant") == REMOVED_TEXT


def test_the_door_reads_again_after_a_moderation_event_even_one_stored_mid_read() -> None:
    """Door keeps a meeting's events between attends; a lock stored while it was reading
    them is not hidden behind the older answer."""
    locked, _ = journaled([LOCK])
    journal: list[dict[str, Any]] = []
    reads = 0
    reading = asyncio.Event()
    go_on = asyncio.Event()

    async def read(meeting_id: str) -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        seen = list(journal)
        reading.set()
        await go_on.wait()
        return seen

    async def scenario() -> None:
        door = Door(sessions=None, read=read)  # type: ignore[arg-type]
        go_on.set()
        assert await door.check("m1", "guest:new", "participant") == ""
        assert await door.check("m1", "guest:new", "participant") == ""
        assert reads == 1  # kept between attends

        # A lock is stored while the door is reading: that read must not be kept.
        go_on.clear()
        reading.clear()
        door.forget("m1")
        pending = asyncio.create_task(door.check("m1", "guest:new", "participant"))
        await reading.wait()
        journal.extend(locked)
        door.forget("m1")
        go_on.set()
        assert await pending == ""  # read before the lock
        assert await door.check("m1", "guest:new", "participant") == LOCKED_TEXT
        assert reads == 3

    asyncio.run(scenario())


def test_attends_in_flight_wait_for_one_read() -> None:
    """Tens of attends of one meeting find its entry old at once: the store is read once."""
    reads = 0

    async def read(meeting_id: str) -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return []

    async def scenario() -> None:
        door = Door(sessions=None, read=read)  # type: ignore[arg-type]
        answers = await asyncio.gather(
            *(door.check("m1", f"guest:{n}", "participant") for n in range(50))
        )
        assert answers == [""] * 50
        assert reads == 1

    asyncio.run(scenario())


PRESENTER = Grant(user="Ada", role="presenter")


@pytest.mark.parametrize(
    "events",
    [
        [],
        [PRESENTER],
        [GRANT],
        [PRESENTER, GRANT],
        [GRANT, PRESENTER],
        [PRESENTER, TAKE_BACK],
        [PRESENTER, REMOVE],
        [PRESENTER, NEW],
        [PRESENTER, TAKE_BACK, GRANT],
    ],
)
def test_the_ems_sees_the_roles_the_room_server_granted(events: list[ToolEvent | str]) -> None:
    """Who may upload from the meeting page: the EMS folds the grants as the room does."""
    bodies, state = journaled(events)
    room_says = state.granted.get("guest:a", ("", ""))[1]
    assert granted(bodies, "guest:a") == room_says
    assert granted(bodies, "guest:new") == ""
