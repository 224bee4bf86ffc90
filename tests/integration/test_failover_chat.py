"""Failover with chat flowing: ten meetings, three pages each, and one room server lost.

Each simulated page does what the bundled meeting page does (room/static/meeting.js):
it chats, keeps every line until it is acknowledged, and when its connection drops it
asks the EMS where its meeting runs now (`POST /api/v1/meetings/{id}/rejoin`), connects
there and resends what was not acknowledged. The test then checks what a person would:
every page is back in its meeting in time, it sees the whole chat, no line twice, and no
acknowledged line is lost.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from moot.harness import Cluster, Process

pytestmark = pytest.mark.processes

MEETINGS = 10
PAGES_PER_MEETING = 3


class Page:
    """One person in a meeting, chatting every 100 ms."""

    def __init__(self, ems_url: str, meeting_id: str, user: str) -> None:
        self.ems_url = ems_url
        self.meeting_id = meeting_id
        self.user = user
        self.token = ""
        self.socket_url = ""
        self.sent = 0
        self.unacked: dict[str, str] = {}  # event id -> text, in the order sent
        self.acked: set[str] = set()
        self.seen: Counter[tuple[str, str]] = Counter()  # (sender, id) of chat lines shown
        self.history: list[tuple[str, str]] = []
        self.lost_at: float | None = None
        self.back_at: float | None = None
        self.chatting = True

    async def enter(self, http: httpx.AsyncClient) -> None:
        answer = await http.get(f"/m/{self.meeting_id}", params={"name": self.user})
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        self.token = location.split("token=")[1]
        self.socket_url = location.replace("http://", "ws://").replace("?token", "/ws?token")

    async def rejoin(self, http: httpx.AsyncClient) -> None:
        """Ask the EMS where the meeting runs now, until it names a server that answers."""
        while True:
            try:
                answer = await http.post(
                    f"/api/v1/meetings/{self.meeting_id}/rejoin", json={"token": self.token}
                )
            except httpx.HTTPError:
                answer = None  # the EMS itself may be restarting
            if answer is not None and answer.status_code == 200:
                target = answer.json()
                self.token, self.socket_url = target["token"], target["socket_url"]
                return
            await asyncio.sleep(0.1)

    async def run(self, http: httpx.AsyncClient) -> None:
        while True:
            try:
                # A keep-alive of 1 s, as the meeting page's: a hung server closes nothing.
                async with websockets.connect(
                    self.socket_url,
                    open_timeout=2,
                    ping_interval=1,
                    ping_timeout=1,
                    close_timeout=0.5,  # a hung server never answers the close either
                ) as ws:
                    await self._session(ws)
                    return  # the test stopped it
            except (ConnectionClosed, InvalidHandshake, InvalidStatus, OSError, TimeoutError):
                if self.lost_at is None:
                    self.lost_at = time.monotonic()
                await self.rejoin(http)

    async def _session(self, ws: ClientConnection) -> None:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome", welcome
        self.history = [(line["sender"], line["id"]) for line in welcome["history"]]
        if self.lost_at is not None and self.back_at is None:
            self.back_at = time.monotonic()
        for event_id, text in list(self.unacked.items()):  # resend what was not acknowledged
            await ws.send(json.dumps({"type": "chat", "id": event_id, "text": text}))
        sender = asyncio.create_task(self._chat(ws))
        try:
            while self.chatting or self.unacked:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message["type"] == "ack":
                    self.unacked.pop(message["id"], None)
                    self.acked.add(message["id"])
                elif message["type"] == "chat":
                    self.seen[(message["sender"], message["id"])] += 1
                elif message["type"] == "moved":
                    raise ConnectionClosed(None, None)
        finally:
            sender.cancel()

    async def _chat(self, ws: ClientConnection) -> None:
        while self.chatting:
            self.sent += 1
            event_id = f"{self.user}-{self.sent}"
            self.unacked[event_id] = f"line {self.sent} from {self.user}"
            await ws.send(
                json.dumps({"type": "chat", "id": event_id, "text": self.unacked[event_id]})
            )
            await asyncio.sleep(0.1)


def fast_talkers(cluster: Cluster, rooms: set[str]) -> None:
    """Each page chats ten lines a second, far over a person's default rate: lifted, so that
    every line is the failover's to keep (the rate limit has tests of its own)."""
    changed = cluster.client.put(
        f"{cluster.ems_url}/api/v1/config/cluster",
        json={"based_on": 0, "values": {"max_chat_lines_per_minute": 6000}},
        headers=cluster.admin,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text

    def applied() -> bool:
        servers = cluster.client.get(
            f"{cluster.ems_url}/api/v1/config", headers=cluster.admin, timeout=10
        ).json()["servers"]
        return all(s["applied_version"] == 1 for s in servers if s["name"] in rooms)

    cluster.wait_for(applied, "the configuration applied on every room server", timeout=10)


def host_of(cluster: Cluster, meeting_id: str) -> str:
    server: str = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}").json()[
        "server"
    ]
    return server


# On SQLite only: test_failover runs failover with chat on both stores; thirty pages through
# an EMS restart are the slowest test here, and doubled they would be the suite's longest.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("how", "within"),
    [("kill", 5.0), ("hang", 8.0), ("ems", 15.0)],
    ids=["sigkill", "sigstop", "ems-restart"],
)
def test_every_page_comes_back_with_the_whole_chat(
    three: tuple[Cluster, dict[str, Process]], how: str, within: float
) -> None:
    cluster, rooms = three
    fast_talkers(cluster, set(rooms))
    meetings = [
        cluster.client.post(
            f"{cluster.ems_url}/api/v1/meetings", json={"name": f"m{i}"}, timeout=10
        ).json()
        for i in range(MEETINGS)
    ]
    hosts = Counter(m["server"] for m in meetings)
    victim = hosts.most_common(1)[0][0]

    async def scenario() -> list[Page]:
        async with httpx.AsyncClient(base_url=cluster.ems_url, timeout=10) as http:
            pages = [
                Page(cluster.ems_url, m["id"], f"user{i}-{j}")
                for i, m in enumerate(meetings)
                for j in range(PAGES_PER_MEETING)
            ]
            for page in pages:
                await page.enter(http)
            running = [asyncio.create_task(page.run(http)) for page in pages]
            await asyncio.sleep(1.0)  # chat flowing
            signalled = time.monotonic()
            if how == "kill":
                rooms[victim].popen.send_signal(signal.SIGKILL)
            elif how == "hang":
                rooms[victim].popen.send_signal(signal.SIGSTOP)
            else:
                assert cluster.ems is not None
                cluster.ems.stop(signal.SIGKILL)
                cluster.processes.remove(cluster.ems)
                await asyncio.to_thread(cluster.start_ems)
            # Chat on until every page that lost its server is back, then stop chatting.
            affected = [p for p in pages if how == "ems" or p.meeting_id in on(meetings, victim)]
            deadline = signalled + within + 5
            while any(p.back_at is None for p in affected if p.lost_at is not None):
                assert time.monotonic() < deadline, "pages did not come back"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            for page in pages:
                page.chatting = False
            await asyncio.wait_for(asyncio.gather(*running), 20)
            for page in pages:  # a new look at each meeting: its whole chat, as stored
                await page.enter(http)
                async with websockets.connect(page.socket_url) as ws:
                    welcome = json.loads(await ws.recv())
                    page.history = [(line["sender"], line["id"]) for line in welcome["history"]]
            if how != "ems":
                for page in affected:
                    assert page.back_at is not None and page.lost_at is not None
                    assert page.back_at - signalled < within, (page.user, page.back_at - signalled)
            return pages

    pages = asyncio.run(scenario())
    if how != "ems":
        assert all(host_of(cluster, m) != victim for m in on(meetings, victim))
        assert any(p.lost_at is not None for p in pages)
    by_meeting: dict[str, list[Page]] = {}
    for page in pages:
        by_meeting.setdefault(page.meeting_id, []).append(page)
    for meeting_id, members in by_meeting.items():
        history = members[0].history
        assert len(history) == len(set(history)), f"a line stored twice in {meeting_id}"
        stored = set(history)
        for page in members:
            assert page.history == history  # everyone sees the same chat
            # Nothing acknowledged is lost; with chatting over, everything was acknowledged.
            assert not page.unacked, (page.user, list(page.unacked)[:3])
            assert {(page.user, event_id) for event_id in page.acked} <= stored
            assert {(page.user, f"{page.user}-{n}") for n in range(1, page.sent + 1)} <= stored
            # Each person's lines are stored in the order they were typed.
            mine = [
                int(event_id.rsplit("-", 1)[1])
                for sender, event_id in history
                if sender == page.user
            ]
            assert mine == sorted(mine), (page.user, mine[:20])
            # No line was shown twice to anyone.
            assert max(page.seen.values(), default=1) == 1, (page.user, page.seen.most_common(2))
        assert sum(p.sent for p in members) == len(history)


def on(meetings: list[dict[str, Any]], server: str) -> set[str]:
    return {m["id"] for m in meetings if m["server"] == server}
