"""Meeting tools with real processes (an EMS and room servers): a board, a poll, hands, a
lock, a presentation and a web page survive a SIGKILL of the room server; a tool the
meeting did not enable is refused; poll results are kept with the meeting; a removed person
is refused at the EMS and the room server alike."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import signal
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from moot.harness import Cluster, Process
from tests.stage import attach, pdf_of, web_pages

pytestmark = pytest.mark.processes


class Person:
    """One page in a meeting, speaking the meeting page's protocol over a real WebSocket."""

    def __init__(self, cluster: Cluster, meeting_id: str, name: str, key: str = "") -> None:
        self.cluster, self.meeting_id, self.name = cluster, meeting_id, name
        params = {"name": name, **({"key": key} if key else {})}
        answer = httpx.get(f"{cluster.ems_url}/m/{meeting_id}", params=params, timeout=10)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        self.token = location.split("token=")[1]
        self.socket_url = location.replace("http://", "ws://").replace("?token", "/ws?token")
        # Browsers keep the guest cookie: the same person when they come back.
        self.cookies = answer.cookies
        self.ws: ClientConnection | None = None
        self.states: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.acked: set[str] = set()

    async def connect(self) -> dict[str, Any]:
        self.ws = await websockets.connect(self.socket_url + "&roster=changes")
        welcome: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
        assert welcome["type"] == "welcome", welcome
        return welcome

    async def rejoin(self) -> None:
        """As the page does when its room server goes away: ask the EMS, connect there."""
        async with httpx.AsyncClient(base_url=self.cluster.ems_url, timeout=5) as http:
            for _ in range(100):
                answer = await http.post(
                    f"/api/v1/meetings/{self.meeting_id}/rejoin", json={"token": self.token}
                )
                if answer.status_code == 200:
                    self.token, self.socket_url = (
                        answer.json()["token"],
                        answer.json()["socket_url"],
                    )
                    await self.connect()
                    return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} could not rejoin")

    async def send(self, event_id: str, event: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "tool", "id": event_id, "event": event}))

    async def act(self, event_id: str, event: dict[str, Any]) -> None:
        """Send a tool event and read until it is acknowledged or refused."""
        await self.send(event_id, event)
        await self.read_until(lambda: event_id in self.acked or event_id in self.errors)

    async def read_until(self, done: Any, within: float = 5) -> None:
        assert self.ws is not None
        async with asyncio.timeout(within):
            while not done():
                message = json.loads(await self.ws.recv())
                if message["type"] == "tool_state":
                    self.states[message["tool"]] = message["state"]
                elif message["type"] == "ack":
                    self.acked.add(message["id"])
                elif message["type"] == "error" and message.get("id"):
                    self.errors[message["id"]] = message["message"]

    async def settle(self) -> None:
        """Read what is already on its way (tool states after a welcome)."""
        with contextlib.suppress(TimeoutError):
            await self.read_until(lambda: False, within=0.5)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def new_meeting(cluster: Cluster, **fields: Any) -> dict[str, Any]:
    made = httpx.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Tools", "moderator": "Mia", **fields},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    meeting: dict[str, Any] = made.json()
    return meeting


def polls_of(cluster: Cluster, meeting_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/polls", headers=cluster.admin, timeout=5
    )
    assert answer.status_code == 200, answer.text
    polls: list[dict[str, Any]] = answer.json()
    return polls


def polls_csv(cluster: Cluster, meeting_id: str) -> list[str]:
    answer = httpx.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/polls.csv",
        headers=cluster.admin,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.text.splitlines()


POLL = {"kind": "poll.create", "poll_id": "lunch", "question": "Lunch?", "options": ["A", "B"]}


def stroke(n: int) -> dict[str, Any]:
    points = [[10 + n % 1500, 10 + i * 3] for i in range(20)]
    return {
        "kind": "board.add",
        "page": 0,
        "element": {"id": f"s{n}", "shape": "pen", "points": points},
    }


def test_a_board_a_poll_hands_and_a_lock_survive_a_sigkill_of_the_room_server(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, rooms = three
    meeting = new_meeting(cluster)
    victim = meeting["server"]
    [deck] = attach(cluster, meeting["id"], ("Plan.pdf", pdf_of(9)))

    async def scenario(site: str) -> None:
        mia = Person(cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(cluster, meeting["id"], "Ada")
        ben = Person(cluster, meeting["id"], "Ben")
        for person in (mia, ada, ben):
            await person.connect()
        await mia.act("p1", POLL)
        await ada.act("v1", {"kind": "poll.vote", "poll_id": "lunch", "choices": [1]})
        await ben.act("v2", {"kind": "poll.vote", "poll_id": "lunch", "choices": [0]})
        await ada.act("h1", {"kind": "hand.raise"})
        await ben.act("h2", {"kind": "hand.raise"})
        await mia.act("l1", {"kind": "moderation.lock"})
        await mia.act("g1", {"kind": "moderation.grant", "user": "Ben", "role": "presenter"})
        # A presentation on page 7, a web page its site will not let be framed.
        await mia.act("s1", {"kind": "slides.open", "file_id": deck["id"], "pages": 9})
        await mia.act("s2", {"kind": "slides.page", "page": 6})
        await mia.act("w1", {"kind": "web.share", "url": f"{site}/closed"})
        # A board of 200 strokes, from three people at once.
        for n in range(200):
            await (mia, ada, ben)[n % 3].send(f"b{n}", stroke(n))
        for i, person in enumerate((mia, ada, ben)):
            mine = {f"b{n}" for n in range(i, 200, 3)}
            await person.read_until(lambda p=person, m=mine: m <= p.acked, within=30)
        assert not (mia.errors or ada.errors or ben.errors)

        rooms[victim].popen.send_signal(signal.SIGKILL)
        for person in (mia, ada, ben):
            await person.rejoin()  # back in: they were in when the meeting was locked
        for person in (mia, ada, ben):
            await person.settle()
        # The same state on the new server, nothing lost, nothing doubled.
        [poll] = mia.states["poll"]["polls"]
        assert (poll["open"], poll["voters"], poll["results"]) == (True, 2, [1, 1])
        assert ada.states["poll"]["polls"][0]["mine"] == [1]
        assert ada.states["poll"]["polls"][0]["results"] is None  # open: moderators only
        assert ben.states["hand"]["queue"] == ["Ada", "Ben"]
        assert ben.states["moderation"]["locked"] is True
        assert ben.states["moderation"]["you"]["role"] == "presenter"  # his grant, rebuilt
        for person in (mia, ada, ben):
            board = person.states["board"]["items"]
            assert sorted(e["id"] for e in board) == sorted(f"s{n}" for n in range(200))
            assert (person.states["slides"]["file_id"], person.states["slides"]["page"]) == (
                deck["id"],
                6,
            )
            web = person.states["web"]
            assert (web["url"], web["frameable"]) == (f"{site}/closed", False)
        # A vote acknowledged before the crash, sent again: acknowledged, not counted again.
        await ada.act("v1", {"kind": "poll.vote", "poll_id": "lunch", "choices": [1]})
        await mia.act("c1", {"kind": "poll.close", "poll_id": "lunch"})
        await ben.read_until(lambda: not ben.states["poll"]["polls"][0]["open"])
        assert ben.states["poll"]["polls"][0]["results"] == [1, 1]
        for person in (mia, ada, ben):
            await person.close()

    with web_pages() as site:
        asyncio.run(scenario(site))
    assert httpx.get(f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}").json()["server"] != (
        victim
    )
    [kept] = polls_of(cluster, meeting["id"])
    assert (kept["status"], kept["results"], kept["voters"]) == ("closed", [1, 1], 2)
    # Locked: a newcomer is refused at the EMS, with the reason.
    late = httpx.get(f"{cluster.ems_url}/m/{meeting['id']}", params={"name": "Zoe"}, timeout=5)
    assert late.status_code == 403 and "locked" in late.text


def test_a_tool_the_meeting_did_not_enable_is_refused(shared_cluster: Cluster) -> None:
    meeting = new_meeting(shared_cluster, tools=["chat"])

    async def scenario() -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        await mia.connect()
        await mia.act("p1", POLL)
        assert "does not have polls" in mia.errors["p1"]
        await mia.act("h1", {"kind": "hand.raise"})  # hands are in every meeting
        assert "h1" in mia.acked
        await mia.close()

    asyncio.run(scenario())
    assert polls_of(shared_cluster, meeting["id"]) == []


def test_bad_tool_events_get_a_clear_error_and_nothing_is_stored(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster)

    async def scenario() -> list[str]:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        await mia.connect()
        await ada.connect()
        assert mia.ws is not None
        too_many = {**POLL, "options": [str(i) for i in range(11)]}
        await mia.ws.send(json.dumps({"type": "tool", "id": "x1", "event": too_many}))
        refusal = json.loads(await asyncio.wait_for(mia.ws.recv(), 5))
        while refusal["type"] != "error":
            refusal = json.loads(await asyncio.wait_for(mia.ws.recv(), 5))
        await ada.act("p1", POLL)  # a participant may not open a poll
        await mia.close()
        await ada.close()
        return [refusal["message"], ada.errors["p1"]]

    messages = asyncio.run(scenario())
    assert "at most 10" in messages[0]
    assert messages[1] == "only a moderator can open a poll"
    assert polls_of(shared_cluster, meeting["id"]) == []


def test_named_poll_results_in_the_api_and_csv(shared_cluster: Cluster) -> None:
    meeting = new_meeting(shared_cluster, record=True)

    async def scenario() -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        for person in (mia, ada):
            await person.connect()
        named = {**POLL, "options": ["Mon", "Tue", "Wed"], "multiple": True, "anonymous": False}
        await mia.act("p1", named)
        await ada.act("v1", {"kind": "poll.vote", "poll_id": "lunch", "choices": [0, 2]})
        await mia.act("v2", {"kind": "poll.vote", "poll_id": "lunch", "choices": [2]})
        await ada.act("v3", {"kind": "poll.vote", "poll_id": "lunch", "choices": [1]})
        # Open: live counts, each person's last vote, marked open (the moderator's view).
        open_poll = polls_of(shared_cluster, meeting["id"])[0]
        assert (open_poll["status"], open_poll["results"]) == ("open", [0, 1, 1])
        assert open_poll["ballots"] == {"Ada": [1], "Mia": [2]}
        assert "lunch,Lunch?,open,Tue,1,Ada" in polls_csv(shared_cluster, meeting["id"])
        await ada.act("v4", {"kind": "poll.vote", "poll_id": "lunch", "choices": [0, 2]})
        await mia.act("c1", {"kind": "poll.close", "poll_id": "lunch"})
        for person in (mia, ada):
            await person.close()

    asyncio.run(scenario())
    [poll] = polls_of(shared_cluster, meeting["id"])
    assert poll["results"] == [1, 0, 2]
    assert poll["ballots"] == {"Ada": [0, 2], "Mia": [2]}
    answer = httpx.get(
        f"{shared_cluster.ems_url}/api/v1/meetings/{meeting['id']}/polls.csv",
        headers=shared_cluster.admin,
        timeout=5,
    )
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    # The recording plays the chat; the poll's events are not taken for chat lines.
    recording = httpx.get(
        f"{shared_cluster.ems_url}/api/v1/meetings/{meeting['id']}/recording",
        headers=shared_cluster.admin,
        timeout=5,
    ).json()
    kinds = {e["kind"] for s in recording["segments"] for e in s["events"]}
    assert "chat" not in kinds and "joined" in kinds
    assert rows == [
        ["poll", "question", "status", "option", "votes", "voters"],
        ["lunch", "Lunch?", "closed", "Mon", "1", "Ada"],
        ["lunch", "Lunch?", "closed", "Tue", "0", ""],
        ["lunch", "Lunch?", "closed", "Wed", "2", "Ada; Mia"],
    ]


def test_a_removed_person_is_refused_by_the_ems_and_the_room_server(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster)

    async def scenario() -> tuple[Person, str]:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        for person in (mia, ada):
            await person.connect()
        await mia.act("r1", {"kind": "moderation.remove", "user": "Ada"})
        assert ada.ws is not None
        last: dict[str, Any] = {}
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:  # told why, then closed
                    last = json.loads(await ada.ws.recv())
        assert ada.ws.close_code == 4403
        # Her join token still works for a minute: the room server refuses her anyway.
        async with websockets.connect(ada.socket_url) as again:
            refused = json.loads(await asyncio.wait_for(again.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(again.recv(), 5)
            assert again.close_code == 4403
        assert refused["message"] == last["message"]
        await mia.close()
        return ada, str(last["message"])

    ada, message = asyncio.run(scenario())
    assert message == "A moderator removed you from this meeting."
    rejoin = httpx.post(
        f"{shared_cluster.ems_url}/api/v1/meetings/{meeting['id']}/rejoin",
        json={"token": ada.token},
        timeout=5,
    )
    assert rejoin.status_code == 403 and rejoin.json()["detail"] == message
    # The same browser (its guest cookie) under another name: still her.
    again = httpx.get(
        f"{shared_cluster.ems_url}/m/{meeting['id']}",
        params={"name": "Not Ada"},
        cookies=ada.cookies,
        timeout=5,
    )
    assert again.status_code == 403 and "removed you" in again.text
