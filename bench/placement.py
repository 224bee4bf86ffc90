"""Placements per second of `moot.placement.place` over 1,000 online room servers.

Each call chooses among all 1,000 servers (none is filtered out before the ranking), the
worst case for one decision. Run: `.venv/bin/python bench/placement.py [--seconds N]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

from moot.placement import MeetingRequest, ServerLoad, ServerState, place

GOAL = 20_000  # placements per second
SERVERS = 1_000


def machine() -> str:
    """Cores, CPU model and Python version, for the record."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {model}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


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


def run(seconds: float) -> tuple[int, float]:
    """Place for about `seconds`; the number of placements and the time they took."""
    servers = make_servers(SERVERS)
    meetings = [MeetingRequest(expected_participants=n) for n in (2, 4, 10, 25, 100)]
    # Warm-up, and a sanity check that every call really chooses a server.
    for meeting in meetings:
        assert place(servers, meeting).server is not None
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for meeting in meetings:
            place(servers, meeting)
        calls += len(meetings)
        now = time.perf_counter()
    return calls, now - start


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
    if rate >= GOAL:
        print("  goal MET")
        return 0
    print(f"  goal MISSED: {rate:,.0f}/s is {rate / GOAL:.0%} of the goal")
    return 1 if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
