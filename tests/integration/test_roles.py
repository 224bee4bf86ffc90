"""Moderator controls with a real EMS and room servers: make presenter, make moderator,
take back, mute, end for all by a granted moderator; a new occurrence of a repeating
meeting starts unlocked with nobody removed; a bad event's refusal names its field."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from moot.ems.store import occurrences
from moot.ems.store.db import create_engine, session_factory
from moot.harness import Cluster
from tests.integration.test_tools import POLL, Person, new_meeting

pytestmark = pytest.mark.processes


def page_role(person: Person) -> str:
    """The role the meeting page is served with (a reload), from its `data-role`."""
    url = person.socket_url.replace("ws://", "http://").replace("/ws?token", "?token")
    page = httpx.get(url, timeout=5)
    assert page.status_code == 200, page.text
    return page.text.split('data-role="', 1)[1].split('"', 1)[0]


def you(person: Person) -> dict[str, Any]:
    found: dict[str, Any] = person.states["moderation"]["you"]
    return found


def test_grants_count_at_once_survive_a_reload_and_a_take_back_ends_them(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster)

    async def scenario() -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        bob = Person(shared_cluster, meeting["id"], "Bob")
        for person in (mia, ada, bob):
            await person.connect()
            await person.settle()
        assert you(ada) == {"role": "participant", "muted": False}
        await ada.act("l0", {"kind": "moderation.lock"})
        assert ada.errors["l0"] == "only a moderator can lock the meeting"

        await mia.act("g1", {"kind": "moderation.grant", "user": "ada", "role": "moderator"})
        await ada.read_until(lambda: you(ada)["role"] == "moderator")
        await ada.act("p1", POLL)  # a moderator's action, acknowledged
        assert "p1" in ada.acked
        await ada.act("g2", {"kind": "moderation.grant", "user": "Bob", "role": "presenter"})
        await bob.read_until(lambda: you(bob)["role"] == "presenter")
        assert bob.states["moderation"]["roles"] == {"Ada": "moderator", "Bob": "presenter"}
        await bob.act("l1", {"kind": "moderation.lock"})
        assert bob.errors["l1"] == "only a moderator can lock the meeting"
        # The meeting's own moderator keeps her role; a granted one cannot take it.
        await ada.act("t0", {"kind": "moderation.take_back", "user": "Mia"})
        assert "that stays" in ada.errors["t0"]

        # A reload: the same token, the role from the room server's state.
        assert (page_role(ada), page_role(bob), page_role(mia)) == (
            "moderator",
            "presenter",
            "moderator",
        )
        await bob.close()
        await bob.connect()
        await bob.settle()
        assert you(bob)["role"] == "presenter"

        # Mute: moderators mute, only the person unmutes.
        await mia.act("m1", {"kind": "moderation.mute", "user": "Bob"})
        await bob.read_until(lambda: you(bob)["muted"])
        await mia.act("u0", {"kind": "moderation.unmute"})
        assert mia.errors["u0"] == "you are not muted"
        await bob.act("u1", {"kind": "moderation.unmute"})
        assert not you(bob)["muted"]
        await mia.act("m2", {"kind": "moderation.mute_all"})
        await bob.read_until(lambda: you(bob)["muted"])
        assert mia.states["moderation"]["muted"] == ["Bob"]  # not the moderators

        await mia.act("t1", {"kind": "moderation.take_back", "user": "Ada"})
        await ada.read_until(lambda: you(ada)["role"] == "participant")
        await ada.act("l2", {"kind": "moderation.lock"})
        assert ada.errors["l2"] == "only a moderator can lock the meeting"
        assert page_role(ada) == "participant"
        for person in (mia, ada, bob):
            await person.close()

    asyncio.run(scenario())


def test_a_granted_moderator_ends_the_meeting_for_all(shared_cluster: Cluster) -> None:
    meeting = new_meeting(shared_cluster)

    async def scenario() -> dict[str, Any]:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        for person in (mia, ada):
            await person.connect()
        assert ada.ws is not None and mia.ws is not None
        await ada.ws.send(json.dumps({"type": "end_meeting"}))
        refused: dict[str, Any] = {}
        while refused.get("type") != "error":
            refused = json.loads(await asyncio.wait_for(ada.ws.recv(), 5))
        assert refused["message"] == "only a moderator can end the meeting"
        await mia.act("g", {"kind": "moderation.grant", "user": "Ada", "role": "moderator"})
        await ada.ws.send(json.dumps({"type": "end_meeting"}))
        ended: dict[str, Any] = {}
        while ended.get("type") != "ended":
            ended = json.loads(await asyncio.wait_for(mia.ws.recv(), 5))
        for person in (mia, ada):
            await person.close()
        return ended

    ended = asyncio.run(scenario())
    assert ended["reason"] == "ended by Ada"
    for _ in range(50):
        row = httpx.get(f"{shared_cluster.ems_url}/api/v1/meetings/{meeting['id']}").json()
        if row["status"] == "ended":
            break
        time.sleep(0.1)
    assert row["status"] == "ended"


def test_a_new_occurrence_starts_unlocked_with_nobody_removed(shared_cluster: Cluster) -> None:
    """A daily meeting whose first occurrence ends seconds from now: locked, Ada removed and
    Bob made moderator in it; the next occurrence (moved to now) has none of it."""
    now = datetime.now(UTC)
    start = now - timedelta(seconds=50)  # within the EMS's slack for a start just past
    meeting = new_meeting(
        shared_cluster,
        start=start.isoformat(),
        duration_minutes=1,
        recurrence="FREQ=DAILY;COUNT=3",
        timezone="UTC",
    )
    ems, mid = shared_cluster.ems_url, meeting["id"]

    async def first() -> Person:
        mia = Person(shared_cluster, mid, "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, mid, "Ada")
        bob = Person(shared_cluster, mid, "Bob")
        for person in (mia, ada, bob):
            await person.connect()
        await mia.act("g", {"kind": "moderation.grant", "user": "Bob", "role": "moderator"})
        await mia.act("r", {"kind": "moderation.remove", "user": "Ada"})
        await mia.act("l", {"kind": "moderation.lock"})
        assert {"g", "r", "l"} <= mia.acked
        for person in (mia, bob):
            await person.close()
        return ada

    ada = asyncio.run(first())
    refused = httpx.get(f"{ems}/m/{mid}", params={"name": "Ada"}, cookies=ada.cookies)
    assert refused.status_code == 403 and "removed you" in refused.text
    # The occurrence is over (its time, and nobody left in it): the meeting waits.
    deadline = time.monotonic() + 30
    while httpx.get(f"{ems}/api/v1/meetings/{mid}").json()["status"] != "scheduled":
        assert time.monotonic() < deadline, "the occurrence did not close"
        time.sleep(0.25)
    # The next occurrence, moved to now.
    moved = httpx.post(
        f"{ems}/api/v1/meetings/{mid}/exceptions",
        json={
            "original_start": (start + timedelta(days=1)).isoformat(),
            "start": datetime.now(UTC).isoformat(),
        },
        headers=shared_cluster.admin,
        timeout=5,
    )
    assert moved.status_code in (200, 201), moved.text

    async def second() -> None:
        back = Person(shared_cluster, mid, "Ada")  # admitted: a new Person asserts the 303
        zoe = Person(shared_cluster, mid, "Zoe")  # a newcomer: not locked out
        for person in (back, zoe):
            await person.connect()
            await person.settle()
        state = zoe.states["moderation"]
        assert (state["locked"], state["roles"], state["muted"]) == (False, {}, [])
        await back.act("l", {"kind": "moderation.lock"})  # Bob's grant is gone too
        assert back.errors["l"] == "only a moderator can lock the meeting"
        for person in (back, zoe):
            await person.close()

    asyncio.run(second())


def test_end_for_all_in_a_repeating_meeting_closes_this_occurrence_and_the_series_goes_on(
    shared_cluster: Cluster,
) -> None:
    """The moderator ends a daily meeting for all: this occurrence closes early (recorded),
    nobody gets back into it, and the next occurrence opens as it should."""
    now = datetime.now(UTC)
    start = (now - timedelta(seconds=50)).replace(microsecond=0)
    meeting = new_meeting(
        shared_cluster,
        start=start.isoformat(),
        duration_minutes=60,
        recurrence="FREQ=DAILY;COUNT=3",
        timezone="UTC",
    )
    ems, mid = shared_cluster.ems_url, meeting["id"]

    async def end_for_all() -> dict[str, Any]:
        mia = Person(shared_cluster, mid, "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, mid, "Ada")
        for person in (mia, ada):
            await person.connect()
        assert mia.ws is not None and ada.ws is not None
        await mia.ws.send(json.dumps({"type": "end_meeting"}))
        ended: dict[str, Any] = {}
        while ended.get("type") != "ended":
            ended = json.loads(await asyncio.wait_for(ada.ws.recv(), 5))
        for person in (mia, ada):
            await person.close()
        return ended

    assert asyncio.run(end_for_all())["reason"] == "ended by Mia"
    deadline = time.monotonic() + 30
    while (status := httpx.get(f"{ems}/api/v1/meetings/{mid}").json()["status"]) != "scheduled":
        assert status != "ended", "the whole series ended"
        assert time.monotonic() < deadline, "the occurrence did not close"
        time.sleep(0.1)

    async def in_store() -> tuple[list[Any], list[str], Any]:
        engine = create_engine(shared_cluster.database_url)
        try:
            async with session_factory(engine)() as session:
                later = datetime.now(UTC) + timedelta(minutes=1)
                return (
                    await occurrences.closed_early(session, mid),
                    await occurrences.due_to_open(session, later),
                    await occurrences.current(session, mid, later, timedelta(0)),
                )
        finally:
            await engine.dispose()

    closed, due, current = asyncio.run(in_store())
    # The record: this occurrence (named by its start) closed early, by Mia.
    assert [(c.original_start, c.closed_by) for c in closed] == [(start, "Mia")]
    # The meeting clock and attendees do not open it again before its end.
    assert mid not in due and current is None
    lobby = httpx.get(f"{ems}/m/{mid}", params={"name": "Zoe"}, timeout=5)
    assert lobby.status_code == 200 and "This meeting opens at" in lobby.text
    assert (start + timedelta(days=1)).strftime("%Y-%m-%d %H:%M") in lobby.text
    assert httpx.get(f"{ems}/api/v1/meetings/{mid}").json()["status"] == "scheduled"

    # The next occurrence (moved to now) opens: the series goes on.
    moved = httpx.post(
        f"{ems}/api/v1/meetings/{mid}/exceptions",
        json={"original_start": (start + timedelta(days=1)).isoformat(), "start": now.isoformat()},
        headers=shared_cluster.admin,
        timeout=5,
    )
    assert moved.status_code in (200, 201), moved.text
    Person(shared_cluster, mid, "Zoe")  # admitted: a new Person asserts the 303
    assert httpx.get(f"{ems}/api/v1/meetings/{mid}").json()["status"] == "in_progress"


def test_a_bad_event_is_refused_with_its_id_and_field_and_too_fast_is_said(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster, tools=["chat", "polls", "whiteboard"])

    async def scenario() -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        await mia.connect()
        wide: dict[str, Any] = {
            "kind": "board.add",
            "page": 0,
            "element": {"id": "w", "shape": "pen", "points": [[1, 1]], "width": 99},
        }
        long_stroke: dict[str, Any] = {
            "kind": "board.add",
            "page": 0,
            "element": {"id": "p", "shape": "pen", "points": [[1, 1]] * 2001},
        }
        far_page = {**wide, "page": 20, "element": {**wide["element"], "width": 4}}
        long_question = {**POLL, "question": "Q" * 301}
        cases: dict[str, tuple[dict[str, Any], str]] = {
            "e1": (wide, "element width: Input should be less than or equal to 40"),
            "e2": (long_stroke, "element points: List should have at most 2000 items"),
            "e3": (far_page, "page: Input should be less than 20"),
            "e4": (long_question, "question: String should have at most 300 characters"),
        }
        for event_id, (event, _) in cases.items():
            await mia.act(event_id, event)
        for event_id, (_, reason) in cases.items():
            assert mia.errors[event_id].startswith(reason), mia.errors[event_id]
        # The board has one page; a board has at most 20.
        for n in range(19):
            await mia.act(f"a{n}", {"kind": "board.add_page"})
        await mia.act("a19", {"kind": "board.add_page"})
        assert mia.errors["a19"] == "a board has at most 20 pages"
        # Events per person: 120 a minute, ten seconds' worth at once, then "too fast".
        for n in range(30):
            await mia.send(f"h{n}", {"kind": "hand.raise" if n % 2 == 0 else "hand.lower"})
        await mia.read_until(
            lambda: any(e.startswith("you are sending") for e in mia.errors.values())
        )
        await mia.close()

    asyncio.run(scenario())
    events = httpx.get(
        f"{shared_cluster.ems_url}/api/v1/meetings/{meeting['id']}/polls",
        headers=shared_cluster.admin,
        timeout=5,
    ).json()
    assert events == []  # nothing of the refused poll was stored
