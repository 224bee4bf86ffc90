"""Placement: every rule, checked against a plain reference implementation of them all.

The reference (`reference_place`) writes the rules out one server at a time; hypothesis
checks the fast path (`place` over a numpy `LoadTable`) against it on random clusters, then
checks the rules' promises as properties. Table-driven tests pin each rule by example.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moot.core.placement import (
    LoadTable,
    MeetingRequest,
    Placement,
    ServerLoad,
    ServerState,
    WarningKind,
    capacity_warning,
    has_room,
    is_candidate,
    place,
)
from moot.ems.cluster.registry import LiveServer, Registry
from moot.protocol.control import MediaReport, MeetingStatus, Participant, ServerLimits, Status


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
INSTANT = MeetingRequest(expected_participants=5, instant=True)

_REFUSALS = [
    "offline",
    "draining",
    "of another protocol version",
    "at its max active meetings",
    "at its instant-meeting limit",
]


def reference_refusal(servers: list[ServerLoad], meeting: MeetingRequest) -> str:
    if not servers:
        return "no room server is registered"
    scope = ""
    if meeting.location_required and meeting.location:
        scope = f' in location "{meeting.location}"'
        servers = [s for s in servers if s.location == meeting.location]
        if not servers:
            return f"no room server{scope}"
    found = set()
    for s in servers:
        meetings = s.active_meetings + s.pending_meetings
        if s.state is not ServerState.ONLINE:
            found.add("offline")
        elif s.draining:
            found.add("draining")
        elif not s.compatible:
            found.add("of another protocol version")
        elif meetings >= s.max_active_meetings:
            found.add("at its max active meetings")
        else:
            found.add("at its instant-meeting limit")
    words = [w for w in _REFUSALS if w in found]
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return f"every room server{scope} is {said}"


def reference_place(servers: Iterable[ServerLoad], meeting: MeetingRequest) -> Placement:
    """The rules written out plainly, one server at a time: what `place` must answer."""
    servers = list({s.name: s for s in servers}.values())
    expected = meeting.expected_participants

    def may_take(s: ServerLoad) -> bool:  # rule 1
        if s.state is not ServerState.ONLINE or s.draining or not s.compatible:
            return False
        if meeting.location_required and meeting.location and s.location != meeting.location:
            return False
        if meeting.instant:
            if s.active_meetings + s.pending_meetings >= s.max_active_meetings:
                return False
            if s.instant_meetings is not None and s.instant_active >= s.instant_meetings:
                return False
        return True

    def rank(s: ServerLoad) -> tuple[bool, bool, bool, bool, float, float, float, str]:
        capacity = max(1, s.max_active_meetings * s.max_users_per_meeting)
        meetings = s.active_meetings + s.pending_meetings
        after = (s.live_participants + s.pending_participants + expected) / capacity
        room = meetings < s.max_active_meetings and after <= 1.0  # rule 2
        fit = expected <= s.max_users_per_meeting  # rule 3
        here = not meeting.location or s.location == meeting.location  # rule 4
        meetings_after = (
            (meetings + 1) / s.max_active_meetings if s.max_active_meetings else math.inf
        )
        load = max(after, s.media_load) if meeting.needs_media else after  # rule 6
        overload = load if room else max(load, meetings_after)
        share = meetings / max(1, s.max_active_meetings)  # rule 6
        media = not meeting.needs_media or s.media  # rule 2
        return (not media, not room, not fit, not here, overload, load, share, s.name)

    candidates = [s for s in servers if may_take(s)]
    if not candidates:
        return Placement(None, reference_refusal(servers, meeting))
    best = min(candidates, key=rank)
    over, small = rank(best)[1:3]
    if not over and not small:
        return Placement(best.name)
    kind, message = capacity_warning(best, meeting, room=not over, fit=not small)
    return Placement(best.name, warning=message, warning_kind=kind)


# -- each rule by example ------------------------------------------------------------


def test_lightest_server_wins() -> None:
    servers = [server("a", live_participants=50), server("b", live_participants=10)]
    assert place(servers, MEETING) == Placement("b")


def test_load_is_relative_to_capacity() -> None:
    # 200 of 20,000 (1%) is lighter than 50 of 1,000 (5%).
    big = server("big", live_participants=200, max_active_meetings=200)
    small = server("small", live_participants=50, max_active_meetings=10)
    assert place([small, big], MEETING).server == "big"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"state": ServerState.OFFLINE}, "offline"),
        ({"state": ServerState.SUSPECT}, "suspect"),
        ({"draining": True}, "draining"),
        ({"compatible": False}, "other protocol version"),
        ({"active_meetings": 100}, "at max active meetings"),
        ({"active_meetings": 99, "pending_meetings": 1}, "full once pending placements count"),
        ({"max_active_meetings": 0}, "max active meetings set to 0"),
        ({"live_participants": 9_996}, "over 100% of its capacity with the meeting"),
    ],
)
def test_a_server_without_room_is_not_chosen_while_another_has_room(
    change: dict[str, object], why: str
) -> None:
    blocked = server("empty-but-blocked", **change)
    busy = server("busy", live_participants=9_000)
    assert place([blocked, busy], MEETING) == Placement("busy"), why
    assert place([blocked, busy], INSTANT) == Placement("busy"), why
    assert not (is_candidate(blocked, MEETING) and has_room(blocked, MEETING))


@pytest.mark.parametrize(
    ("servers", "chosen", "why"),
    [
        (
            [server("a", active_meetings=100), server("b", active_meetings=150)],
            "a",
            "the fewer meetings over its max",
        ),
        (
            [
                server("a", active_meetings=100, live_participants=9_000),
                server("b", active_meetings=100, live_participants=1_000),
            ],
            "b",
            "as far over in meetings: the lighter",
        ),
        (
            [
                server("a", live_participants=12_000),
                server("b", active_meetings=100, live_participants=100),
            ],
            "b",
            "101 of 100 meetings is less overloaded than 120% of its participants",
        ),
        (
            [server("a", max_active_meetings=0), server("b", active_meetings=300)],
            "b",
            "a server allowed no meetings at all is the very last resort",
        ),
        ([server("a", max_active_meetings=0)], "a", "... but a scheduled meeting still runs"),
        (
            [server("a", active_meetings=200), server("b", live_participants=10_100)],
            "b",
            "twice its max meetings is more overloaded than 1% over its participants",
        ),
    ],
)
def test_no_room_anywhere_a_scheduled_meeting_goes_to_the_least_overloaded(
    servers: list[ServerLoad], chosen: str, why: str
) -> None:
    result = place(servers, MEETING)
    assert result.server == chosen, why
    assert result.warning_kind == WarningKind.NO_ROOM
    assert f"no room server has room for it: {chosen} takes it over its limits" in result.warning


def test_no_room_anywhere_an_instant_meeting_is_refused_with_the_reason() -> None:
    full = [server("a", active_meetings=100), server("b", max_active_meetings=0)]
    result = place(full, INSTANT)
    assert result == Placement(None, "every room server is at its max active meetings")
    # Participants over 100% do not refuse it: it goes to the lightest, with a warning.
    crowded = [server("a", live_participants=10_000), server("b", live_participants=20_000)]
    result = place(crowded, INSTANT)
    assert result.server == "a" and result.warning_kind == WarningKind.NO_ROOM


@pytest.mark.parametrize(
    ("instant_meetings", "instant_active", "takes_instant"),
    [
        (None, 0, True),
        (None, 500, True),
        (0, 0, False),
        (3, 2, True),
        (3, 3, False),
        (3, 4, False),  # lowered below what it hosts
    ],
)
def test_instant_meetings_setting(
    instant_meetings: int | None, instant_active: int, takes_instant: bool
) -> None:
    limited = server("a", instant_meetings=instant_meetings, instant_active=instant_active)
    other = server("b", live_participants=5_000)  # heavier: chosen only as the fallback
    assert place([limited, other], MEETING).server == "a"  # scheduled: the setting is moot
    assert place([limited, other], INSTANT).server == ("a" if takes_instant else "b")
    assert is_candidate(limited, INSTANT) is takes_instant
    alone = place([limited], INSTANT)
    if takes_instant:
        assert alone == Placement("a")
    else:
        assert alone == Placement(None, "every room server is at its instant-meeting limit")


@pytest.mark.parametrize(
    ("servers", "reason"),
    [
        ([], "no room server is registered"),
        ([server("a", instant_meetings=0)], "every room server is at its instant-meeting limit"),
        (
            [server("a", instant_meetings=0), server("b", active_meetings=100)],
            "every room server is at its max active meetings or at its instant-meeting limit",
        ),
        (
            [
                server("a", state=ServerState.OFFLINE),
                server("b", instant_meetings=1, instant_active=1),
            ],
            "every room server is offline or at its instant-meeting limit",
        ),
        (
            [server("a", draining=True), server("b", state=ServerState.FAILED)],
            "every room server is offline or draining",
        ),
    ],
)
def test_an_instant_meeting_nobody_takes_is_refused_saying_why(
    servers: list[ServerLoad], reason: str
) -> None:
    assert place(servers, INSTANT) == Placement(None, reason)


def test_a_scheduled_meeting_is_refused_only_without_an_open_server() -> None:
    closed = [server("a", draining=True), server("b", compatible=False)]
    assert place(closed, MEETING) == Placement(
        None, "every room server is draining or of another protocol version"
    )
    full = [*closed, server("c", active_meetings=100, instant_meetings=0)]
    assert place(full, MEETING).server == "c"


BIG = MeetingRequest(expected_participants=300)


@pytest.mark.parametrize(
    ("servers", "chosen", "warning"),
    [
        (
            [
                server("small", max_users_per_meeting=100),
                server("large", max_users_per_meeting=500, live_participants=40_000),
            ],
            "large",
            "",
        ),
        (
            [
                server("small", max_users_per_meeting=100),
                server("smaller", max_users_per_meeting=50),
            ],
            "small",
            WarningKind.MEETING_TOO_LARGE,
        ),
        (
            [
                server("small", max_users_per_meeting=100),
                server("large", max_users_per_meeting=500, active_meetings=100),
            ],
            "small",
            WarningKind.MEETING_TOO_LARGE,  # room beats fit: a full server is never preferred
        ),
        (
            [server("exact", max_users_per_meeting=300, live_participants=20_000), server("small")],
            "exact",
            "",
        ),
    ],
)
def test_a_meeting_larger_than_max_users_per_meeting_prefers_servers_that_allow_it(
    servers: list[ServerLoad], chosen: str, warning: str
) -> None:
    result = place(servers, BIG)
    assert result.server == chosen
    assert result.warning_kind == warning
    if warning:
        assert f"300 expected participants exceed {chosen}'s max users per meeting" in (
            result.warning
        )


def meeting_in(location: str, *, required: bool = False, instant: bool = False) -> MeetingRequest:
    return MeetingRequest(
        expected_participants=5, location=location, location_required=required, instant=instant
    )


@pytest.mark.parametrize(
    ("servers", "meeting", "chosen", "why"),
    [
        (
            [server("eu", location="eu", live_participants=5_000), server("us", location="us")],
            meeting_in("eu"),
            "eu",
            "preferred and has room: chosen though heavier",
        ),
        (
            [server("eu", location="eu", active_meetings=100), server("us", location="us")],
            meeting_in("eu"),
            "us",
            "preferred but full: falls back",
        ),
        (
            [server("eu", location="eu", state=ServerState.OFFLINE), server("us", location="us")],
            meeting_in("eu"),
            "us",
            "preferred but offline: falls back",
        ),
        (
            [server("us", location="us"), server("any")],
            meeting_in("mars"),
            "any",
            "preferred location unknown: anywhere",
        ),
        (
            [server("eu", location="eu", live_participants=5_000), server("us", location="us")],
            meeting_in("eu", required=True),
            "eu",
            "required",
        ),
        (
            [server("eu", location="eu", active_meetings=100), server("us", location="us")],
            meeting_in("eu", required=True),
            "eu",
            "required and full: a scheduled meeting runs there over its limits",
        ),
        (
            [
                server("eu", location="eu", max_users_per_meeting=2),
                server("us", location="us", max_users_per_meeting=10),
            ],
            meeting_in("eu"),
            "us",
            "fit beats a preferred location",
        ),
        (
            [server("eu", location="eu", instant_meetings=0), server("us", location="us")],
            meeting_in("eu", instant=True),
            "us",
            "preferred, but it takes no instant meeting",
        ),
        (
            [server("eu", location="eu", instant_meetings=0), server("us", location="us")],
            meeting_in("eu", required=True, instant=True),
            None,
            "required, and it takes no instant meeting",
        ),
    ],
)
def test_locations(
    servers: list[ServerLoad], meeting: MeetingRequest, chosen: str | None, why: str
) -> None:
    assert place(servers, meeting).server == chosen, why


@pytest.mark.parametrize(
    ("servers", "reason"),
    [
        ([server("us", location="us")], 'no room server in location "eu"'),
        (
            [server("eu", location="eu", draining=True), server("us", location="us")],
            'every room server in location "eu" is draining',
        ),
        (
            [server("eu", location="eu", instant_meetings=0), server("us", location="us")],
            'every room server in location "eu" is at its instant-meeting limit',
        ),
    ],
)
def test_a_required_location_is_never_left_and_the_refusal_says_so(
    servers: list[ServerLoad], reason: str
) -> None:
    assert place(servers, meeting_in("eu", required=True, instant=True)) == Placement(None, reason)


def test_a_meeting_with_media_prefers_a_server_whose_media_works() -> None:
    """Rule 2: over room, fit and load; but never a refusal for want of media."""
    lighter_without = server("a", media=False)
    heavier_with = server("b", live_participants=9000, media=True)
    media = MeetingRequest(expected_participants=5, needs_media=True)
    assert place([lighter_without, heavier_with], media).server == "b"
    assert place([lighter_without, heavier_with], MEETING).server == "a"
    # Over its limits with media still beats under them without; warned as no room.
    full_with = server("b", active_meetings=100, media=True)
    chosen = place([lighter_without, full_with], media)
    assert chosen.server == "b" and chosen.warning_kind == WarningKind.NO_ROOM
    # No server has media: the meeting runs anyway (its page says media is unavailable).
    assert place([lighter_without, server("c", media=False)], media).server == "a"


def test_a_meeting_with_media_prefers_the_lower_media_load() -> None:
    """Rule 6 for a meeting with media: the higher of participant and media load decides."""
    media = MeetingRequest(expected_participants=5, needs_media=True)
    busy_media = server("a", media_load=0.8)
    calm_media = server("b", live_participants=100, media_load=0.1)  # 105 of 10,000 after
    assert place([busy_media, calm_media], media).server == "b"
    # A meeting without media looks at participants only.
    assert place([busy_media, calm_media], MEETING).server == "a"


def test_a_server_above_its_media_bitrate_limit_is_not_a_media_candidate() -> None:
    """Over max_media_bitrate_mbps its report is full: media meetings go elsewhere while
    any server has media room, as for a Janus that is down."""
    report = MediaReport(available=True, bitrate_kbps=12_000, max_bitrate_kbps=10_000)
    assert report.full and not report.usable and report.load == 1.2
    under = MediaReport(available=True, bitrate_kbps=4_000, max_bitrate_kbps=10_000)
    assert under.usable and under.load == 0.4
    assert MediaReport(available=True, bitrate_kbps=10**9).usable  # 0: no limit
    media = MeetingRequest(expected_participants=5, needs_media=True)
    over = server("a", media=report.usable, media_load=report.load)
    heavier = server("b", live_participants=9000, media=under.usable, media_load=under.load)
    assert place([over, heavier], media).server == "b"
    assert place([over, heavier], MEETING).server == "a"


def test_ties_go_to_the_lower_meeting_share_then_the_name() -> None:
    # Same load after the meeting (10 of 10,000), so the meeting share decides ...
    busy = server("a", live_participants=5, active_meetings=9)
    calm = server("b", live_participants=5, active_meetings=1)
    assert place([busy, calm], MEETING).server == "b"
    # ... and with the same share too, the name.
    assert place([server("d"), server("c"), replace(calm, name="e")], MEETING).server == "c"


def test_no_server_gives_the_reason() -> None:
    assert place([], MEETING) == Placement(None, "no room server is registered")
    offline = place([server("a", state=ServerState.OFFLINE)], MEETING)
    assert offline == Placement(None, "every room server is offline")


def _burst(
    servers: list[ServerLoad], count: int, meeting: MeetingRequest
) -> tuple[Counter[str], list[Placement]]:
    """Place `count` meetings before any report arrives, as the registry does."""
    by_name = {s.name: s for s in servers}
    chosen: Counter[str] = Counter()
    results = []
    for _ in range(count):
        result = place(by_name.values(), meeting)
        results.append(result)
        if result.server is None:
            continue
        chosen[result.server] += 1
        s = by_name[result.server]
        by_name[result.server] = replace(
            s,
            pending_meetings=s.pending_meetings + 1,
            pending_participants=s.pending_participants + meeting.expected_participants,
            instant_active=s.instant_active + meeting.instant,
        )
    return chosen, results


@pytest.mark.parametrize("expected", [0, 1, 4, 50])
def test_burst_of_twenty_splits_ten_ten(expected: int) -> None:
    chosen, _ = _burst(
        [server("room1"), server("room2")], 20, MeetingRequest(expected_participants=expected)
    )
    assert chosen == Counter({"room1": 10, "room2": 10})


def test_burst_respects_unequal_capacity() -> None:
    chosen, _ = _burst(
        [server("large", max_active_meetings=300), server("small", max_active_meetings=100)],
        40,
        MeetingRequest(expected_participants=10),
    )
    assert chosen["large"] == 30
    assert chosen["small"] == 10


def test_burst_of_instant_meetings_fills_the_instant_slots_then_is_refused() -> None:
    servers = [
        server("a", instant_meetings=3),
        server("b", instant_meetings=1),
        server("c", instant_meetings=0),
    ]
    chosen, results = _burst(servers, 6, INSTANT)
    assert chosen == Counter({"a": 3, "b": 1})
    assert [r.reason for r in results[4:]] == [
        "every room server is at its instant-meeting limit"
    ] * 2


def test_a_burst_over_capacity_spreads_its_overload() -> None:
    servers = [server("a", max_active_meetings=2), server("b", max_active_meetings=2)]
    chosen, results = _burst(servers, 8, MEETING)
    assert chosen == Counter({"a": 4, "b": 4})
    assert [bool(r.warning) for r in results] == [False] * 4 + [True] * 4


# -- the fast path against the reference, and the rules' promises ----------------------

LOCATIONS = ["", "eu", "us"]

# Media loads that often tie with each other and with participant loads.
MEDIA_LOADS = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 1.5])

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
    instant_meetings=st.none() | st.integers(0, 5),
    instant_active=st.integers(0, 6),
    location=st.sampled_from(LOCATIONS),
    media=st.booleans(),
    media_load=MEDIA_LOADS,
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
    instant_meetings=st.none() | st.integers(0, 2),
    instant_active=st.integers(0, 2),
    location=st.sampled_from(LOCATIONS),
    media=st.booleans(),
    media_load=MEDIA_LOADS,
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
    location=st.sampled_from(LOCATIONS),
    media=st.booleans(),
    media_load=MEDIA_LOADS,
)

# Open servers near or over their limits, so that the least overloaded often decides.
crowded_loads = st.builds(
    ServerLoad,
    name=st.text(alphabet="abcdefgh", min_size=1, max_size=4),
    state=st.just(ServerState.ONLINE),
    draining=st.just(False),
    compatible=st.just(True),
    max_active_meetings=st.integers(0, 6),
    max_users_per_meeting=st.integers(1, 10),
    active_meetings=st.integers(0, 12),
    live_participants=st.integers(0, 100),
    pending_meetings=st.integers(0, 2),
    pending_participants=st.integers(0, 10),
    instant_meetings=st.none() | st.integers(0, 2),
    instant_active=st.integers(0, 2),
    location=st.sampled_from(LOCATIONS),
    media=st.booleans(),
    media_load=MEDIA_LOADS,
)

any_loads = st.one_of(loads, tied_loads, huge_loads, crowded_loads)

meetings = st.builds(
    MeetingRequest,
    expected_participants=st.integers(0, 200),
    instant=st.booleans(),
    location=st.sampled_from([*LOCATIONS, "asia"]),
    location_required=st.booleans(),
    needs_media=st.booleans(),
)


@given(st.lists(any_loads, max_size=12, unique_by=lambda s: s.name), meetings)
def test_placement_matches_the_reference(
    servers: list[ServerLoad], meeting: MeetingRequest
) -> None:
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


@given(steps, meetings)
def test_an_updated_table_matches_the_reference(
    ops: list[ServerLoad | str], meeting: MeetingRequest
) -> None:
    """Upserts and removals one by one, as the registry makes them: the fast path follows."""
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


@given(
    st.lists(st.one_of(loads, tied_loads, crowded_loads), max_size=12, unique_by=lambda s: s.name),
    meetings,
)
def test_placement_properties(servers: list[ServerLoad], meeting: MeetingRequest) -> None:
    result = place(servers, meeting)
    # Deterministic, and the order of the input does not matter.
    assert place(list(reversed(servers)), meeting) == result
    assert place(servers, meeting) == result
    candidates = [s for s in servers if is_candidate(s, meeting)]
    if not candidates:
        assert result.server is None and result.reason and not result.warning
        return
    chosen = next(s for s in servers if s.name == result.server)
    assert is_candidate(chosen, meeting)
    if meeting.location_required and meeting.location:  # never outside a required location
        assert chosen.location == meeting.location
    if meeting.instant:  # instant limits and max active meetings are respected
        assert chosen.instant_meetings is None or chosen.instant_active < chosen.instant_meetings
        assert chosen.active_meetings + chosen.pending_meetings < chosen.max_active_meetings
    # A meeting with media goes where media works when any server's does (rule 2); the
    # rules below hold among those.
    if meeting.needs_media and any(s.media for s in candidates):
        assert chosen.media
        candidates = [s for s in candidates if s.media]
    # Never over a limit while another server has room; a warning exactly when over one.
    with_room = [s for s in candidates if has_room(s, meeting)]
    assert has_room(chosen, meeting) == bool(with_room)
    fit = meeting.expected_participants <= chosen.max_users_per_meeting
    assert bool(result.warning) == (not with_room or not fit)
    if with_room and any(
        meeting.expected_participants <= s.max_users_per_meeting for s in with_room
    ):
        assert fit

    # Among the servers as good by every rule above, nobody is lighter after taking it
    # (for a meeting with media, by the higher of participant and media load).
    def load_after(s: ServerLoad) -> float:
        after = (
            s.live_participants + s.pending_participants + meeting.expected_participants
        ) / s.capacity
        return max(after, s.media_load) if meeting.needs_media else after

    after = load_after(chosen)
    if with_room:
        for other in with_room:
            other_fit = meeting.expected_participants <= other.max_users_per_meeting
            other_here = not meeting.location or other.location == meeting.location
            here = not meeting.location or chosen.location == meeting.location
            if (other_fit, other_here) == (fit, here):
                assert after <= load_after(other)


@given(
    st.integers(1, 6),
    st.integers(0, 40),
    st.integers(0, 30),
    st.integers(1, 10),
    st.booleans(),
)
def test_bursts_spread_evenly_over_equal_servers(
    servers: int, count: int, expected: int, max_meetings: int, instant: bool
) -> None:
    """Before any report, a burst spreads: no equal server gets two more than another."""
    cluster = [server(f"room{i}", max_active_meetings=max_meetings) for i in range(servers)]
    meeting = MeetingRequest(expected_participants=expected, instant=instant)
    chosen, results = _burst(cluster, count, meeting)
    counts = [chosen[s.name] for s in cluster]
    assert max(counts) - min(counts) <= 1
    if instant:  # instant meetings stop at max active meetings, scheduled ones do not
        assert sum(counts) == min(count, servers * max_meetings)
        assert all(r.server is None for r in results[servers * max_meetings :])
    else:
        assert sum(counts) == count


@given(st.lists(st.none() | st.integers(0, 4), min_size=1, max_size=5), st.integers(0, 25))
def test_instant_limits_hold_through_the_registry(limits: list[int | None], count: int) -> None:
    registry = Registry()
    for i, limit in enumerate(limits):
        s = live(f"room{i}", max_meetings=10)
        s.limits = s.limits.model_copy(update={"instant_meetings": limit})
        s.state = ServerState.ONLINE
        registry.put(s)
    placed = 0
    for n in range(count):
        result = place(registry.loads(), INSTANT)
        if result.server is None:
            assert result.reason.startswith("every room server is at its")
            continue
        host = registry.get(result.server)
        assert host is not None
        registry.host(host, f"m{n}", 5, instant=True)
        placed += 1
    for s in registry.all():
        limit = s.limits.instant_meetings
        assert len(s.instant) <= (10 if limit is None else min(limit, 10))
    room = sum(10 if limit is None else min(limit, 10) for limit in limits)
    assert placed == min(count, room)


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

    registry.host(b, "m1", 150)  # a placement: counts at once
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "a"

    registry.report(b, report(("m1", 3)))  # reported: still weighs its booking of 150
    registry.report(a, report(("x", 9)))
    assert_table_is_current(registry)
    assert place(registry.loads(), MEETING).server == "a"

    b.meetings.pop("m1")  # the meeting ends, as the cluster manager does it
    registry.unhost(b, "m1")
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
    registry.unhost_all(a)
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


def test_the_registry_counts_instant_meetings_and_locations() -> None:
    registry = Registry()
    a = live("a")
    a.limits = ServerLimits(
        max_active_meetings=10, max_users_per_meeting=10, instant_meetings=1, location="eu"
    )
    a.state = ServerState.ONLINE
    registry.put(a)
    row = registry.loads().get("a")
    assert row is not None and (row.location, row.instant_meetings) == ("eu", 1)
    assert place(registry.loads(), meeting_in("eu", required=True, instant=True)).server == "a"

    registry.host(a, "i1", 5, instant=True)
    registry.host(a, "s1", 5)
    assert a.instant == {"i1"}
    assert_table_is_current(registry)
    assert place(registry.loads(), INSTANT) == Placement(
        None, "every room server is at its instant-meeting limit"
    )
    assert place(registry.loads(), MEETING).server == "a"

    registry.host(a, "i1", 8)  # a re-book (new expected participants) keeps it instant
    assert a.instant == {"i1"}
    registry.unhost(a, "i1")
    assert a.instant == set()
    assert_table_is_current(registry)
    assert place(registry.loads(), INSTANT).server == "a"

    registry.host(a, "i2", 5, instant=True)
    registry.unhost_all(a)
    assert a.instant == set() and a.booked == {}
    assert_table_is_current(registry)


# -- reservations: scheduled meetings book their server for their hours ------------------

H9 = 1_000  # an hour number (hours since the epoch); which one does not matter


def test_hour_span_counts_every_hour_a_meeting_touches() -> None:
    from datetime import UTC, datetime, timedelta

    from moot.core.placement import hour_span

    nine = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    first = int(nine.timestamp()) // 3600
    assert hour_span(nine, nine + timedelta(hours=1)) == (first, first + 1)
    assert hour_span(nine, nine + timedelta(minutes=61)) == (first, first + 2)
    late = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # 23:30 to 00:30 touches two hours
    assert hour_span(late, late + timedelta(hours=1)) == (first + 14, first + 16)
    assert hour_span(nine, nine) == (first, first + 1)  # an empty span still weighs one hour


def test_a_reservation_steers_meetings_that_overlap_it_and_no_others() -> None:
    table = LoadTable(
        [
            server("a", max_active_meetings=10, max_users_per_meeting=10),
            server("b", max_active_meetings=10, max_users_per_meeting=10),
        ]
    )
    table.reserve("a", (H9, H9 + 1), 80)  # 80 of a's 100 places, 9:00 to 10:00
    later = MeetingRequest(expected_participants=30, hours=(H9, H9 + 2), live=False)
    assert place(table, later).server == "b"  # overlaps the reservation
    now = MeetingRequest(expected_participants=30, hours=(H9, H9 + 1))
    assert place(table, now).server == "b"  # a meeting starting now sees it too
    after = MeetingRequest(expected_participants=30, hours=(H9 + 1, H9 + 2), live=False)
    assert place(table, after).server == "a"  # 10:00 to 11:00: a tie again, by name
    assert table.reserved(H9) == {"a": (80, 1)}
    table.release("a", (H9, H9 + 1), 80)
    assert place(table, later).server == "a" and table.reserved(H9) == {}


def test_a_booking_for_later_ignores_live_load_but_not_its_limits() -> None:
    busy = server(
        "a",
        live_participants=90,
        active_meetings=1,
        max_active_meetings=2,
        max_users_per_meeting=50,
    )
    idle = server("b", max_active_meetings=2, max_users_per_meeting=50)
    table = LoadTable([busy, idle])
    table.reserve("b", (H9, H9 + 1), 10, meetings=2)  # b is fully booked by meetings at 9
    later = MeetingRequest(expected_participants=10, hours=(H9, H9 + 1), live=False)
    assert place(table, later).server == "a"  # its live meeting will not weigh at 9
    table.reserve("a", (H9, H9 + 1), 95)
    result = place(table, later)  # nobody has room at 9: the least overloaded, with a warning
    assert result.server == "a" and result.warning_kind == WarningKind.NO_ROOM
    # 95 reserved + 10 of 100 places, and its second meeting at 9:00 of 2
    assert "(2 of 2 meetings, 105% of its participant capacity)" in result.warning


def test_reservations_follow_servers_added_and_removed() -> None:
    table = LoadTable([server("b")])
    table.reserve("b", (H9, H9 + 2), 40)
    table.upsert(server("a"))  # a new slot before b: b's reservations stay b's
    table.upsert(server("c"))
    assert table.reserved(H9) == {"b": (40, 1)} == table.reserved(H9 + 1)
    table.remove("a")
    assert table.reserved(H9 + 1) == {"b": (40, 1)}
    table.remove("b")
    assert table.reserved(H9) == {}
    table.reserve("c", (H9, H9 + 1), 5)
    table.forget_before(H9 + 1)
    assert table.reserved(H9) == {}


reservations = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.integers(0, 5),
        st.integers(1, 3),
        st.integers(0, 60),
        st.integers(1, 2),
    ),
    max_size=15,
)
spans = st.tuples(st.integers(0, 6), st.integers(1, 3)).map(lambda t: (t[0], t[0] + t[1]))


@given(
    st.lists(any_loads.map(lambda s: s), max_size=8, unique_by=lambda s: s.name),
    reservations,
    meetings,
    spans,
    st.booleans(),
)
def test_reservations_weigh_as_their_peak_over_the_span(
    servers: list[ServerLoad],
    booked: list[tuple[str, int, int, int, int]],
    meeting: MeetingRequest,
    span: tuple[int, int],
    live: bool,
) -> None:
    """The table with reservations decides as the reference over rows that carry the peak."""
    servers = [replace(s, name=NAMES[i % len(NAMES)]) for i, s in enumerate(servers)][: len(NAMES)]
    table = LoadTable(servers)
    per_hour: dict[tuple[str, int], tuple[int, int]] = {}
    for name, first, length, participants, count in booked:
        if name not in table:
            continue
        table.reserve(name, (first, first + length), participants, count)
        for hour in range(first, first + length):
            p, m = per_hour.get((name, hour), (0, 0))
            per_hour[(name, hour)] = (p + participants, m + count)
    rows = []
    for s in servers:
        peak_p = max((per_hour.get((s.name, h), (0, 0))[0] for h in range(*span)), default=0)
        peak_m = max((per_hour.get((s.name, h), (0, 0))[1] for h in range(*span)), default=0)
        if live:
            rows.append(
                replace(
                    s,
                    pending_participants=s.pending_participants + peak_p,
                    pending_meetings=s.pending_meetings + peak_m,
                )
            )
        else:
            rows.append(
                replace(
                    s,
                    active_meetings=0,
                    live_participants=0,
                    pending_participants=peak_p,
                    pending_meetings=peak_m,
                )
            )
    asked = replace(meeting, hours=span, live=live, instant=meeting.instant and live)
    assert place(table, asked) == reference_place(rows, replace(asked, hours=None, live=True))
    # Bookings respected: never beyond a server's capacity over the span while another has room.
    result = place(table, asked)
    if result.server is not None and not result.warning:
        chosen = next(r for r in rows if r.name == result.server)
        assert has_room(chosen, replace(asked, hours=None))


def test_the_registry_follows_each_servers_media_in_its_reports() -> None:
    """A server's report says whether its Janus works and how many streams it carries: a
    meeting with audio/video goes where media works and the media limit is not reached."""
    registry = Registry()
    a, b = live("a", max_meetings=20), live("b")
    for s in (a, b):
        s.state = ServerState.ONLINE
        registry.put(s)
    media = MeetingRequest(expected_participants=5, needs_media=True)

    def with_media(**fields: object) -> Status:
        return report().model_copy(update={"media": MediaReport(**fields)})  # type: ignore[arg-type]

    registry.report(a, with_media(available=False, reason="Janus restarts"))
    registry.report(b, with_media(available=True))
    assert_table_is_current(registry)
    assert place(registry.loads(), media).server == "b"
    assert place(registry.loads(), MEETING).server == "a"  # no media needed: the lighter
    registry.report(a, with_media(available=True))
    assert place(registry.loads(), media).server == "a"
    # At its media limit, a server takes no new media meetings while another can.
    registry.report(a, with_media(available=True, publishers=2, subscribers=8, max_streams=10))
    assert_table_is_current(registry)
    assert place(registry.loads(), media).server == "b"
    # Above its bitrate limit likewise; under it again, it takes them.
    over = {"available": True, "bitrate_kbps": 5001, "max_bitrate_kbps": 5000}
    registry.report(a, with_media(**over))
    assert_table_is_current(registry)
    assert place(registry.loads(), media).server == "b"
    registry.report(a, with_media(**{**over, "bitrate_kbps": 100}))
    assert place(registry.loads(), media).server == "a"
    # A server that reports no media at all (an older room server) has none.
    registry.report(b, report())
    assert not registry.loads().get("b").media  # type: ignore[union-attr]
