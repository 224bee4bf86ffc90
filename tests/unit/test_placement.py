"""Placement: the least-loaded eligible server, bursts spread, ineligible servers skipped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moot.ems.cluster.registry import LiveServer, Registry
from moot.placement import (
    LoadTable,
    MeetingRequest,
    Placement,
    ServerLoad,
    ServerState,
    is_candidate,
    place,
)
from moot.protocol.control import MeetingStatus, Participant, ServerLimits, Status


def server(name: str, **kwargs: object) -> ServerLoad:
    base = ServerLoad(
        name=name,
        state=ServerState.ONLINE,
        draining=False,
        compatible=True,
        max_active_meetings=100,
        max_users_per_meeting=100,
    )
    return replace(base, **kwargs)  # type: ignore[arg-type]


MEETING = MeetingRequest(expected_participants=5)


def reference_place(servers: Iterable[ServerLoad], meeting: MeetingRequest) -> Placement:
    """The rules written out plainly, one server at a time: what `place` must answer."""
    servers = list(servers)
    if not servers:
        return Placement(None, "no room server is registered")
    candidates = [
        s
        for s in servers
        if s.state is ServerState.ONLINE
        and not s.draining
        and s.compatible
        and s.active_meetings + s.pending_meetings < s.max_active_meetings
    ]
    if not candidates:
        return Placement(
            None, "every room server is offline, draining or at its max active meetings"
        )

    def rank(s: ServerLoad) -> tuple[float, float, str]:
        capacity = max(1, s.max_active_meetings * s.max_users_per_meeting)
        used = s.live_participants + s.pending_participants + meeting.expected_participants
        after = used / capacity
        share = (s.active_meetings + s.pending_meetings) / max(1, s.max_active_meetings)
        return (after, share, s.name)

    return Placement(min(candidates, key=rank).name)


def test_lightest_server_wins() -> None:
    servers = [server("a", live_participants=50), server("b", live_participants=10)]
    assert place(servers, MEETING).server == "b"


def test_load_is_relative_to_capacity() -> None:
    # 200 of 20,000 (1%) is lighter than 50 of 1,000 (5%).
    big = server("big", live_participants=200, max_active_meetings=200)
    small = server("small", live_participants=50, max_active_meetings=10)
    assert place([small, big], MEETING).server == "big"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"state": ServerState.OFFLINE}, "offline"),
        ({"draining": True}, "draining"),
        ({"compatible": False}, "other protocol version"),
        ({"active_meetings": 100}, "at max active meetings"),
        ({"active_meetings": 99, "pending_meetings": 1}, "full once pending placements count"),
        ({"max_active_meetings": 0}, "max active meetings set to 0"),
    ],
)
def test_ineligible_server_is_never_chosen(change: dict[str, object], why: str) -> None:
    blocked = server("empty-but-blocked", **change)
    busy = server("busy", live_participants=9000)
    assert place([blocked, busy], MEETING).server == "busy", why
    assert not is_candidate(blocked)


def test_ties_go_to_the_lower_meeting_share_then_the_name() -> None:
    # Same load after the meeting (10 of 10,000), so the meeting share decides ...
    busy = server("a", live_participants=5, active_meetings=9)
    calm = server("b", live_participants=5, active_meetings=1)
    assert place([busy, calm], MEETING).server == "b"
    # ... and with the same share too, the name.
    assert place([server("d"), server("c"), replace(calm, name="e")], MEETING).server == "c"


def test_no_server_gives_the_reason() -> None:
    assert place([], MEETING) == place([], MEETING)
    assert place([], MEETING).server is None
    assert "no room server is registered" in place([], MEETING).reason
    offline = place([server("a", state=ServerState.OFFLINE)], MEETING)
    assert offline.server is None
    assert "offline, draining or at its max active meetings" in offline.reason


def _burst(servers: list[ServerLoad], count: int, expected: int) -> Counter[str]:
    """Place `count` meetings before any report arrives, as the registry does."""
    by_name = {s.name: s for s in servers}
    chosen: Counter[str] = Counter()
    for _ in range(count):
        name = place(by_name.values(), MeetingRequest(expected_participants=expected)).server
        assert name is not None
        chosen[name] += 1
        s = by_name[name]
        by_name[name] = replace(
            s,
            pending_meetings=s.pending_meetings + 1,
            pending_participants=s.pending_participants + expected,
        )
    return chosen


@pytest.mark.parametrize("expected", [0, 1, 4, 50])
def test_burst_of_twenty_splits_ten_ten(expected: int) -> None:
    chosen = _burst([server("room1"), server("room2")], 20, expected)
    assert chosen == Counter({"room1": 10, "room2": 10})


def test_burst_respects_unequal_capacity() -> None:
    chosen = _burst(
        [server("large", max_active_meetings=300), server("small", max_active_meetings=100)], 40, 10
    )
    assert chosen["large"] == 30
    assert chosen["small"] == 10


loads = st.builds(
    ServerLoad,
    name=st.text(alphabet="abcdefgh", min_size=1, max_size=4),
    state=st.sampled_from(list(ServerState)),
    draining=st.booleans(),
    compatible=st.booleans(),
    max_active_meetings=st.integers(0, 50),
    max_users_per_meeting=st.integers(1, 100),
    active_meetings=st.integers(0, 60),
    live_participants=st.integers(0, 3000),
    pending_meetings=st.integers(0, 5),
    pending_participants=st.integers(0, 100),
)


# Small numbers, so that equal loads and equal meeting shares (the tie-breaks) are common.
tied_loads = st.builds(
    ServerLoad,
    name=st.text(alphabet="abc", min_size=1, max_size=3),
    state=st.sampled_from(list(ServerState)),
    draining=st.booleans(),
    compatible=st.booleans(),
    max_active_meetings=st.integers(0, 4),
    max_users_per_meeting=st.integers(1, 3),
    active_meetings=st.integers(0, 4),
    live_participants=st.integers(0, 6),
    pending_meetings=st.integers(0, 2),
    pending_participants=st.integers(0, 3),
)

# Large counts, where two different loads may round to the same float.
huge_loads = st.builds(
    ServerLoad,
    name=st.text(alphabet="abcdefgh", min_size=1, max_size=4),
    state=st.just(ServerState.ONLINE),
    draining=st.just(False),
    compatible=st.just(True),
    max_active_meetings=st.integers(1, 10**6),
    max_users_per_meeting=st.integers(1, 10**6),
    active_meetings=st.integers(0, 10),
    live_participants=st.integers(0, 2**50),
    pending_meetings=st.integers(0, 5),
    pending_participants=st.integers(0, 2**40),
)

any_loads = st.one_of(loads, tied_loads, huge_loads)


@given(st.lists(any_loads, max_size=12, unique_by=lambda s: s.name), st.integers(0, 200))
def test_placement_matches_the_reference(servers: list[ServerLoad], expected: int) -> None:
    meeting = MeetingRequest(expected_participants=expected)
    want = reference_place(servers, meeting)
    assert place(servers, meeting) == want
    assert place(LoadTable(servers), meeting) == want
    assert place(LoadTable(reversed(servers)), meeting) == want


# One step on a table: a row to upsert, or the name of a row to remove. Few names, so that
# steps often replace or remove a row that is there.
NAMES = ["a", "b", "ba", "c", "cb", "d"]
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(NAMES), any_loads).map(lambda t: replace(t[1], name=t[0])),
        st.sampled_from(NAMES),
    ),
    max_size=40,
)


@given(steps, st.integers(0, 200))
def test_an_updated_table_matches_the_reference(ops: list[ServerLoad | str], expected: int) -> None:
    """Upserts and removals one by one, as the registry makes them: the fast path follows."""
    meeting = MeetingRequest(expected_participants=expected)
    table = LoadTable()
    rows: dict[str, ServerLoad] = {}
    for op in ops:
        if isinstance(op, str):
            table.remove(op)
            rows.pop(op, None)
        else:
            table.upsert(op)
            rows[op.name] = op
        assert list(table) == [rows[name] for name in sorted(rows)]
        assert len(table) == len(rows)
        assert place(table, meeting) == reference_place(rows.values(), meeting)


@given(st.lists(loads, max_size=12, unique_by=lambda s: s.name), st.integers(0, 200))
def test_placement_properties(servers: list[ServerLoad], expected: int) -> None:
    meeting = MeetingRequest(expected_participants=expected)
    result = place(servers, meeting)
    candidates = [s for s in servers if is_candidate(s)]
    # Deterministic, and order of the input does not matter.
    assert place(list(reversed(servers)), meeting) == result
    if not candidates:
        assert result.server is None and result.reason
        return
    chosen = next(s for s in servers if s.name == result.server)
    assert is_candidate(chosen)
    # Nobody eligible would have been lighter after taking the meeting.
    after = (chosen.live_participants + chosen.pending_participants + expected) / chosen.capacity
    for other in candidates:
        other_after = (
            other.live_participants + other.pending_participants + expected
        ) / other.capacity
        assert after <= other_after


# -- the registry keeps the table that placement reads -------------------------------------


def live(name: str, max_meetings: int = 10, max_users: int = 10) -> LiveServer:
    limits = ServerLimits(max_active_meetings=max_meetings, max_users_per_meeting=max_users)
    return LiveServer(name=name, url=f"http://{name}", limits=limits)


def report(*meetings: tuple[str, int]) -> Status:
    """A status report with meetings of `(id, number of participants)`."""
    return Status(
        seq=1,
        meetings=[
            MeetingStatus(
                meeting_id=mid,
                epoch=1,
                participants=[Participant(user=f"u{i}", role="participant") for i in range(n)],
            )
            for mid, n in meetings
        ],
        logins=0,
        cpu_percent=0.0,
        memory_percent=0.0,
    )


def assert_table_is_current(registry: Registry) -> None:
    assert list(registry.loads()) == [s.to_load() for s in registry.all()]


def test_registry_table_follows_every_change() -> None:
    registry = Registry()
    a, b = live("a"), live("b", max_meetings=20)
    for s in (a, b):
        s.state = ServerState.ONLINE
        registry.put(s)
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "b"  # twice the capacity

    registry.book(b, "m1", 150)  # a placement: counts at once
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "a"

    registry.report(b, report(("m1", 3)))  # reported: still weighs its booking of 150
    registry.report(a, report(("x", 9)))
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "a"

    b.meetings.pop("m1")  # the meeting ends, as the cluster manager does it
    registry.unbook(b, "m1")
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "b"

    b.draining = True  # what the servers API does on a drain
    registry.refresh(b)
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "a"
    b.draining = False
    b.limits = ServerLimits(max_active_meetings=1, max_users_per_meeting=1)
    registry.refresh(b)
    assert_table_is_current(registry)

    a.state, a.meetings = ServerState.OFFLINE, {}  # gone offline
    registry.unbook_all(a)
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "b"

    registry.remove("b")
    b.draining = True  # no longer registered: its row is gone and stays gone
    registry.refresh(b)
    assert "b" not in registry.loads()
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server is None


def test_a_replaced_server_object_no_longer_writes_the_row() -> None:
    registry = Registry()
    old, new = live("a"), live("a")
    registry.put(old)
    new.state = ServerState.ONLINE
    registry.put(new)
    old.state = ServerState.OFFLINE
    old.draining = True
    registry.refresh(old)
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "a"
