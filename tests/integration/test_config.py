"""The cluster configuration through the EMS: versions, overrides, history, refusals, and
delivery to running room servers (real processes), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient

from moot.core.configuration import MASK
from moot.ems.auth.identity import CLUSTER_ADMINISTRATOR
from moot.ems.auth.users import add_user
from moot.ems.cluster.manager import ClusterManager
from moot.ems.configuration import ConfigConflict, ConfigService
from moot.ems.store.db import create_engine, session_factory
from moot.harness import Cluster
from tests.integration.conftest import form_fields

TURN = {"url": "turn:turn.example:3478", "username": "moot", "credential": "very-s3cret"}


def add_room(api: TestClient, name: str = "room1") -> None:
    answer = api.post(
        "/api/v1/servers",
        json={"name": name, "url": f"http://{name}.example:8001", "max_active_meetings": 5},
    )
    assert answer.status_code == 201, answer.text


def test_versions_overrides_and_history(api: TestClient) -> None:
    add_room(api)
    start = api.get("/api/v1/config").json()
    assert start["version"] == 0 and start["cluster"]["version"] == 0
    assert start["cluster"]["values"]["max_chat_length"] == 2000
    keys = {k["name"]: k for k in start["keys"]}
    assert keys["max_chat_length"]["applies"] == "live"
    assert keys["http_proxy"]["applies"] == "restart"
    assert keys["advertised_url"]["scope"] == "server"
    [room] = start["servers"]
    assert room["name"] == "room1" and room["state"] == "offline"  # not connected

    changed = api.patch(
        "/api/v1/config/cluster",
        json={
            "based_on": 0,
            "values": {"max_chat_length": 500, "turn_servers": [TURN]},
            "comment": "shorter lines",
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["version"] == 1 and body["cluster"]["version"] == 1
    assert body["cluster"]["values"]["max_chat_length"] == 500
    assert body["cluster"]["values"]["turn_servers"][0]["credential"] == MASK
    assert "very-s3cret" not in changed.text

    # One server's override, then the cluster again: the override stays, marked as such.
    over = api.patch(
        "/api/v1/config/servers/room1", json={"based_on": 0, "values": {"max_chat_length": 300}}
    )
    assert over.status_code == 200, over.text
    again = api.patch(
        "/api/v1/config/cluster",
        json={"based_on": 1, "values": {"welcome_message": "Welcome to Acme"}},
    )
    assert again.status_code == 200, again.text
    [room] = again.json()["servers"]
    assert room["overrides"] == {
        "version": 2,
        "values": {"max_chat_length": 300},
        "changed_by": CLUSTER_ADMINISTRATOR,
        "changed_at": room["overrides"]["changed_at"],
        "comment": "",
    }
    assert room["overridden"] == ["max_chat_length"]
    assert room["effective"]["max_chat_length"] == 300
    assert room["effective"]["welcome_message"] == "Welcome to Acme"
    assert room["version"] == 3
    # The credential survives a PUT that sends its mask back.
    put = api.put(
        "/api/v1/config/cluster",
        json={"based_on": 3, "values": {**again.json()["cluster"]["values"], "max_audio_kbps": 32}},
    )
    assert put.status_code == 200, put.text
    assert "very-s3cret" not in put.text

    history = api.get("/api/v1/config/history").json()
    assert [(h["version"], h["scope"]) for h in history] == [
        (4, "cluster"),
        (3, "cluster"),
        (2, "room1"),
        (1, "cluster"),
    ]
    assert all(h["changed_by"] == CLUSTER_ADMINISTRATOR for h in history)
    when = datetime.fromisoformat(history[0]["changed_at"])
    assert abs(datetime.now(UTC) - when.replace(tzinfo=when.tzinfo or UTC)) < timedelta(minutes=1)
    first = {c["key"]: c for c in history[3]["changes"]}
    assert first["max_chat_length"] == {"key": "max_chat_length", "before": 2000, "after": 500}
    assert history[3]["comment"] == "shorter lines"
    assert [c["key"] for c in history[0]["changes"]] == ["max_audio_kbps"]
    assert history[2]["changes"] == [{"key": "max_chat_length", "before": None, "after": 300}]
    assert "very-s3cret" not in json.dumps(history)
    only_room = api.get("/api/v1/config/history", params={"scope": "room1"}).json()
    assert [h["version"] for h in only_room] == [2]

    # Null puts a server's key back on the cluster's value; DELETE drops every override.
    back = api.patch(
        "/api/v1/config/servers/room1", json={"based_on": 2, "values": {"max_chat_length": None}}
    )
    assert back.json()["servers"][0]["overridden"] == []
    api.patch("/api/v1/config/servers/room1", json={"based_on": 5, "values": {"no_proxy": "x"}})
    dropped = api.delete("/api/v1/config/servers/room1", params={"based_on": 6})
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["servers"][0]["overrides"]["values"] == {}
    # Nothing changed: no new version.
    same = api.patch("/api/v1/config/cluster", json={"based_on": 4, "values": {}})
    assert same.json()["version"] == 7


def test_refusals_stale_bad_values_unknown_server_and_who_may(
    api: TestClient, database_url: str
) -> None:
    add_room(api)
    api.patch("/api/v1/config/cluster", json={"based_on": 0, "values": {"max_chat_length": 99}})

    stale = api.patch(
        "/api/v1/config/cluster", json={"based_on": 0, "values": {"max_chat_length": 100}}
    )
    assert stale.status_code == 409
    assert "changed since version 0" in stale.json()["detail"]
    assert CLUSTER_ADMINISTRATOR in stale.json()["detail"]

    bad = api.patch(
        "/api/v1/config/cluster",
        json={
            "based_on": 1,
            "values": {
                "max_chat_length": 0,
                "turn_servers": [{"url": "http://x", "username": "u", "credential": "c"}],
                "favourite_colour": "red",
            },
        },
    )
    assert bad.status_code == 422
    where = {tuple(e["loc"]): e["msg"] for e in bad.json()["detail"]}
    assert set(where) == {
        ("body", "values", "max_chat_length"),
        ("body", "values", "turn_servers", "0", "url"),
        ("body", "values", "favourite_colour"),
    }
    cluster_wide = api.patch(
        "/api/v1/config/cluster",
        json={"based_on": 1, "values": {"advertised_url": "https://all.example"}},
    )
    assert cluster_wide.status_code == 422
    assert "one room server" in cluster_wide.json()["detail"][0]["msg"]
    assert api.get("/api/v1/config").json()["version"] == 1  # nothing saved half

    missing = api.patch("/api/v1/config/servers/nope", json={"based_on": 0, "values": {}})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]

    nobody = {"Authorization": ""}  # no credential: anonymous
    assert api.get("/api/v1/config", headers=nobody).status_code == 401
    asyncio.run(add_user(database_url, "bob", "bob-password"))
    token = api.post("/api/v1/auth/token", json={"username": "bob", "password": "bob-password"})
    bob = {"Authorization": f"Bearer {token.json()['token']}"}
    assert api.get("/api/v1/config", headers=bob).status_code == 403
    refused = api.patch("/api/v1/config/cluster", headers=bob, json={"based_on": 1, "values": {}})
    assert refused.status_code == 403
    assert api.get("/admin/config", headers=bob).status_code == 403
    to_sign_in = api.get("/admin/config", headers=nobody, follow_redirects=False)
    assert to_sign_in.status_code == 303 and to_sign_in.headers["location"].startswith("/signin")


def test_the_page_shows_errors_beside_the_field_and_saves(api: TestClient) -> None:
    add_room(api)
    page = api.get("/admin/config")
    assert page.status_code == 200
    assert 'id="cfg-max_chat_length"' in page.text and "Applies at once" in page.text
    assert "Applies when the room servers restart" in page.text  # the proxy keys

    fields = form_fields(
        api,
        scope="cluster",
        based_on="0",
        max_chat_length="many",
        max_chat_lines_per_minute="60",
        max_video_kbps="1500",
        max_audio_kbps="64",
        comment="try",
    )
    wrong = api.post("/admin/config", data=fields)
    assert wrong.status_code == 422
    assert re.search(r'id="cfg-max_chat_length-error">give a whole number<', wrong.text)
    assert 'value="try"' in wrong.text  # what was typed is kept
    fields |= {
        "default_tools": ["chat", "polls"],  # type: ignore[dict-item]
        "max_chat_length": "120",
        "welcome_message": "<b>Hello</b>",
        "turn_count": "0",
        "turn.0.url": TURN["url"],
        "turn.0.username": TURN["username"],
        "turn.0.credential": TURN["credential"],
    }
    saved = api.post("/admin/config", data=fields, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/config?saved=1"
    shown = api.get("/admin/config?saved=1").text
    assert "version 1" in shown and 'value="120"' in shown
    assert "&lt;b&gt;Hello&lt;/b&gt;" in shown and "<b>Hello" not in shown
    assert "very-s3cret" not in shown

    # On the server's page: an override is shown as one, beside the cluster's value.
    over = form_fields(
        api,
        scope="room1",
        based_on="0",
        max_chat_length="80",
        **{f"inherit.{k}": "on" for k in ("welcome_message", "max_video_kbps", "max_audio_kbps")},
    )
    # Every key not listed as inherited above would override: tick the rest as inherited.
    for key in api.get("/api/v1/config").json()["keys"]:
        if key["name"] != "max_chat_length":
            over[f"inherit.{key['name']}"] = "on"
    assert api.post("/admin/config", data=over, follow_redirects=False).status_code == 303
    server_page = api.get("/admin/config?server=room1").text
    assert re.search(r"Overrides the cluster value <strong>120</strong>", server_page)
    assert api.get("/api/v1/config").json()["servers"][0]["overrides"]["values"] == {
        "max_chat_length": 80
    }
    history = api.get("/admin/config/history").text
    assert "Longest chat line" in history and "120" in history and "very-s3cret" not in history
    assert api.get("/admin/config?server=ghost").status_code == 404


# -- delivery to running room servers -------------------------------------------------


def attend(cluster: Cluster, meeting_id: str, name: str) -> str:
    answer = cluster.client.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}, timeout=10
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def page_config(page_url: str) -> tuple[dict[str, Any], str]:
    html = httpx.get(page_url, timeout=5).text
    found = re.search(r'<script type="application/json" id="meeting-config">(.*?)</script>', html)
    assert found, html
    return json.loads(found.group(1)), html


def record(cluster: Cluster, admin: httpx.Client, name: str) -> tuple[str, str]:
    """A recorded meeting that names no tools, started now; its page's address and its id."""
    created = admin.post(
        "/api/v1/meetings", json={"name": name, "moderator": "Alice", "tools": [], "record": True}
    )
    assert created.status_code == 201, created.text
    return attend(cluster, created.json()["id"], "Alice"), created.json()["id"]


def admin_of(cluster: Cluster) -> httpx.Client:
    return httpx.Client(base_url=cluster.ems_url, headers=cluster.admin, timeout=10)


def wait_applied(cluster: Cluster, names: set[str], version: int) -> None:
    def done() -> bool:
        with admin_of(cluster) as admin:
            servers = admin.get("/api/v1/config").json()["servers"]
        return all(
            s["state"] == "applied" and s["applied_version"] == version
            for s in servers
            if s["name"] in names
        )

    cluster.wait_for(done, f"configuration {version} applied on {sorted(names)}", timeout=10)


async def chat_answer(page_url: str, text: str) -> dict[str, Any]:
    """Send one chat line from the page's socket; the room server's answer (ack or error)."""
    parts = urlsplit(page_url)
    async with websockets.connect(f"ws://{parts.netloc}{parts.path}/ws?{parts.query}") as ws:
        while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "welcome":
            pass
        await ws.send(json.dumps({"type": "chat", "id": f"l-{len(text)}", "text": text}))
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] in ("ack", "error"):
                return message


@pytest.mark.processes
def test_a_change_reaches_running_room_servers_and_takes_effect(cluster: Cluster) -> None:
    with admin_of(cluster) as admin:
        delivered(cluster, admin)


def delivered(cluster: Cluster, admin: httpx.Client) -> None:
    pids = {p.name: p.popen.pid for p in cluster.processes}
    wait_applied(cluster, {"room1", "room2"}, 0)  # the defaults, sent at registration
    created = admin.post(
        "/api/v1/meetings", json={"name": "Config", "moderator": "Alice", "tools": []}
    )
    assert created.status_code == 201, created.text
    meeting = created.json()
    host, other = meeting["server"], ({"room1", "room2"} - {meeting["server"]}).pop()
    page = attend(cluster, meeting["id"], "Alice")
    config, html = page_config(page)
    assert config["max_chat_length"] == 2000 and config["ice_servers"] == []
    assert 'id="welcome"' not in html
    assert len(config["tools"]) == 6  # named none: the default tools
    assert asyncio.run(chat_answer(page, "x" * 30))["type"] == "ack"
    before_page, before_id = record(cluster, admin, "Recorded before")
    _, recorded = page_config(before_page)
    assert 'id="recording"' in recorded
    assert admin.get(f"/api/v1/meetings/{before_id}/recording").status_code == 200

    started = time.monotonic()
    changed = admin.patch(
        "/api/v1/config/cluster",
        json={
            "based_on": 0,
            "values": {
                "max_chat_length": 20,
                "welcome_message": "Be kind <here>",
                "stun_servers": ["stun:stun.example:3478"],
                "turn_servers": [TURN],
                "max_video_kbps": 800,
                "default_tools": ["polls", "chat"],
                "recording_allowed": False,
            },
        },
    )
    assert changed.status_code == 200, changed.text
    wait_applied(cluster, {"room1", "room2"}, 1)
    assert time.monotonic() - started < 5
    config, html = page_config(page)  # the same page, opened again: no restart in between
    assert config["config_version"] == 1 and config["max_chat_length"] == 20
    assert config["max_video_kbps"] == 800
    assert config["ice_servers"] == [
        {"urls": ["stun:stun.example:3478"]},
        {"urls": [TURN["url"]], "username": "moot", "credential": TURN["credential"]},
    ]
    assert '<p id="welcome" class="welcome" role="note">Be kind &lt;here&gt;</p>' in html
    assert 'maxlength="20"' in html
    refused = asyncio.run(chat_answer(page, "y" * 25))
    assert refused == {
        "type": "error",
        "message": "a chat line is at most 20 characters here",
        "id": "l-25",
    }
    assert asyncio.run(chat_answer(page, "short"))["type"] == "ack"
    after_page, after_id = record(cluster, admin, "Recorded after")
    later, recorded = page_config(after_page)
    assert later["tools"] == ["chat", "polls"] and later["recording"] is False
    assert 'id="recording"' not in recorded
    # The EMS keeps no recording either: the page says nothing is recorded, and nothing is.
    kept = admin.get(f"/api/v1/meetings/{after_id}/recording")
    assert kept.status_code == 404 and "recording_allowed" in kept.json()["detail"], kept.text

    # An override on the meeting's server: it alone takes longer lines.
    over = admin.patch(
        f"/api/v1/config/servers/{host}",
        json={"based_on": 0, "values": {"max_chat_length": 40}},
    )
    assert over.status_code == 200, over.text
    wait_applied(cluster, {host}, 2)
    assert asyncio.run(chat_answer(page, "z" * 25))["type"] == "ack"
    servers = {s["name"]: s for s in admin.get("/api/v1/config").json()["servers"]}
    assert servers[host]["overridden"] == ["max_chat_length"]
    assert servers[other]["version"] == 1 and servers[other]["effective"]["max_chat_length"] == 20

    # The advertised address: the EMS sends browsers there at once.
    port = urlsplit(page).port
    advertised = admin.patch(
        f"/api/v1/config/servers/{host}",
        json={"based_on": 2, "values": {"advertised_url": f"http://localhost:{port}"}},
    )
    assert advertised.status_code == 200, advertised.text
    assert attend(cluster, meeting["id"], "Bob").startswith(f"http://localhost:{port}/meeting/")

    assert {p.name: p.popen.pid for p in cluster.processes} == pids
    assert all(p.alive() for p in cluster.processes)

    # The command line, as an administrator on a machine of the cluster.
    cli = cluster.moot("config", "set", "welcome_message=From the CLI", "--comment", "by cli")
    assert cli.returncode == 0, cli.stderr
    assert "configuration version 4" in cli.stdout
    assert f"{host}: version 4, applied" in cli.stdout
    assert "From the CLI" in page_config(page)[1]
    shown = cluster.moot("config", "show", "--server", host)
    assert shown.returncode == 0, shown.stderr
    assert "meeting.max_chat_length = 40  (overrides the cluster value)" in shown.stdout
    bad = cluster.moot("config", "set", "max_chat_length=0")
    assert bad.returncode != 0 and "values.max_chat_length" in bad.stderr + bad.stdout

    # A room server that starts later gets the configuration when it registers.
    cluster.start_room("room3")
    wait_applied(cluster, {"room3"}, 4)
    # A restarted EMS still has every version: they are in the store.
    assert cluster.ems is not None
    cluster.ems.stop()
    cluster.processes.remove(cluster.ems)
    cluster.start_ems()
    wait_applied(cluster, {host, other, "room3"}, 4)


def test_another_ems_node_notices_a_change_through_the_store(migrated_url: str) -> None:
    """Two EMS nodes on one database: what one stores, the other reads at its next poll."""

    async def scenario() -> None:
        engine = create_engine(migrated_url)
        sessions = session_factory(engine)
        nodes = []
        for _ in range(2):
            cluster = ClusterManager(
                sessions=sessions,
                cluster_secret="s",
                public_key_pem="",
                heartbeat_interval=1.0,
                auto_register=True,
                command_timeout=1.0,
            )
            service = ConfigService(sessions=sessions, cluster=cluster)
            await service.load()
            nodes.append(service)
        first, second = nodes
        polling = asyncio.create_task(second.run(interval=0.05))
        try:
            version = await first.change(
                "cluster",
                {"welcome_message": "from node one"},
                based_on=0,
                replace=False,
                changed_by="alice",
            )
            assert version == 1 and second.version == 0
            for _ in range(100):
                if second.version == 1:
                    break
                await asyncio.sleep(0.05)
            assert second.version == 1
            assert second.scope("cluster").settings["welcome_message"] == "from node one"
            # The second node's next change is based on what it read: accepted, no 409.
            await second.change(
                "cluster", {"max_chat_length": 10}, based_on=1, replace=False, changed_by="bob"
            )
            with pytest.raises(ConfigConflict):  # the first node has not polled yet
                await first.change(
                    "cluster", {"max_chat_length": 11}, based_on=1, replace=False, changed_by="al"
                )
        finally:
            # Ended before the store is closed, as the EMS's container does: a poll cancelled
            # mid-query and left to asyncio.run's end hung there once in 120 s, its
            # connection's engine disposed under it.
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await second.close()
            await first.close()
            await engine.dispose()

    asyncio.run(scenario())


def test_two_nodes_changing_at_the_same_moment_one_is_refused(migrated_url: str) -> None:
    """Two EMS nodes both based on version 0 number their change 1: one is stored, the
    other is refused as a conflict naming who changed it (never a server error)."""

    async def scenario() -> None:
        engine = create_engine(migrated_url)
        sessions = session_factory(engine)
        nodes = []
        for _ in range(2):
            cluster = ClusterManager(
                sessions=sessions,
                cluster_secret="s",
                public_key_pem="",
                heartbeat_interval=1.0,
                auto_register=True,
                command_timeout=1.0,
            )
            service = ConfigService(sessions=sessions, cluster=cluster)
            await service.load()
            nodes.append(service)
        try:
            results = await asyncio.gather(
                nodes[0].change(
                    "cluster", {"max_chat_length": 10}, based_on=0, replace=False, changed_by="ann"
                ),
                nodes[1].change(
                    "cluster", {"max_chat_length": 20}, based_on=0, replace=False, changed_by="bob"
                ),
                return_exceptions=True,
            )
            stored = [r for r in results if isinstance(r, int)]
            refused = [r for r in results if isinstance(r, BaseException)]
            assert stored == [1], results
            [conflict] = refused
            assert isinstance(conflict, ConfigConflict), repr(conflict)
            winner = "ann" if results[0] == 1 else "bob"
            assert winner in str(conflict)
            # The refused node is not left broken: its next change, based on 1, is stored.
            loser = nodes[1] if results[0] == 1 else nodes[0]
            assert (
                await loser.change(
                    "cluster", {"max_chat_length": 30}, based_on=1, replace=False, changed_by="x"
                )
                == 2
            )
        finally:
            for node in nodes:
                await node.close()
            await engine.dispose()

    asyncio.run(scenario())


def test_control_characters_and_a_bad_turn_count_are_refused(api: TestClient) -> None:
    """NUL (PostgreSQL refuses it) and other control characters in a value or the comment:
    a 422 naming the field, by the API and beside the field on the page; nothing saved.
    A form whose TURN row count is not a small number is refused, not looped over."""
    add_room(api)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"values": {"welcome_message": "hi\u0000there"}}, ["body", "values", "welcome_message"]),
        ({"values": {"no_proxy": "a.example\u001b"}}, ["body", "values", "no_proxy"]),
        (
            {"values": {"turn_servers": [{**TURN, "username": "mo\u0000ot"}]}},
            ["body", "values", "turn_servers", "0", "username"],
        ),
        ({"values": {"max_chat_length": 10}, "comment": "why\u0000"}, ["body", "comment"]),
    ]
    for body, where in cases:
        answer = api.patch("/api/v1/config/cluster", json={"based_on": 0, **body})
        assert answer.status_code == 422, (body, answer.text)
        [error] = answer.json()["detail"]
        assert error["loc"] == where and "control character" in error["msg"], error
    lines = api.patch(
        "/api/v1/config/cluster",
        json={"based_on": 0, "values": {"welcome_message": "Hello\r\n\tall"}},
    )
    assert lines.status_code == 200, lines.text  # a welcome message has lines
    assert api.get("/api/v1/config").json()["version"] == 1

    base = {"scope": "cluster", "based_on": "1", "max_chat_length": "100"}
    base |= {"max_video_kbps": "1500", "max_audio_kbps": "64", "max_chat_lines_per_minute": "60"}
    fields = form_fields(api, **base, comment="a\u0000b")
    page = api.post("/admin/config", data=fields)
    assert page.status_code == 422
    assert re.search(r'id="cfg-comment-error">[^<]*control character U\+0000', page.text)
    assert re.search(r'id="cfg-comment"[^>]*aria-invalid="true"', page.text)
    fields = form_fields(api, **base, welcome_message="x\u0000")
    page = api.post("/admin/config", data=fields)
    assert page.status_code == 422
    assert re.search(r'id="cfg-welcome_message-error">[^<]*control character', page.text)

    for count in ("abc", "-1", "3000000"):
        started = time.monotonic()
        page = api.post("/admin/config", data=form_fields(api, **base, turn_count=count))
        assert page.status_code == 422, (count, page.text[:300])
        assert time.monotonic() - started < 1.0
        assert re.search(
            r'id="cfg-turn_servers-error">the list of TURN servers could not', page.text
        )
    assert api.get("/api/v1/config").json()["version"] == 1  # none of them saved


def test_an_anonymous_post_is_asked_to_sign_in_and_csrf_still_holds(api: TestClient) -> None:
    """Anonymous: the 401 sign-in page, before the CSRF check (no token to have); an
    administrator's post without the token: 403, nothing saved."""
    nobody = {"Authorization": ""}
    anonymous = api.post(
        "/admin/config", headers=nobody, data={"scope": "cluster", "based_on": "0"}
    )
    assert anonymous.status_code == 401, anonymous.text[:300]
    assert "Sign in" in anonymous.text
    no_token = api.post("/admin/config", data={"scope": "cluster", "based_on": "0"})
    assert no_token.status_code == 403
    assert api.get("/api/v1/config").json()["version"] == 0
