"""Community services' pure rules: presence of several devices, limits, where to connect."""

from __future__ import annotations

from collections import Counter

import pytest

from moot.core.community import (
    DEVICE_STALE,
    MAX_MESSAGE_CHARS,
    OFFLINE,
    CommunityServer,
    Device,
    Presence,
    RateLimit,
    Refusal,
    State,
    attendee_pid,
    check_text,
    combine,
    community_servers,
    direct_conversation,
    is_conversation_id,
    key_of,
    may_message,
    new_group_conversation,
    person_id,
    pid_of_key,
)

NOW = 1_000_000.0


def device(
    state: State = State.AVAILABLE,
    status: str = "",
    *,
    idle: bool = False,
    chosen: float = 0,
    seen: float = NOW,
) -> Device:
    return Device(state, status, idle, chosen, seen)


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([], OFFLINE),
        ([device()], Presence(State.AVAILABLE)),
        # Away by itself only when every device is idle.
        ([device(idle=True)], Presence(State.AWAY)),
        ([device(idle=True), device(idle=False)], Presence(State.AVAILABLE)),
        # A chosen state is not overridden by idleness.
        ([device(State.DND, "focus", idle=True, chosen=5)], Presence(State.DND, "focus")),
        # The latest choice on any device is the person's.
        (
            [device(State.DND, "a", chosen=5), device(State.IN_MEETING, "b", chosen=9)],
            Presence(State.IN_MEETING, "b"),
        ),
        # A device not refreshed for DEVICE_STALE seconds is gone (its server died).
        ([device(seen=NOW - DEVICE_STALE - 0.1)], OFFLINE),
        (
            [device(State.DND, chosen=9, seen=NOW - DEVICE_STALE - 1), device(chosen=1)],
            Presence(State.AVAILABLE),
        ),
    ],
)
def test_presence_of_several_devices(devices: list[Device], expected: Presence) -> None:
    assert combine(devices, NOW) == expected


def test_a_device_record_travels_and_refuses_nonsense() -> None:
    record = device(State.IN_MEETING, "weekly", idle=True, chosen=3)
    assert Device.from_json(record.to_json()) == record
    odd = Device.from_json({"state": "offline", "status": "x" * 500, "seen_at": NOW})
    assert odd.state is State.AVAILABLE and len(odd.status) == 120


def test_message_text_limits() -> None:
    assert check_text("hello") == "hello"
    with pytest.raises(Refusal, match="empty"):
        check_text("   ")
    with pytest.raises(Refusal, match="too long: 4,001 characters, at most 4,000"):
        check_text("x" * (MAX_MESSAGE_CHARS + 1))


def test_rate_limit_burst_then_steady() -> None:
    limit = RateLimit(burst=3, per_second=2.0)
    for _ in range(3):
        limit.take(10.0)
    with pytest.raises(Refusal, match=r"wait 0\.5 s"):
        limit.take(10.0)
    limit.take(10.5)  # half a second later: one more
    with pytest.raises(Refusal):
        limit.take(10.5)
    limit.take(100.0)  # refilled, never above the burst
    assert limit.tokens == 2.0


def test_who_may_message_whom() -> None:
    alice, bob, zoe = person_id("alice", "eng"), person_id("bob", "eng"), person_id("zoe", "ops")
    assert may_message(alice, bob, []) == ""
    assert "own organisation" in may_message(alice, zoe, [])
    assert "does not take" in may_message(alice, bob, [alice])
    # Local users (no partition) are a partition of their own, the same for each.
    assert may_message(person_id("a", None), person_id("b", None), []) == ""
    assert "own organisation" in may_message(person_id("a", None), bob, [])


def test_a_meeting_attendee_is_a_person_only_when_signed_in() -> None:
    # The roster's presence: the join token's person and the name shown.
    assert attendee_pid("user:eng:alice", "Alice") == "eng/Alice"
    assert attendee_pid("user::bob", "bob") == "/bob"  # a local user: no partition
    assert attendee_pid("guest:3f2a", "Bob (guest)") is None
    assert attendee_pid("user:eng:alice", "Mallory") is None  # not the token's name
    assert attendee_pid("cluster:Tool", "Tool") is None
    assert attendee_pid("", "bob") is None


def test_conversation_ids_and_keys() -> None:
    alice, bob = "eng/alice", "eng/bob"
    assert direct_conversation(alice, bob) == direct_conversation(bob, alice)
    assert direct_conversation(alice, bob) != direct_conversation(alice, "eng/carol")
    assert is_conversation_id(direct_conversation(alice, bob))
    assert is_conversation_id(new_group_conversation())
    assert not is_conversation_id("../../etc") and not is_conversation_id("d" + "x" * 24)
    for pid in (alice, "/local user", "é/ü"):
        key = key_of(pid)
        assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert pid_of_key(key) == pid


def test_clients_go_to_the_server_with_fewest_connections() -> None:
    def server(name: str, connections: int, **changes: bool) -> CommunityServer:
        values = {"online": True, "draining": False, "offers": True, **changes}
        return CommunityServer(name, f"http://{name}", connections=connections, **values)

    servers = [
        server("room1", 5),
        server("room2", 2),
        server("room3", 2),
        server("room4", 0, online=False),
        server("room5", 0, offers=False),  # no bus, or switched off
        server("room6", 0, draining=True),
    ]
    for person in ("/alice", "/bob", "eng/carol"):
        order = [s.name for s in community_servers(servers, person)]
        assert sorted(order[:2]) == ["room2", "room3"] and order[2:] == ["room1"]
        assert order == [s.name for s in community_servers(servers, person)]  # each time
    assert community_servers([server("room4", 0, online=False)], "/alice") == []
    # A server has died: its 3,000 clients ask at once, and the counts are a heartbeat old.
    # The survivors about as loaded (within a tenth) share them; one far busier gets none.
    survivors = [server("room2", 3_300), server("room3", 3_500), server("room4", 9_000)]
    first = Counter(community_servers(survivors, f"/u{n}")[0].name for n in range(3_000))
    assert set(first) == {"room2", "room3"} and min(first.values()) > 1_300, first


def test_a_device_is_seen_when_its_server_last_was() -> None:
    from moot.core.community import seen

    written = Device(State.DND, "", False, 1, NOW - 100, "room1.ab")
    # Its server said it was alive a moment ago: the device is there, whatever its age.
    assert combine([seen(written, {"room1.ab": NOW - 1})], NOW).state is State.DND
    # Its server went silent (killed): offline once DEVICE_STALE has passed.
    silent = {"room1.ab": NOW - DEVICE_STALE - 1}
    assert combine([seen(written, silent)], NOW) == OFFLINE
    # The same device back on another server (failover): there again.
    moved = Device(State.DND, "", False, 1, NOW, "room2.cd")
    assert combine([seen(written, silent), moved], NOW).state is State.DND
