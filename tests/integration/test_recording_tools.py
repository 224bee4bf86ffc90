"""The recording plays the meeting tools across a failover: every board, poll and hand event
once, in the order the meetings applied them, whichever room server carried it; what the
live meeting kept from its viewers (an anonymous poll's voters, their choices) is kept from
the recording's too."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
import pytest

from moot.harness import Cluster
from tests.integration.test_tools import Person, new_meeting, stroke

pytestmark = pytest.mark.processes


def test_tool_events_across_a_failover_come_out_once_each_in_order(cluster: Cluster) -> None:
    meeting = new_meeting(cluster, record=True)
    victim = meeting["server"]

    async def scenario() -> None:
        mia = Person(cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(cluster, meeting["id"], "Ada")
        for person in (mia, ada):
            await person.connect()
        for n in range(3):
            await mia.act(f"m{n}", stroke(n))
        for n in range(3, 5):
            await ada.act(f"a{n}", stroke(n))
        await ada.act("u1", {"kind": "board.undo"})  # takes back s4, Ada's
        poll = {"poll_id": "lunch", "question": "Lunch?", "options": ["Soup", "Pie"]}
        await mia.act("p1", {"kind": "poll.create", **poll})
        await ada.act("v1", {"kind": "poll.vote", "poll_id": "lunch", "choices": [1]})
        await ada.act("h1", {"kind": "hand.raise"})
        assert not (mia.errors or ada.errors)

        for process in cluster.processes:
            if process.name == victim:
                process.popen.send_signal(signal.SIGKILL)
        for person in (mia, ada):
            await person.rejoin()
            await person.settle()
        assert [e["id"] for e in mia.states["board"]["items"]] == ["s0", "s1", "s2", "s3"]
        # A stroke acknowledged before the crash, sent again: acknowledged, not stored again.
        await mia.act("m1", stroke(1))
        for n in range(5, 7):
            await mia.act(f"m{n}", stroke(n))
        await mia.act("u2", {"kind": "board.undo"})  # takes back s6
        await ada.act("r1", {"kind": "board.redo"})  # brings back s4
        await mia.act("c1", {"kind": "poll.close", "poll_id": "lunch"})
        await mia.act("h2", {"kind": "hand.lower", "user": "Ada"})
        await mia.act("g1", {"kind": "board.add_page"})
        assert not (mia.errors or ada.errors)
        for person in (mia, ada):
            await person.close()

    asyncio.run(scenario())
    admin = cluster.admin
    base = f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}"
    assert httpx.get(base, timeout=5).json()["server"] != victim
    assert httpx.post(f"{base}/end", headers=admin, timeout=5).status_code == 200

    recording = httpx.get(f"{base}/recording", headers=admin, timeout=10).json()
    first, second = recording["segments"]
    assert first["end_reason"] == f"moved off {victim} (failed)"

    def tools(segment: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [
            (e["user"], e["event"]["kind"], e["event"].get("element", {}).get("id", ""))
            for e in segment["events"]
            if e["event"] is not None
        ]

    assert tools(first) == [
        ("Mia", "board.add", "s0"),
        ("Mia", "board.add", "s1"),
        ("Mia", "board.add", "s2"),
        ("Ada", "board.add", "s3"),
        ("Ada", "board.add", "s4"),
        ("Ada", "board.undo", ""),
        ("Mia", "poll.create", ""),
        ("", "poll.vote", ""),  # an anonymous poll: nobody's vote
        ("Ada", "hand.raise", ""),
    ]
    assert tools(second) == [
        ("Mia", "board.add", "s5"),
        ("Mia", "board.add", "s6"),
        ("Mia", "board.undo", ""),
        ("Ada", "board.redo", ""),
        ("Mia", "poll.close", ""),
        ("Mia", "hand.lower", ""),
        ("Mia", "board.add_page", ""),
    ]
    events = [e for s in recording["segments"] for e in s["events"]]
    offsets = [e["offset_seconds"] for e in events]
    assert offsets == sorted(offsets)
    # Undo is per person: the stand-ins tell Mia's from Ada's, and name nobody.
    actors = {e["user"]: e["actor"] for e in events if e["kind"] == "board"}
    assert actors["Mia"] != actors["Ada"] and set(actors.values()) == {"p1", "p2"}
    [vote] = [e for e in events if e["kind"] == "poll" and e["event"]["kind"] == "poll.vote"]
    assert "choices" not in vote["event"] and vote["actor"] not in actors.values()
    [closed] = [e for e in events if e["kind"] == "poll" and e["event"]["kind"] == "poll.close"]
    assert closed["text"] == "Mia closed the poll “Lunch?”: Soup 0, Pie 1"
    assert closed["event"]["results"] == [0, 1]
    lines = [e["text"] for e in events if e["event"] is not None and e["text"]]
    assert lines == [
        "Mia opened a poll: Lunch?",
        "Ada raised a hand",
        "Mia closed the poll “Lunch?”: Soup 0, Pie 1",
        "Mia lowered the hand of Ada",
        "Mia added a page to the board",
    ]

    # The page: the transcript's lines, and the events its stage replays.
    page = httpx.get(recording["playback_url"], timeout=10)
    assert page.status_code == 200
    assert "Mia lowered the hand of Ada" in page.text
    assert page.text.count('"kind": "board"') == 11  # 6 in the first segment, 5 in the second
