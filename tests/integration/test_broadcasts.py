"""Messages to all users through real processes: an EMS (on SQLite, then on PostgreSQL) and
two room servers (moot.harness). What a page receives is read the way a page reads it:
the Meeting Center's server-sent events, and the meeting WebSocket of each room server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient

from moot.ems.auth.users import add_user
from moot.harness import Cluster
from moot.harness.ports import free_port
from tests.integration.conftest import csrf_of

pytestmark = pytest.mark.processes

EVENTS = "/events/broadcasts"
DELIVERY = 2.0  # the promise: on every open page within 2 s


@dataclass
class Event:
    kind: str
    data: dict[str, Any]
    id: str | None


class Stream:
    """One open /events/broadcasts, as a Meeting Center page holds it.

    A task reads the lines into a queue: waiting with a timeout then cancels only the wait,
    never the read (a cancelled read would end the response's iterator).
    """

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.retry: int | None = None
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(lines))

    async def _read(self, lines: AsyncIterator[str]) -> None:
        try:
            async for line in lines:
                self._lines.put_nowait(line)
        finally:
            self._lines.put_nowait(None)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._reader

    async def next(self, within: float = 5.0) -> Event | None:
        """The next event (None when the stream ended); keep-alive comments are skipped."""
        fields: dict[str, str] = {}
        deadline = time.monotonic() + within
        while True:
            line = await asyncio.wait_for(self._lines.get(), max(0.01, deadline - time.monotonic()))
            if line is None:
                return None
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "retry" in fields and "event" not in fields:
                self.retry = int(fields["retry"])
                fields = {}
                continue
            if fields:
                return Event(fields["event"], json.loads(fields["data"]), fields.get("id"))

    async def nothing_within(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            event = await self.next(within=seconds)
            raise AssertionError(f"unexpected event {event}")


@asynccontextmanager
async def stream(base_url: str) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client,
        client.stream("GET", base_url + EVENTS) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        page = Stream(response.aiter_lines())
        try:
            yield page
        finally:
            await page.close()


def send(cluster: Cluster, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return cluster.client.post(
        f"{cluster.ems_url}/api/v1/broadcasts",
        json=body,
        headers=cluster.admin if headers is None else headers,
        timeout=10,
    )


def current(cluster: Cluster) -> list[dict[str, Any]]:
    answer = cluster.client.get(
        f"{cluster.ems_url}/api/v1/broadcasts", headers=cluster.admin, timeout=5
    )
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()
    return listed


def create_meeting(cluster: Cluster, name: str) -> dict[str, Any]:
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": name, "moderator": "Alice", "expected_participants": 2},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting: dict[str, Any] = created.json()
    return meeting


def meeting_socket(cluster: Cluster, meeting_id: str, name: str) -> str:
    """Attend through the Meeting Center; the meeting WebSocket of the page it leads to."""
    answer = cluster.client.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}, timeout=10
    )
    assert answer.status_code == 303, answer.text
    parts = urlsplit(answer.headers["location"])
    return f"ws://{parts.netloc}{parts.path}/ws?{parts.query}"


async def next_of(ws: Any, kind: str, within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        message: dict[str, Any] = json.loads(raw)
        if message["type"] == kind:
            return message


def listeners(cluster: Cluster, base_url: str | None = None) -> int:
    """Open streams on a node, as its administration page says."""
    page = httpx.get(
        f"{base_url or cluster.ems_url}/admin/broadcast", headers=cluster.admin, timeout=5
    )
    assert page.status_code == 200, page.text
    found = re.search(r"open on this EMS node now: (\d+)", page.text)
    assert found, page.text
    return int(found.group(1))


def wait_until(condition: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_reaches_meeting_center_pages_and_meetings_on_both_room_servers(cluster: Cluster) -> None:
    first = create_meeting(cluster, "On one server")
    second = create_meeting(cluster, "On the other")
    assert {first["server"], second["server"]} == {"room1", "room2"}

    async def scenario() -> None:
        async with (
            stream(cluster.ems_url) as page,
            websockets.connect(meeting_socket(cluster, first["id"], "Ann")) as ann,
            websockets.connect(meeting_socket(cluster, second["id"], "Ben")) as ben,
        ):
            await next_of(ann, "welcome")
            await next_of(ben, "welcome")
            await page.nothing_within(0.3)  # nothing showing yet
            assert page.retry == 2000

            text = "Maintenance at 18:00 <script>alert(1)</script>\nSave your work."
            sent_at = time.monotonic()
            answer = await asyncio.to_thread(send, cluster, text=f"  {text}  ")
            assert answer.status_code == 201, answer.text
            sent = answer.json()
            assert sent["text"] == text and sent["sent_by"] == "cluster-administrator"
            shown = datetime.fromisoformat(sent["expires_at"]) - datetime.fromisoformat(
                sent["sent_at"]
            )
            assert shown == timedelta(hours=1)

            event, on_ann, on_ben = await asyncio.gather(
                page.next(), next_of(ann, "notice"), next_of(ben, "notice")
            )
            elapsed = time.monotonic() - sent_at
            assert elapsed < DELIVERY, f"delivered in {elapsed:.2f} s"
            assert event is not None and event.kind == "broadcast"
            assert event.id == str(sent["id"])
            assert event.data == {
                "id": sent["id"],
                "text": text,
                "sent_at": datetime.fromisoformat(sent["sent_at"]).isoformat(),
                "expires_at": datetime.fromisoformat(sent["expires_at"]).isoformat(),
            }
            for notice in (on_ann, on_ben):
                assert notice["text"] == text and notice["broadcast_id"] == sent["id"]
                assert datetime.fromisoformat(notice["expires_at"]) == datetime.fromisoformat(
                    sent["expires_at"]
                )

            # Opened afterwards, before it expires: a Meeting Center page and a meeting page.
            async with (
                stream(cluster.ems_url) as later,
                websockets.connect(meeting_socket(cluster, first["id"], "Cat")) as cat,
            ):
                await next_of(cat, "welcome")
                assert (await next_of(cat, "notice", within=1))["broadcast_id"] == sent["id"]
                again = await later.next(within=1)
                assert again is not None and again.data["id"] == sent["id"]
            assert [m["id"] for m in current(cluster)] == [sent["id"]]

            # Withdrawn: pages take it away, a page opened afterwards does not get it.
            gone = await asyncio.to_thread(
                httpx.delete,
                f"{cluster.ems_url}/api/v1/broadcasts/{sent['id']}",
                headers=cluster.admin,
            )
            assert gone.status_code == 204
            ended, on_ann = await asyncio.gather(page.next(), next_of(ann, "notice"))
            assert ended is not None and (ended.kind, ended.data) == ("ended", {"id": sent["id"]})
            assert datetime.fromisoformat(on_ann["expires_at"]) <= datetime.now(UTC)
            assert current(cluster) == []
            async with stream(cluster.ems_url) as after:
                await after.nothing_within(0.5)
            missing = await asyncio.to_thread(
                httpx.delete, f"{cluster.ems_url}/api/v1/broadcasts/999", headers=cluster.admin
            )
            assert missing.status_code == 404

    asyncio.run(scenario())


def test_only_administrators_send_and_bad_messages_are_refused(cluster: Cluster) -> None:
    asyncio.run(add_user(cluster.database_url, "bob", "bob-password"))
    token = cluster.client.post(
        f"{cluster.ems_url}/api/v1/auth/token",
        json={"username": "bob", "password": "bob-password"},
        timeout=10,
    )
    assert token.status_code == 200, token.text
    bob = {"Authorization": f"Bearer {token.json()['token']}"}

    assert send(cluster, headers={}, text="hello").status_code == 401
    assert send(cluster, headers=bob, text="hello").status_code == 403
    for listing in (
        cluster.client.get(f"{cluster.ems_url}/api/v1/broadcasts", timeout=5),
        cluster.client.get(f"{cluster.ems_url}/api/v1/broadcasts", headers=bob, timeout=5),
    ):
        assert listing.status_code in (401, 403)
    assert cluster.client.get(f"{cluster.ems_url}/admin/broadcast", headers=bob).status_code == 403

    soon = datetime.now(UTC)
    refusals = {
        "empty": ({"text": ""}, "text"),
        "blank": ({"text": " \n\t "}, "text"),
        "too long": ({"text": "x" * 2001}, "text"),
        "expired": ({"text": "x", "expires_at": (soon - timedelta(minutes=1)).isoformat()}, None),
        "too far": ({"text": "x", "expires_at": (soon + timedelta(days=8)).isoformat()}, None),
        "no zone": (
            {"text": "x", "expires_at": soon.replace(tzinfo=None).isoformat()},
            "expires_at",
        ),
        "both": ({"text": "x", "show_minutes": 5, "expires_at": soon.isoformat()}, None),
        "zero minutes": ({"text": "x", "show_minutes": 0}, "show_minutes"),
    }
    for case, (body, field) in refusals.items():
        answer = send(cluster, **body)
        assert answer.status_code == 422, (case, answer.text)
        detail = answer.json()["detail"]
        assert detail and detail[0]["msg"], case
        if field is not None:
            assert detail[0]["loc"][-1] == field, (case, detail)
    assert send(cluster, text="x" * 2000).status_code == 201  # the limit itself is fine
    assert [len(m["text"]) for m in current(cluster)] == [2000]  # nothing else was stored


def test_expires_on_pages_and_for_pages_opened_later(cluster: Cluster) -> None:
    meeting = create_meeting(cluster, "Expiry")

    async def scenario() -> None:
        async with (
            stream(cluster.ems_url) as page,
            websockets.connect(meeting_socket(cluster, meeting["id"], "Ann")) as ann,
        ):
            await next_of(ann, "welcome")
            until = datetime.now(UTC) + timedelta(seconds=3)
            answer = await asyncio.to_thread(
                send, cluster, text="Short one", expires_at=until.isoformat()
            )
            assert answer.status_code == 201, answer.text
            sent = answer.json()
            event = await page.next()
            assert event is not None and event.data["id"] == sent["id"]
            assert (await next_of(ann, "notice"))["broadcast_id"] == sent["id"]
            # At the expiry the stream says so (within the node's 1 s poll).
            ended = await page.next(within=6)
            assert ended is not None and ended.kind == "ended"
            assert datetime.now(UTC) >= until
        assert current(cluster) == []
        async with (
            stream(cluster.ems_url) as later,
            websockets.connect(meeting_socket(cluster, meeting["id"], "Ben")) as ben,
        ):
            await next_of(ben, "welcome")
            await later.nothing_within(0.5)
            with pytest.raises(TimeoutError):
                await next_of(ben, "notice", within=0.5)

    asyncio.run(scenario())


def test_a_room_server_restarted_after_sending_gets_it(cluster: Cluster) -> None:
    sent = send(cluster, text="Sent before room1 restarts").json()
    room1 = next(p for p in cluster.processes if p.name == "room1")
    assert room1.stop() == 0
    wait_until(lambda: cluster.server_status("room1") != "online", "room1 to be offline")
    cluster.start_room("room1")
    # Only room1 takes new meetings: the meeting page is on the restarted server.
    drained = cluster.client.post(
        f"{cluster.ems_url}/api/v1/servers/room2/drain", headers=cluster.admin, timeout=10
    )
    assert drained.status_code == 200, drained.text
    meeting = create_meeting(cluster, "After the restart")
    assert meeting["server"] == "room1"

    async def scenario() -> None:
        async with websockets.connect(meeting_socket(cluster, meeting["id"], "Ann")) as ann:
            await next_of(ann, "welcome")
            notice = await next_of(ann, "notice", within=2)
            assert (notice["broadcast_id"], notice["text"]) == (
                sent["id"],
                "Sent before room1 restarts",
            )

    asyncio.run(scenario())


def test_streams_end_when_pages_leave_and_when_the_ems_stops(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with stream(cluster.ems_url) as staying:
            for _ in range(2):
                async with stream(cluster.ems_url) as leaving:
                    await leaving.nothing_within(0.2)
                    assert await asyncio.to_thread(listeners, cluster) >= 2
            # The pages that left are forgotten at once, not at the next keep-alive.
            await asyncio.to_thread(
                wait_until, lambda: listeners(cluster) == 1, "one stream left", 3.0
            )
            assert cluster.ems is not None
            stopping = time.monotonic()
            cluster.ems.popen.send_signal(signal.SIGTERM)
            assert await staying.next(within=5) is None  # the stream ended, no hang
            code = await asyncio.to_thread(cluster.ems.popen.wait, 15)
            took = time.monotonic() - stopping
            # uvicorn ends by raising the signal again once it has shut down cleanly.
            assert code in (0, -signal.SIGTERM) and took < 5, f"exit {code} after {took:.1f} s"
            log = cluster.ems.output()
            assert "Application shutdown complete" in log
            assert "Waiting for connections to close" not in log

    asyncio.run(scenario())


def test_a_message_stored_by_another_ems_node_reaches_this_ones_pages(cluster: Cluster) -> None:
    """Two EMS nodes on one store: each node's pages get the other's messages (1 s poll)."""
    port = free_port()
    cluster.spawn(
        "ems2",
        ["serve", "--port", str(port)],
        {"MOOT_DATABASE_URL": cluster.database_url, "MOOT_CLUSTER_SECRET": cluster.secret},
    )
    node2 = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(node2 + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, "the second EMS node", 30)

    async def scenario() -> None:
        async with stream(node2) as page:
            sent_at = time.monotonic()
            answer = await asyncio.to_thread(send, cluster, text="From node one")
            assert answer.status_code == 201, answer.text
            event = await page.next(within=3)
            elapsed = time.monotonic() - sent_at
            assert event is not None and event.data["text"] == "From node one"
            assert elapsed < DELIVERY, f"delivered in {elapsed:.2f} s"
            gone = await asyncio.to_thread(
                httpx.delete,
                f"{cluster.ems_url}/api/v1/broadcasts/{answer.json()['id']}",
                headers=cluster.admin,
            )
            assert gone.status_code == 204
            ended = await page.next(within=3)
            assert ended is not None and ended.kind == "ended"

    asyncio.run(scenario())


def test_page_form_sends_and_says_what_is_wrong_beside_the_field(api: TestClient) -> None:
    """The administration page in process: errors beside the field, the text kept."""
    csrf = csrf_of(api)
    page = api.get("/admin/broadcast")
    assert page.status_code == 200 and 'for="broadcast-text"' in page.text

    refused = api.post("/admin/broadcast", data={"csrf": csrf, "text": "   ", "show_for": "60"})
    assert refused.status_code == 422
    assert 'id="broadcast-text-error"' in refused.text and "Write the message" in refused.text
    long = "<b>" + "y" * 2000
    refused = api.post("/admin/broadcast", data={"csrf": csrf, "text": long, "show_for": "60"})
    assert refused.status_code == 422 and "at most 2,000 characters" in refused.text
    assert "&lt;b&gt;yyy" in refused.text  # kept in the field, escaped
    refused = api.post("/admin/broadcast", data={"csrf": csrf, "text": "hi", "show_for": "7"})
    assert refused.status_code == 422 and 'id="broadcast-show-for-error"' in refused.text
    no_token = api.post("/admin/broadcast", data={"text": "hi", "show_for": "60"})
    assert no_token.status_code == 403
    assert api.get("/api/v1/broadcasts").json() == []

    sent = api.post(
        "/admin/broadcast",
        data={"csrf": csrf, "text": "Lunch <i>is</i> served", "show_for": "15"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    listed = api.get("/api/v1/broadcasts").json()
    assert [m["text"] for m in listed] == ["Lunch <i>is</i> served"]
    shown = datetime.fromisoformat(listed[0]["expires_at"]) - datetime.fromisoformat(
        listed[0]["sent_at"]
    )
    assert shown == timedelta(minutes=15)
    page = api.get(sent.headers["location"])
    assert "Lunch &lt;i&gt;is&lt;/i&gt; served" in page.text and "<i>is</i>" not in page.text

    withdrawn = api.post(
        f"/admin/broadcast/{listed[0]['id']}/withdraw", data={"csrf": csrf}, follow_redirects=False
    )
    assert withdrawn.status_code == 303 and api.get("/api/v1/broadcasts").json() == []
    anonymous = {"Authorization": ""}
    refused_page = api.get("/admin/broadcast", headers=anonymous, follow_redirects=False)
    assert refused_page.status_code == 303
    assert refused_page.headers["location"] == "/signin?next=/admin/broadcast"


def test_control_characters_are_refused_beside_the_field(api: TestClient) -> None:
    """A NUL (PostgreSQL cannot store it) or another control character: a 422 naming the
    text, by the API and by the page; line breaks and tabs are text and are kept."""
    for text in ("a\u0000b", "bell\u0007", "esc\u001b[31m"):
        answer = api.post("/api/v1/broadcasts", json={"text": text})
        assert answer.status_code == 422, (text, answer.text)
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body", "text"] and "control character" in error["msg"]
    csrf = csrf_of(api)
    refused = api.post(
        "/admin/broadcast", data={"csrf": csrf, "text": "a\u0000b", "show_for": "60"}
    )
    assert refused.status_code == 422
    assert re.search(r'id="broadcast-text-error"[^>]*>[^<]*control character U\+0000', refused.text)
    assert api.get("/api/v1/broadcasts").json() == []  # nothing stored

    lines = api.post("/api/v1/broadcasts", json={"text": "Line one\r\nLine\ttwo"})
    assert lines.status_code == 201, lines.text
    assert lines.json()["text"] == "Line one\r\nLine\ttwo"
