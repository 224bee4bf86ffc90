"""Placements per second of `moot.core.placement.place` over 1,000 online room servers.

Each call chooses among all 1,000 servers (none is filtered out before the ranking), the
worst case for one decision. The first goal is for the pure function over a `LoadTable`
built once, as the registry keeps it. The second is with 100,000 bookings: scheduled
meetings that reserve their server for the hours they span, over the next 30 days; each
decision books a meeting of its own (place over its hours, reserve the chosen server,
then release it so that every decision sees the same bookings). For reference it then
measures the EMS's path through the `Registry` for running meetings (place, book,
unbook), without and with 100,000 of them.
Run: `.venv/bin/python bench/placement.py [--seconds N]`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

from _common import machine
from moot.core.placement import LoadTable, MeetingRequest, ServerLoad, ServerState, place
from moot.ems.cluster.registry import LiveServer, Registry
from moot.protocol.control import MeetingStatus, Participant, ServerLimits

GOAL = 20_000  # placements per second
GOAL_BOOKED = 5_000  # placements per second with 100,000 bookings
SERVERS = 1_000
BOOKINGS = 100_000
HORIZON_HOURS = 30 * 24  # bookings lie in the next 30 days
MEETINGS = [MeetingRequest(expected_participants=n) for n in (2, 4, 10, 25, 100)]


def make_servers(count: int, seed: int = 1) -> list[ServerLoad]:
    """`count` online, compatible, non-draining servers with varied capacities and loads."""
    rng = random.Random(seed)
    servers = []
    for i in range(count):
        max_meetings = rng.choice([50, 100, 200, 400])
        max_users = rng.choice([100, 250, 500])
        active = rng.randrange(0, max_meetings // 2)
        servers.append(
            ServerLoad(
                name=f"room-{i:04d}",
                state=ServerState.ONLINE,
                draining=False,
                compatible=True,
                max_active_meetings=max_meetings,
                max_users_per_meeting=max_users,
                active_meetings=active,
                live_participants=rng.randrange(0, max(1, active * max_users // 4)),
                pending_meetings=rng.randrange(0, 3),
                pending_participants=rng.randrange(0, 40),
            )
        )
    return servers


def make_registry(count: int, bookings: int, seed: int = 2) -> Registry:
    """`count` online servers; `bookings` running meetings spread evenly, each booked."""
    rng = random.Random(seed)
    registry = Registry()
    per_server = bookings // count
    nobody: list[Participant] = []
    for i in range(count):
        max_meetings = rng.choice([50, 100, 200, 400]) + per_server
        server = LiveServer(
            name=f"room-{i:04d}",
            url=f"http://room-{i:04d}",
            limits=ServerLimits(
                max_active_meetings=max_meetings, max_users_per_meeting=rng.choice([100, 250, 500])
            ),
            state=ServerState.ONLINE,
        )
        ids = [f"m-{i:04d}-{j}" for j in range(per_server)]
        server.booked = {mid: rng.randrange(2, 50) for mid in ids}
        server.meetings = {
            mid: MeetingStatus(meeting_id=mid, epoch=1, participants=nobody) for mid in ids
        }
        registry.put(server)
    return registry


def timed(seconds: float, decide: Callable[[MeetingRequest], object]) -> tuple[int, float]:
    """Call `decide` for about `seconds`; the number of calls and the time they took."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for meeting in MEETINGS:
            decide(meeting)
        calls += len(MEETINGS)
        now = time.perf_counter()
    return calls, now - start


def run(seconds: float) -> tuple[int, float]:
    """Place for about `seconds`; the number of placements and the time they took."""
    table = LoadTable(make_servers(SERVERS))
    # Warm-up, and a sanity check that every call really chooses a server.
    for meeting in MEETINGS:
        assert place(table, meeting).server is not None
    return timed(seconds, lambda meeting: place(table, meeting))


def make_booked_table(count: int, bookings: int, seed: int = 3) -> LoadTable:
    """`count` servers and `bookings` scheduled meetings of 1 to 3 hours reserved on them."""
    rng = random.Random(seed)
    table = LoadTable(make_servers(count))
    names = [row.name for row in table]
    for _ in range(bookings):
        first = rng.randrange(HORIZON_HOURS)
        table.reserve(rng.choice(names), (first, first + rng.randint(1, 3)), rng.randrange(2, 50))
    return table


def run_booked(seconds: float) -> tuple[int, float]:
    """Book scheduled meetings among 100,000 bookings: place over the span, reserve, release."""
    table = make_booked_table(SERVERS, BOOKINGS)
    rng = random.Random(4)
    spans = [(h, h + rng.randint(1, 2)) for h in (rng.randrange(HORIZON_HOURS) for _ in range(997))]
    requests = [
        MeetingRequest(expected_participants=m.expected_participants, hours=span, live=False)
        for m, span in zip(MEETINGS * 200, spans, strict=False)
    ]
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for meeting in requests:
            name = place(table, meeting).server
            assert name is not None and meeting.hours is not None
            table.reserve(name, meeting.hours, meeting.expected_participants)
            table.release(name, meeting.hours, meeting.expected_participants)
        calls += len(requests)
        now = time.perf_counter()
    return calls, now - start


def run_registry(seconds: float, bookings: int) -> tuple[int, float]:
    """Place, host and unhost through a `Registry`, as opening a meeting does."""
    registry = make_registry(SERVERS, bookings)

    def decide(meeting: MeetingRequest) -> None:
        name = place(registry.loads(), meeting).server
        assert name is not None
        server = registry.get(name)
        assert server is not None
        registry.host(server, "bench", meeting.expected_participants)
        registry.unhost(server, "bench")  # so that every decision sees the same cluster

    return timed(seconds, decide)


def report(rate: float, goal: int) -> bool:
    if rate >= goal:
        print("  goal MET")
        return True
    print(f"  goal MISSED: {rate:,.0f}/s is {rate / goal:.0%} of the goal")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to measure")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when the goal is missed"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"placing among {SERVERS:,} online servers for ~{args.seconds:g} s ...")
    calls, elapsed = run(args.seconds)
    rate = calls / elapsed
    print(f"{calls:,} placements in {elapsed:.2f} s")
    print(f"  {rate:,.0f} placements/s  ({elapsed / calls * 1e6:,.1f} µs each)")
    print(f"  Goal >= {GOAL:,}/s")
    met = report(rate, GOAL)
    print(
        f"booking among {SERVERS:,} servers with {BOOKINGS:,} bookings over "
        f"{HORIZON_HOURS // 24} days for ~{args.seconds:g} s (place + reserve + release) ..."
    )
    calls, elapsed = run_booked(args.seconds)
    rate = calls / elapsed
    print(f"{calls:,} placements in {elapsed:.2f} s")
    print(f"  {rate:,.0f} placements/s  ({elapsed / calls * 1e6:,.1f} µs each)")
    print(f"  Goal >= {GOAL_BOOKED:,}/s")
    met = report(rate, GOAL_BOOKED) and met
    print("for reference, running meetings through the Registry (place + host + unhost):")
    for bookings in (0, BOOKINGS):
        calls, elapsed = run_registry(args.seconds, bookings)
        print(
            f"  {SERVERS:,} servers, {bookings:,} bookings: {calls / elapsed:,.0f} decisions/s"
            f"  ({elapsed / calls * 1e6:,.1f} µs each)"
        )
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
