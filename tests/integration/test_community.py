"""Community services across real room servers and the machine's NATS JetStream.

One cluster (an EMS and two room servers, on SQLite: community state lives on NATS) for the
module; each test signs its own people in, under a bus prefix of the cluster's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import nats
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from moot.ems.auth.users import add_user
from moot.harness import Cluster
from moot.infra.tokens import (
    load_or_create_private_key,
    sign_community_token,
    sign_join_token,
)
from tests.services import nats_url

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
WAIT = 20.0  # seconds: generous, for a loaded machine


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bus = nats_url()
    workdir = tmp_path_factory.mktemp("community")
    url = f"sqlite+aiosqlite:///{workdir / 'moot.db'}"
    for user in USERS:
        asyncio.run(add_user(url, user, f"{user}-password", display_name=user.title()))
    cluster = Cluster(workdir=workdir, database_url=url, community_bus=bus)
    try:
        cluster.start_ems(MOOT_SAMPLE_INTERVAL="1")  # samples (reports) every second
        cluster.start_rooms("room1", "room2")
        cluster.wait_for(lambda: len(offering(cluster)) == 2, "community services on both")
        yield cluster
    finally:
        cluster.stop()
        asyncio.run(delete_bus_state(bus, cluster.community_prefix))


def offering(cluster: Cluster) -> list[str]:
    """The room servers a signed-in person is sent to, best first."""
    answer = cluster.client.post(
        cluster.ems_url + "/api/v1/community/connect", headers=bearer(cluster, "alice")
    )
    return [s["name"] for s in answer.json()["servers"]] if answer.status_code == 200 else []


async def delete_bus_state(url: str, prefix: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in ("presence", "servers", "people", "conv"):
        with contextlib.suppress(Exception):
            await js.delete_key_value(f"{prefix}_{name}")
    with contextlib.suppress(Exception):
        await js.delete_stream(f"{prefix}_im")
    await nc.close()


_tokens: dict[str, str] = {}


def bearer(cluster: Cluster, user: str) -> dict[str, str]:
    if user not in _tokens:
        answer = cluster.client.post(
            cluster.ems_url + "/api/v1/auth/token",
            json={"username": user, "password": f"{user}-password"},
        )
        assert answer.status_code == 200, answer.text
        _tokens[user] = answer.json()["token"]
    return {"Authorization": f"Bearer {_tokens[user]}"}


_devices = itertools.count()


class Client:
    """One device of a person, as the page is: a WebSocket to one room server."""

    def __init__(self, socket: ClientConnection, welcome: dict[str, Any], server: str) -> None:
        self.socket = socket
        self.welcome = welcome
        self.server = server
        self.me = str(welcome["me"])
        self.seen: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        await self.socket.send(json.dumps(message))

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next message of `kind` with these fields (others are kept in `seen`)."""

        async def read() -> dict[str, Any]:
            while True:
                message = json.loads(await self.socket.recv())
                self.seen.append(message)
                if message.get("type") == kind and all(
                    message.get(k) == v for k, v in fields.items()
                ):
                    return message

        return await asyncio.wait_for(read(), WAIT)

    async def expect_any(self, *kinds: str) -> dict[str, Any]:
        """The next message of any of `kinds`."""

        async def read() -> dict[str, Any]:
            while True:
                message = json.loads(await self.socket.recv())
                self.seen.append(message)
                if message.get("type") in kinds:
                    return message

        return await asyncio.wait_for(read(), WAIT)


@contextlib.asynccontextmanager
async def signed_in(cluster: Cluster, user: str, server: str) -> AsyncIterator[Client]:
    """`user` connected to room server `server` (taken from the EMS's list)."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            cluster.ems_url + "/api/v1/community/connect", headers=bearer(cluster, user)
        )
    assert answer.status_code == 200, answer.text
    ticket = answer.json()
    [url] = [s["url"] for s in ticket["servers"] if s["name"] == server]
    device = f"test{next(_devices):08d}"
    async with connect(f"{url}?token={ticket['token']}&device={device}") as socket:
        welcome = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
        assert welcome["type"] == "welcome", welcome
        yield Client(socket, welcome, server)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_presence_and_chat_cross_room_servers(community: Cluster) -> None:
    async def scenario() -> None:
        async with (
            signed_in(community, "alice", "room1") as alice,
            signed_in(community, "bob", "room2") as bob,
        ):
            assert alice.me == "/alice" and bob.me == "/bob"
            await alice.send(type="watch", people=[bob.me])
            await alice.expect("presence", pid=bob.me, state="available")
            await bob.send(type="set_presence", state="dnd", status="writing the report")
            seen = await alice.expect("presence", pid=bob.me, state="dnd")
            assert seen["status"] == "writing the report"

            await alice.send(type="open_chat", **{"with": bob.me, "name": "Bob"})
            conv = (await alice.expect("conversation"))["id"]
            await bob.expect("conversation", id=conv)  # made on room1, known on room2
            await alice.send(type="send", id="m1", conversation=conv, text="hello Bob")
            ack = await alice.expect("ack", id="m1")
            got = await bob.expect("message", id="m1")
            assert got["text"] == "hello Bob" and got["from"] == alice.me
            assert got["seq"] == ack["seq"]
            # A resend after a reconnect is the same message: the same seq, never shown twice.
            await alice.send(type="send", id="m1", conversation=conv, text="hello Bob")
            assert (await alice.expect("ack", id="m1"))["seq"] == ack["seq"]
            await alice.send(type="send", id="m2", conversation=conv, text="second")
            await bob.expect("message", id="m2")
            assert [m["id"] for m in bob.seen if m["type"] == "message"] == ["m1", "m2"]
            # History survives: a new device of bob's reads it.
            async with signed_in(community, "bob", "room1") as tablet:
                [listed] = [c for c in tablet.welcome["conversations"] if c["id"] == conv]
                assert listed["members"] == sorted([alice.me, bob.me]) or set(
                    listed["members"]
                ) == {alice.me, bob.me}
                await tablet.send(type="history", conversation=conv)
                texts = [m["text"] for m in (await tablet.expect("history"))["messages"]]
                assert texts == ["hello Bob", "second"]
                # Two devices, one presence: bob's choice holds on the new one too.
                assert tablet.welcome["state"] == "dnd"

    run(scenario())


def test_a_person_who_leaves_goes_offline_for_the_other_server(community: Cluster) -> None:
    async def scenario() -> None:
        async with signed_in(community, "carol", "room1") as carol:
            async with signed_in(community, "dave", "room2") as dave:
                await carol.send(type="watch", people=[dave.me])
                await carol.expect("presence", pid=dave.me, state="available")
            await carol.expect("presence", pid=dave.me, state="offline")

    run(scenario())


def test_limits_blocking_and_partitions(community: Cluster) -> None:
    async def scenario() -> None:
        async with (
            signed_in(community, "erin", "room1") as erin,
            signed_in(community, "frank", "room2") as frank,
        ):
            await erin.send(type="open_chat", **{"with": frank.me})
            conv = (await erin.expect("conversation"))["id"]
            await erin.send(type="send", id="long", conversation=conv, text="x" * 4001)
            error = await erin.expect("error", id="long")
            assert "too long" in error["message"]
            # A burst beyond the rate limit: the refused one says when to try again.
            for n in range(12):
                await erin.send(type="send", id=f"b{n}", conversation=conv, text=f"line {n}")
            answers = {}
            for _ in range(12):
                answer = await erin.expect_any("ack", "error")
                answers[answer["id"]] = answer
            refused = [a for a in answers.values() if a["type"] == "error"]
            assert refused and all("too many messages" in a["message"] for a in refused)
            assert answers["b0"]["type"] == "ack"
            # Someone of another partition is neither watched nor written to.
            await erin.send(type="open_chat", id="zoe", **{"with": "sales/zoe"})
            error = await erin.expect("error", id="zoe")
            assert "own organisation" in error["message"]
            # Frank blocks Erin: her messages are refused from then on.
            await frank.send(type="block", pid=erin.me)
            await frank.expect("blocked")
            await erin.send(type="send", id="after-block", conversation=conv, text="hi?")
            error = await erin.expect("error", id="after-block")
            assert "does not take your messages" in error["message"]

    run(scenario())


def test_a_meetings_roster_shows_presence_of_ones_own_partition_only(
    community: Cluster,
) -> None:
    """Alice (a local user) and Zoe (of the "eng" partition) in one meeting: each page
    is told the presence of the people of its reader's partition, live, and no other."""
    created = community.client.post(
        community.ems_url + "/api/v1/meetings",
        json={"name": "Partitions", "moderator": "alice"},
        headers=community.admin,
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    # A guest's entry opens the meeting on its room server: its address and epoch.
    entered = community.client.get(
        f"{community.ems_url}/m/{meeting_id}", params={"name": "Gus"}, timeout=10
    )
    assert entered.status_code == 303, entered.text
    page = httpx.URL(entered.headers["location"])
    guest_token = page.params["token"]
    epoch = int(jwt.decode(guest_token, options={"verify_signature": False})["epoch"])
    # Zoe's partition comes from a directory this cluster lacks: her tokens are signed
    # with the EMS's own key, as the EMS signs them for a person of "eng".
    key = load_or_create_private_key(community.workdir / "data" / "signing-key.pem")

    def meeting_socket(token: str) -> str:
        return f"ws://{page.host}:{page.port}{page.path}/ws?roster=changes&token={token}"

    def joining(user: str, partition: str) -> str:
        token = sign_join_token(
            key,
            meeting_id=meeting_id,
            user=user,
            role="participant",
            epoch=epoch,
            ttl_seconds=600,
            person=f"user:{partition}:{user}",
        )
        return meeting_socket(token)

    async def scenario() -> None:
        ticket = community.client.post(
            community.ems_url + "/api/v1/community/connect", headers=bearer(community, "alice")
        ).json()
        zoe_token = sign_community_token(
            key, username="zoe", display_name="Zoe", partition="eng", ttl_seconds=600
        )
        url = ticket["servers"][0]["url"]
        async with (
            signed_in(community, "alice", "room1"),
            connect(f"{url}?token={zoe_token}&device=zoe-device-1") as zoe,
        ):
            assert json.loads(await zoe.recv())["type"] == "welcome"
            await zoe.send(json.dumps({"type": "set_presence", "state": "dnd"}))
            async with (
                connect(joining("alice", "")) as alice_page,
                connect(joining("zoe", "eng")) as zoe_page,
                connect(meeting_socket(guest_token)) as guest_page,
            ):
                told: dict[str, list[dict[str, Any]]] = {"alice": [], "zoe": [], "guest": []}

                async def read(name: str, socket: ClientConnection) -> None:
                    async for text in socket:
                        message = json.loads(text)
                        if message["type"] == "presence":
                            told[name].append(message)

                readers = [
                    asyncio.create_task(read(n, s))
                    for n, s in (("alice", alice_page), ("zoe", zoe_page), ("guest", guest_page))
                ]

                async def until(check: Any) -> None:
                    deadline = asyncio.get_running_loop().time() + WAIT
                    while not check():
                        assert asyncio.get_running_loop().time() < deadline, told
                        await asyncio.sleep(0.05)

                await until(lambda: any(m["state"] == "dnd" for m in told["zoe"]))
                await until(lambda: any(m["user"] == "alice" for m in told["alice"]))
                await zoe.send(json.dumps({"type": "set_presence", "state": "available"}))
                await until(lambda: told["zoe"][-1]["state"] == "available")
                await asyncio.sleep(0.5)  # what else would come, has
                for task in readers:
                    task.cancel()
                assert {m["user"] for m in told["alice"]} == {"alice"}, told
                assert {m["user"] for m in told["zoe"]} == {"zoe"}, told
                assert told["guest"] == [], told

    run(scenario())


def test_who_may_connect(community: Cluster) -> None:
    # Anonymous visitors have no community services.
    answer = community.client.post(community.ems_url + "/api/v1/community/connect")
    assert answer.status_code == 401
    assert "sign in" in answer.json()["detail"]
    page = community.client.get(community.ems_url + "/community")
    assert page.status_code == 401 and "Sign in" in page.text

    async def forged() -> None:
        ticket = community.client.post(
            community.ems_url + "/api/v1/community/connect", headers=bearer(community, "alice")
        ).json()
        url = ticket["servers"][0]["url"]
        async with connect(f"{url}?token=not-a-token&device=abcdefgh1") as socket:
            refusal = json.loads(await socket.recv())
            assert refusal["type"] == "error" and "not valid" in refusal["message"]
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(socket.recv(), WAIT)

    run(forged())


def test_instant_messages_switched_off_by_the_administrator(community: Cluster) -> None:
    def configure(enabled: bool) -> None:
        with community.http() as http:
            version = http.get(community.ems_url + "/api/v1/config").json()["cluster"]["version"]
            answer = http.patch(
                community.ems_url + "/api/v1/config/cluster",
                json={"based_on": version, "values": {"instant_messages_enabled": enabled}},
            )
            assert answer.status_code == 200, answer.text

    async def scenario() -> None:
        async with (
            signed_in(community, "alice", "room1") as alice,
            signed_in(community, "bob", "room2") as bob,
        ):
            await alice.send(type="open_chat", **{"with": bob.me})
            conv = (await alice.expect("conversation"))["id"]
            await asyncio.to_thread(configure, False)
            await alice.expect("settings", instant_messages_enabled=False)
            await bob.expect("settings", instant_messages_enabled=False)
            await alice.send(type="send", id="off", conversation=conv, text="anyone?")
            error = await alice.expect("error", id="off")
            assert "switched off" in error["message"]
            await asyncio.to_thread(configure, True)
            await alice.expect("settings", instant_messages_enabled=True)
            await alice.send(type="send", id="on", conversation=conv, text="back")
            await alice.expect("ack", id="on")

    run(scenario())


def test_the_monitor_counts_community_connections(community: Cluster) -> None:
    def counted(name: str) -> int:
        """The monitor's figure for `name`, from its first snapshot event."""
        with (
            community.http() as http,
            http.stream("GET", community.ems_url + "/admin/monitor/events") as events,
        ):
            kind = ""
            for line in events.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind == "snapshot":
                    servers = json.loads(line.removeprefix("data: "))["servers"]
                    return next((s["community"] for s in servers if s["name"] == name), -1)
        return -1

    async def scenario() -> None:
        async with signed_in(community, "carol", "room2"):
            await asyncio.to_thread(
                community.wait_for, lambda: counted("room2") >= 1, "room2 to count carol"
            )
            # The EMS now sends the next person to the server with fewer connections.
            await asyncio.to_thread(
                community.wait_for,
                lambda: offering(community)[:1] == ["room1"],
                "room1 to come first",
            )

    run(scenario())


def test_reports_count_sign_ins_and_messages_never_their_text(community: Cluster) -> None:
    today = datetime.now(UTC).date().isoformat()

    def report() -> dict[str, Any]:
        answer = community.client.get(
            community.ems_url + "/api/v1/reports/community",
            params={"from": today, "to": today, "tz": "UTC"},
            headers=community.admin,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    before = report()["summary"][0]

    async def scenario() -> None:
        async with (
            signed_in(community, "dave", "room1") as dave,
            signed_in(community, "erin", "room2") as erin,
        ):
            await dave.send(type="open_chat", **{"with": erin.me})
            conv = (await dave.expect("conversation"))["id"]
            for n in range(3):
                await dave.send(type="send", id=f"r{n}", conversation=conv, text="secret plan")
                await dave.expect("ack", id=f"r{n}")

    run(scenario())
    community.wait_for(
        lambda: report()["summary"][0]["messages"] >= before["messages"] + 3,
        "the report to count three more messages",
    )
    after = report()
    assert after["summary"][0]["signins"] >= before["signins"] + 2
    assert "secret plan" not in json.dumps(after)


def test_group_chat_across_servers_and_the_message_to_all_users(community: Cluster) -> None:
    async def scenario() -> None:
        async with (
            signed_in(community, "alice", "room1") as alice,
            signed_in(community, "bob", "room2") as bob,
            signed_in(community, "carol", "room2") as carol,
        ):
            await alice.send(
                type="create_group", members=[bob.me, carol.me], title="Launch", names={}
            )
            made = await alice.expect("conversation", title="Launch")
            assert set(made["members"]) == {alice.me, bob.me, carol.me} and made["group"]
            for other in (bob, carol):
                await other.expect("conversation", id=made["id"])
            await bob.send(type="send", id="g1", conversation=made["id"], text="ready")
            for reader in (alice, carol):
                assert (await reader.expect("message", id="g1"))["text"] == "ready"
            # Someone not in the group cannot write to it.
            async with signed_in(community, "dave", "room1") as dave:
                await dave.send(type="send", id="x", conversation=made["id"], text="me too")
                assert "no such conversation" in (await dave.expect("error", id="x"))["message"]

            # The administrators' message to all users reaches community clients too.
            with community.http() as http:
                sent = http.post(
                    community.ems_url + "/api/v1/broadcasts", json={"text": "Maintenance at 6"}
                )
                assert sent.status_code == 201, sent.text
            for client in (alice, bob):
                await client.expect("notice", text="Maintenance at 6")

    run(scenario())


def test_chat_history_retention_is_the_streams_age(community: Cluster) -> None:
    def configure(days: int) -> None:
        with community.http() as http:
            version = http.get(community.ems_url + "/api/v1/config").json()["cluster"]["version"]
            answer = http.patch(
                community.ems_url + "/api/v1/config/cluster",
                json={"based_on": version, "values": {"instant_message_retention_days": days}},
            )
            assert answer.status_code == 200, answer.text

    async def max_age() -> float:
        nc = await nats.connect(nats_url())
        try:
            info = await nc.jetstream().stream_info(f"{community.community_prefix}_im")
            return float(info.config.max_age or 0)
        finally:
            await nc.close()

    configure(7)
    community.wait_for(lambda: run(max_age()) == 7 * 86400, "the stream to keep 7 days")
    configure(0)
    community.wait_for(lambda: run(max_age()) == 0, "the stream to keep messages for ever")
