"""Reports over a large history: how long the community statistics (`logins`) take.

Writes a generated history into a fresh database (SQLite in a temporary directory, or the
PostgreSQL database given with `--database-url`): `--stays` attendance stays (default
200,000) in meetings spread over three years, ten stays a meeting, people drawn from
`--people` names, one stay in twenty doubled as after a failover, and a sign-in per stay.
Then it builds the `logins` report, whose peak of people in meetings at once reads every
stay of the range, over one year and over three years (the longest range allowed), as the
EMS does (moot.ems.store.reports.Reports), and prints the time of each beside the goal.

With `--verify`, the peaks are also computed in Python from every stay of the range
(moot.core.reports.daily_peaks, the reference the unit tests hold to) and must be the same.
With `--check`, a missed goal or a difference exits with status 1.

Run: `.venv/bin/python bench/reports.py [--stays 200000] [--verify] [--check]`.
PostgreSQL: create a scratch database, pass
`--database-url postgresql+asyncpg://127.0.0.1:5432/<db>`, drop it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, or_, select

from _common import beside_goal, machine
from moot.core import reports as pure
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.migrate import upgrade
from moot.ems.store.models import AttendanceRow, LoginRow, MeetingRow
from moot.ems.store.reports import Reports, report_stays

GOAL_SECONDS = 2.0  # a year's logins report, from a click to the figures
GOAL_THREE_YEARS = 5.0  # the longest range allowed
FIRST_DAY = date(2024, 1, 1)
DAYS = pure.MAX_DAYS
BATCH = 10_000


def history(stays: int, people: int, seed: int = 7) -> tuple[list[dict], list[dict], list[dict]]:
    """(meetings, stays, logins) as rows to insert."""
    rnd = random.Random(seed)
    meetings: list[dict] = []
    attendance: list[dict] = []
    logins: list[dict] = []
    base = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    for n in range(stays // 10):
        start = base + timedelta(days=rnd.randrange(DAYS), minutes=rnd.randrange(6 * 60, 20 * 60))
        end = start + timedelta(minutes=rnd.randrange(15, 120))
        mid = f"m{n:07d}"
        meetings.append(
            {
                "id": mid,
                "name": f"Meeting {n}",
                "type": "collaboration" if n % 5 else "broadcast",
                "moderator": f"user{rnd.randrange(people)}",
                "expected_participants": 10,
                "start_at": start,
                "end_at": end,
                "duration_minutes": int((end - start).total_seconds() // 60),
                "tools": [],
                "status": "ended",
                "server_name": "room1",
                "epoch": 1,
                "started_at": start,
                "ended_at": end,
            }
        )
        for _ in range(10):
            user = f"user{rnd.randrange(people)}"
            joined = start + timedelta(seconds=rnd.randrange(0, 600))
            left = min(end, joined + timedelta(seconds=rnd.randrange(300, 7200)))
            stay = {
                "meeting_id": mid,
                "user_name": user,
                "role": "participant",
                "server_name": "room1",
                "epoch": 1,
                "joined_at": joined,
                "left_at": left,
            }
            attendance.append(stay)
            if rnd.randrange(20) == 0:  # a failover's second stay, overlapping the first
                attendance.append({**stay, "joined_at": joined + (left - joined) / 2, "epoch": 2})
            logins.append(
                {
                    "username": user,
                    "at": joined - timedelta(minutes=1),
                    "source": "local",
                    "address": "10.0.0.1",
                }
            )
    return meetings, attendance[:stays], logins


async def write(url: str, stays: int, people: int) -> int:
    meetings, attendance, logins = history(stays, people)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            for table, rows in ((MeetingRow, meetings), (AttendanceRow, attendance)):
                for i in range(0, len(rows), BATCH):
                    await session.execute(insert(table), rows[i : i + BATCH])
            for i in range(0, len(logins), BATCH):
                await session.execute(insert(LoginRow), logins[i : i + BATCH])
            await session.commit()
    finally:
        await engine.dispose()
    return len(attendance)


async def measure(url: str, check: bool) -> list[tuple[str, float, bool | None]]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    reports = Reports(sessions)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    found: list[tuple[str, float, bool | None]] = []
    try:
        for label, first, last in (
            ("one year (2025)", "2025-01-01", "2025-12-31"),
            ("three years", "2024-01-01", "2026-12-31"),
        ):
            rng = pure.parse_range(first, last, "Europe/Paris", now)
            await reports.build("logins", rng, now)  # warm: the first query pays for the cache
            began = time.perf_counter()
            report = await reports.build("logins", rng, now)
            seconds = time.perf_counter() - began
            same: bool | None = None
            if check:
                s = report_stays.c
                async with sessions() as session:
                    rows = (
                        await session.execute(
                            select(s.user_name, s.joined_at, s.left_at).where(
                                s.joined_at < rng.end,
                                or_(s.left_at.is_(None), s.left_at > rng.start),
                            )
                        )
                    ).all()
                peaks = pure.daily_peaks(((u, j, left) for u, j, left in rows), rng, now)
                expected = [
                    (p.people, pure.iso_local(p.at, rng.zone)) for _, p in sorted(peaks.items())
                ]
                got = [(r["peak_concurrent_users"], r["peak_at"]) for r in report.rows]
                same = got == expected
            found.append((label, seconds, same))
    finally:
        await engine.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stays", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=3_000)
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (else SQLite)")
    parser.add_argument("--verify", action="store_true", help="compare with the Python peaks")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        began = time.perf_counter()
        written = asyncio.run(write(url, args.stays, args.people))
        print(f"machine: {machine(url.split(':')[0])}")
        print(f"history: {written} stays written in {time.perf_counter() - began:.1f} s")
        failed = False
        for label, seconds, same in asyncio.run(measure(url, args.verify)):
            goal = GOAL_SECONDS if label.startswith("one") else GOAL_THREE_YEARS
            met = seconds <= goal
            checked = "" if same is None else ("; peaks = Python's" if same else "; PEAKS DIFFER")
            failed = failed or seconds > goal or same is False
            print(
                beside_goal(f"logins report, {label}", f"{seconds:.2f} s", f"<= {goal:.0f} s", met)
                + checked
            )
        if args.check and failed:
            sys.exit(1)


if __name__ == "__main__":
    main()
