"""End to end through real processes: EMS + two room servers, on SQLite and PostgreSQL.

The tests share one cluster per store (`shared_cluster`): each makes its own meetings. The
burst, which counts where every meeting went, has a cluster of its own."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import websockets

from moot.harness import Cluster

pytestmark = pytest.mark.processes


def attend(cluster: Cluster, meeting_id: str, name: str, key: str | None = None) -> str:
    """Follow the Meeting Center's redirect; returns the room server's meeting URL. With
    `key` (the meeting's moderator key), as its moderator."""
    params = {"name": name, **({"key": key} if key else {})}
    response = cluster.client.get(f"{cluster.ems_url}/m/{meeting_id}", params=params, timeout=10)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def socket_url(page_url: str) -> str:
    parts = urlsplit(page_url)
    return f"ws://{parts.netloc}{parts.path}/ws?{parts.query}"


async def next_of(ws: Any, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of `kind`, skipping others (roster updates arrive in between)."""
    deadline = time.monotonic() + within
    while True:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        message: dict[str, Any] = json.loads(raw)
        if message["type"] == kind:
            return message


def test_create_attend_chat_end_and_attendance(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Integration", "moderator": "Alice", "expected_participants": 2},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert meeting["status"] == "in_progress"
    assert meeting["server"] in {"room1", "room2"}
    assert meeting["join_url"] == f"{cluster.ems_url}/m/{meeting['id']}"

    # Alice created it: its moderator key (shown once) makes her its moderator.
    alice_page = attend(cluster, meeting["id"], "Alice", meeting["moderator_key"])
    bob_page = attend(cluster, meeting["id"], "Bob")
    room = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/{meeting['server']}", headers=cluster.admin
    ).json()
    assert alice_page.startswith(room["url"] + f"/meeting/{meeting['id']}?token=")
    assert "Integration" in httpx.get(alice_page).text

    async def scenario() -> None:
        async with websockets.connect(socket_url(alice_page)) as alice:
            welcome = await next_of(alice, "welcome")
            assert welcome["you"] == {"user": "Alice", "role": "moderator"}
            async with websockets.connect(socket_url(bob_page)) as bob:
                bob_welcome = await next_of(bob, "welcome")
                assert bob_welcome["you"]["role"] == "participant"
                roster = await next_of(alice, "roster")
                if len(roster["roster"]) == 1:  # the update for Alice's own arrival
                    roster = await next_of(alice, "roster")
                assert [p["user"] for p in roster["roster"]] == ["Alice", "Bob"]

                await bob.send(json.dumps({"type": "chat", "id": "b-1", "text": "hello all"}))
                assert (await next_of(bob, "ack"))["id"] == "b-1"
                line = await next_of(alice, "chat")
                assert (line["sender"], line["text"]) == ("Bob", "hello all")

                # A resend of the same event id is acknowledged but not shown twice.
                await bob.send(json.dumps({"type": "chat", "id": "b-1", "text": "hello all"}))
                assert (await next_of(bob, "ack"))["id"] == "b-1"
                await bob.send(json.dumps({"type": "chat", "id": "b-2", "text": "second"}))
                assert (await next_of(alice, "chat"))["text"] == "second"

                # The cluster view shows the meeting on its host, with both people.
                def reported() -> bool:
                    view = cluster.client.get(
                        f"{cluster.ems_url}/api/v1/cluster", headers=cluster.admin
                    ).json()
                    found = [m for m in view["meetings"] if m["id"] == meeting["id"]]
                    return bool(found) and sorted(found[0]["participants"]) == ["Alice", "Bob"]

                await asyncio.to_thread(cluster.wait_for, reported, "the status report", None, 5)

                # Only the moderator may end it.
                await bob.send(json.dumps({"type": "end_meeting"}))
                assert "moderator" in (await next_of(bob, "error"))["message"]
                await alice.send(json.dumps({"type": "end_meeting"}))
                assert "Alice" in (await next_of(bob, "ended"))["reason"]
                assert (await next_of(alice, "ended"))["type"] == "ended"

    asyncio.run(scenario())

    def ended() -> bool:
        detail = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}").json()
        return detail["status"] == "ended" and all(a["left_at"] for a in detail["attendance"])

    cluster.wait_for(ended, "the meeting to be stored as ended", timeout=5)
    detail = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}").json()
    assert detail["started_at"] and detail["ended_at"]
    people = {(a["user"], a["role"], a["server"]) for a in detail["attendance"]}
    assert people == {
        ("Alice", "moderator", meeting["server"]),
        ("Bob", "participant", meeting["server"]),
    }
    # An ended meeting cannot be attended again.
    again = cluster.client.get(f"{cluster.ems_url}/m/{meeting['id']}", params={"name": "Carol"})
    assert again.status_code == 409
    assert "has ended" in again.text


def test_end_through_the_api_closes_the_room(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    meeting = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "API end"}, timeout=10
    ).json()
    page = attend(cluster, meeting["id"], "Carol")

    async def scenario() -> None:
        async with websockets.connect(socket_url(page)) as carol:
            await next_of(carol, "welcome")
            async with httpx.AsyncClient() as client:
                ended = await client.post(
                    f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}/end", headers=cluster.admin
                )
            assert ended.status_code == 200
            assert ended.json()["status"] == "ended"
            assert "ended by" in (await next_of(carol, "ended"))["reason"]

    asyncio.run(scenario())
    # The room server no longer has it: its page refuses a fresh visitor.
    assert httpx.get(page).status_code == 404


def test_scheduled_meeting_starts_with_its_first_attendee(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 120))
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Later", "start": start, "duration_minutes": 30},
    ).json()
    assert created["status"] == "scheduled" and created["server"] is None
    attend(cluster, created["id"], "Dave")  # inside the early-join window
    detail = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{created['id']}").json()
    assert detail["status"] == "in_progress" and detail["server"] in {"room1", "room2"}


def test_burst_of_meetings_spreads_over_both_servers(cluster: Cluster) -> None:
    async def burst() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=cluster.ems_url, timeout=10) as client:
            responses = await asyncio.gather(
                *(client.post("/api/v1/meetings", json={"name": f"burst {i}"}) for i in range(20))
            )
        return [r.json() for r in responses]

    meetings = asyncio.run(burst())
    assert Counter(m["server"] for m in meetings) == Counter({"room1": 10, "room2": 10})


def test_forged_token_is_refused_by_the_room_server(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    meeting = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Guarded"}
    ).json()
    page = attend(cluster, meeting["id"], "Eve")
    forged = page.rsplit("=", 1)[0] + "=eyJhbGciOiJFZERTQSJ9.e30.AAAA"
    refused = httpx.get(forged)
    assert refused.status_code == 403
    assert "join token is not valid" in refused.text
    missing = httpx.get(page.split("?")[0])
    assert missing.status_code == 403
    assert "No join token" in missing.text

    async def scenario() -> None:
        async with websockets.connect(socket_url(forged)) as ws:
            error = await next_of(ws, "error")
            assert "not valid" in error["message"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    asyncio.run(scenario())


def test_pages_that_ask_for_roster_changes_get_joined_and_left(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    meeting = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Roster changes", "moderator": "Maria"},
        headers=cluster.admin,
        timeout=10,
    ).json()
    alice_url = socket_url(attend(cluster, meeting["id"], "Alice")) + "&roster=changes"
    bob_url = socket_url(attend(cluster, meeting["id"], "Bob")) + "&roster=changes"

    async def scenario() -> None:
        seen: list[str] = []  # every message type Alice received, in order

        async def next_for_alice(alice: Any, kind: str) -> dict[str, Any]:
            while True:
                message: dict[str, Any] = json.loads(await asyncio.wait_for(alice.recv(), 5))
                seen.append(message["type"])
                if message["type"] == kind:
                    return message

        async with websockets.connect(alice_url) as alice:
            welcome = await next_for_alice(alice, "welcome")
            assert [p["user"] for p in welcome["roster"]] == ["Alice"]
            async with websockets.connect(bob_url) as bob:
                welcome = await next_of(bob, "welcome")
                assert [p["user"] for p in welcome["roster"]] == ["Alice", "Bob"]
                joined = await next_for_alice(alice, "joined")
                assert joined == {"type": "joined", "user": "Bob", "role": "participant"}
            left = await next_for_alice(alice, "left")
            assert left == {"type": "left", "user": "Bob"}
            await alice.send(json.dumps({"type": "ping"}))
            await next_for_alice(alice, "pong")
        # Never the whole roster (the tools' and the audio/video states follow the welcome:
        # docs/protocol.md).
        states = {"tool_state", "media_state"}
        assert [t for t in seen if t not in states] == ["welcome", "joined", "left", "pong"]

    asyncio.run(scenario())


def test_a_notice_to_moderators_reaches_only_the_moderators_pages(shared_cluster: Cluster) -> None:
    """The room server's filter of `to: moderators`: the EMS tells a moderator that the
    meeting's time is over (its occurrence was skipped while people were in it); the
    participant's page never gets that notice."""
    cluster = shared_cluster
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={
            "name": "Daily sync",
            "moderator": "Mona",
            "start": start.isoformat(),
            "duration_minutes": 30,
            "recurrence": "FREQ=DAILY;COUNT=2",
            "timezone": "UTC",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    # The participant first: the room server's list of pages has her before the moderator.
    key = created.json()["moderator_key"]  # she created it: the key makes her its moderator
    pat_page = attend(cluster, meeting_id, "Pat")
    mona_page = attend(cluster, meeting_id, "Mona", key)

    def people_reported() -> int:
        found = cluster.client.get(
            f"{cluster.ems_url}/api/v1/cluster", headers=cluster.admin
        ).json()
        return sum(len(m["participants"]) for m in found["meetings"] if m["id"] == meeting_id)

    async def scenario() -> None:
        async with (
            websockets.connect(socket_url(pat_page)) as pat,
            websockets.connect(socket_url(mona_page)) as mona,
        ):
            await next_of(pat, "welcome")
            assert (await next_of(mona, "welcome"))["you"]["role"] == "moderator"
            await asyncio.to_thread(
                cluster.wait_for, lambda: people_reported() == 2, "a report of both in it"
            )
            skipped = await asyncio.to_thread(
                httpx.post,
                f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/exceptions",
                json={"original_start": start.isoformat(), "skip": True},
                headers=cluster.admin,
                timeout=10,
            )
            assert skipped.status_code == 201, skipped.text
            # The meeting clock (every 0.5 s here) finds it running with people past its time.
            notice = await next_of(mona, "notice", within=10)
            assert notice["text"].startswith("The meeting's scheduled time is over.")
            # A chat line of Mona's, sent after her notice, reaches Pat after anything the
            # room server sent Pat before it: no notice among it.
            await mona.send(json.dumps({"type": "chat", "id": "after", "text": "Wrapping up"}))
            while (message := json.loads(await asyncio.wait_for(pat.recv(), 5)))["type"] != "chat":
                assert message["type"] != "notice", message
            assert (message["sender"], message["text"]) == ("Mona", "Wrapping up")

    asyncio.run(scenario())
    shown = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}", timeout=5).json()
    assert shown["status"] == "in_progress"  # it runs on while people are in it


def test_a_browser_comes_back_under_the_name_it_gave(shared_cluster: Cluster) -> None:
    """The first attend keeps the typed name (and a guest id) in cookies; the next attend
    from that browser goes straight in under the same name, as the same person."""
    cluster = shared_cluster
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Cookies", "moderator": "Alice"}
    )
    assert created.status_code == 201, created.text
    url = f"{cluster.ems_url}/m/{created.json()['id']}"
    name = "Zoë O'Neil / ops; café"
    with httpx.Client(headers={"Authorization": ""}) as browser:
        first = browser.get(url, params={"name": name}, timeout=10)
        assert first.status_code == 303, first.text
        assert {"moot_name", "moot_guest"} <= set(browser.cookies)
        cookies = first.headers.get_list("set-cookie")
        assert any(c.startswith("moot_guest=") and "HttpOnly" in c for c in cookies)
        again = browser.get(url, timeout=10)  # no name: the cookie's
        assert again.status_code == 303, again.text
    claims = [token_claims(r.headers["location"]) for r in (first, again)]
    assert [c["sub"] for c in claims] == [name, name]
    assert claims[0]["pid"] == claims[1]["pid"]  # the same guest, not a second one


def token_claims(location: str) -> dict[str, Any]:
    token = location.split("token=", 1)[1]
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
