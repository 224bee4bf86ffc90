"""Who moderates a meeting comes from who the person is, never from a typed name.

Real processes (an EMS and a room server on SQLite, with local users): an impostor who types
the moderator's name enters as "NAME (guest)", a participant who cannot end the meeting;
the moderator signs in, or holds the key the EMS gave the meeting's creator; two people
never hold one name in a meeting, while one person's two tabs share theirs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from moot.harness import Cluster
from tests.conftest import ClusterOptions, User, module_cluster
from tests.integration.test_meeting_flow import next_of, socket_url

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    """One EMS and room server for the module, with an administrator and bob (local
    accounts): each test makes a meeting of its own, and none changes a user or the
    cluster."""
    options = ClusterOptions(rooms=("room1",), users=(User("admin", ("stadmins",)), User("bob")))
    yield from module_cluster(tmp_path_factory, sqlite_template, options)


def sign_in(cluster: Cluster, username: str, password: str) -> dict[str, str]:
    answer = cluster.client.post(
        f"{cluster.ems_url}/api/v1/auth/token",
        json={"username": username, "password": password},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def enter(
    cluster: Cluster,
    meeting_id: str,
    *,
    name: str = "",
    headers: dict[str, str] | None = None,
    browser: httpx.Client | None = None,
    key: str | None = None,
) -> httpx.Response:
    """GET /m/{id} as a browser (`browser`, with its cookies) or as a fresh one."""
    params = {k: v for k, v in (("name", name), ("key", key)) if v}
    url = f"{cluster.ems_url}/m/{meeting_id}"
    if browser is not None:
        return browser.get(url, params=params, headers=headers or {})
    return httpx.get(url, params=params, headers=headers or {})


async def welcome_of(page: str) -> tuple[Any, dict[str, Any]]:
    ws = await websockets.connect(socket_url(page))
    return ws, await next_of(ws, "welcome")


def test_a_typed_name_never_makes_a_moderator(cluster: Cluster) -> None:
    admin = sign_in(cluster, "admin", "admin-password")
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Board"}, headers=admin
    ).json()
    assert created["moderator"] == "admin" and created.get("moderator_key") is None
    anonymous = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Open"}
    ).json()
    assert anonymous["moderator"] == "Anonymous"

    impostor = enter(cluster, created["id"], name="ADMIN")
    anyone = enter(cluster, anonymous["id"], name="anonymous")
    real = enter(cluster, created["id"], headers=admin)
    assert {impostor.status_code, anyone.status_code, real.status_code} == {303}

    async def scenario() -> None:
        fake, fake_welcome = await welcome_of(impostor.headers["location"])
        other, other_welcome = await welcome_of(anyone.headers["location"])
        boss, boss_welcome = await welcome_of(real.headers["location"])
        try:
            # The name is theirs to type, but it is shown as a guest's, with no power.
            assert fake_welcome["you"] == {"user": "ADMIN (guest)", "role": "participant"}
            assert other_welcome["you"] == {"user": "anonymous (guest)", "role": "participant"}
            assert boss_welcome["you"] == {"user": "admin", "role": "moderator"}
            await fake.send(json.dumps({"type": "end_meeting"}))
            assert "only a moderator" in (await next_of(fake, "error"))["message"]
            await other.send(json.dumps({"type": "end_meeting"}))
            assert "only a moderator" in (await next_of(other, "error"))["message"]
        finally:
            for ws in (fake, other, boss):
                await ws.close()

    asyncio.run(scenario())


def test_the_creator_of_an_anonymous_meeting_moderates_with_its_key(cluster: Cluster) -> None:
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Mine", "moderator": "Zoe"}
    ).json()
    key = created["moderator_key"]
    assert key and created["moderator_url"] == f"{created['join_url']}?key={key}"
    # The key is shown once: the meeting as anyone reads it later has none.
    detail = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{created['id']}").json()
    assert "moderator_key" not in detail and key not in json.dumps(detail)

    wrong = enter(cluster, created["id"], name="Zoe", key="not-the-key")
    assert wrong.status_code == 403 and "moderator link is not" in wrong.text
    with httpx.Client() as zoe:
        by_link = enter(cluster, created["id"], name="Zoe", key=key, browser=zoe)
        assert by_link.status_code == 303
        assert zoe.cookies.get(f"moot_key_{created['id']}") == key  # kept by the browser
        again = enter(cluster, created["id"], name="Zoe", browser=zoe)  # the cookie suffices
    # Without the key, "Zoe" is a guest's name; the API answers the key holder only.
    guest = enter(cluster, created["id"], name="Zoe")
    refused = cluster.client.patch(
        f"{cluster.ems_url}/api/v1/meetings/{created['id']}", json={"moderator": "Eve"}
    )
    assert refused.status_code == 401 and "only the moderator" in refused.json()["detail"]
    changed = cluster.client.patch(
        f"{cluster.ems_url}/api/v1/meetings/{created['id']}",
        json={"name": "Mine, renamed"},
        headers={"X-Moderator-Key": key},
    )
    assert changed.status_code == 200

    async def scenario() -> None:
        mod, mod_welcome = await welcome_of(by_link.headers["location"])
        tab, tab_welcome = await welcome_of(again.headers["location"])
        other, other_welcome = await welcome_of(guest.headers["location"])
        try:
            assert mod_welcome["you"] == {"user": "Zoe", "role": "moderator"}
            assert tab_welcome["you"] == {"user": "Zoe", "role": "moderator"}  # her 2nd tab
            assert other_welcome["you"] == {"user": "Zoe (guest)", "role": "participant"}
            await mod.send(json.dumps({"type": "end_meeting"}))
            assert "Zoe" in (await next_of(other, "ended"))["reason"]
        finally:
            for ws in (mod, tab, other):
                await ws.close()

    asyncio.run(scenario())


def test_two_people_never_hold_one_name_in_a_meeting(cluster: Cluster) -> None:
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Names"}
    ).json()
    with httpx.Client() as first_browser, httpx.Client() as second_browser:
        first = enter(cluster, created["id"], name="Sam", browser=first_browser)
        first_again = enter(cluster, created["id"], name="Sam", browser=first_browser)
        second = enter(cluster, created["id"], name="sam", browser=second_browser)
    pages = [r.headers["location"] for r in (first, first_again, second)]

    async def scenario() -> None:
        one, one_welcome = await welcome_of(pages[0])
        try:
            assert one_welcome["you"]["user"] == "Sam"
            # The same browser's second tab is the same person: in, under the same name.
            tab, tab_welcome = await welcome_of(pages[1])
            assert tab_welcome["you"]["user"] == "Sam"
            await tab.close()
            # Another browser that typed the name (in another case) is refused, page and socket.
            page = await asyncio.to_thread(httpx.get, pages[2])
            assert page.status_code == 409 and "Someone else in this meeting is called" in page.text
            async with websockets.connect(socket_url(pages[2])) as other:
                error = await next_of(other, "error")
                assert "Someone else in this meeting is called sam" in error["message"]
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await other.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
        finally:
            await one.close()

    asyncio.run(scenario())


def test_a_signed_in_users_name_typed_by_a_visitor_is_a_guests(cluster: Cluster) -> None:
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Guests"}
    ).json()
    typed = enter(cluster, created["id"], name="Bob")  # bob is a user of this Moot
    signed = enter(cluster, created["id"], headers=sign_in(cluster, "bob", "bob-password"))

    async def scenario() -> None:
        guest, guest_welcome = await welcome_of(typed.headers["location"])
        bob, bob_welcome = await welcome_of(signed.headers["location"])
        try:
            assert guest_welcome["you"] == {"user": "Bob (guest)", "role": "participant"}
            assert bob_welcome["you"] == {"user": "bob", "role": "participant"}
        finally:
            await guest.close()
            await bob.close()

    asyncio.run(scenario())
    assert urlsplit(typed.headers["location"]).path.endswith(f"/meeting/{created['id']}")
