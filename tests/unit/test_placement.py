"""Placement: the least-loaded eligible server, bursts spread, ineligible servers skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moot.placement import MeetingRequest, ServerLoad, ServerState, is_candidate, place


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
