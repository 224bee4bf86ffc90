"""A generated history whose figures the report tests know exactly.

Three days around the end of summer time in Europe/Paris (Sunday 25 October 2026, 01:00 UTC:
clocks go back from 03:00 CEST to 02:00 CET), with facts placed on both sides of the UTC and
the Paris midnights, so the same rows give other days in UTC and in Europe/Paris.

Paris days in UTC: the 24th is [23rd 22:00, 24th 22:00), the 25th [24th 22:00, 25th 23:00)
(25 hours), the 26th [25th 23:00, 26th 23:00).

The expected figures are written out in EXPECTED; each is worked out by hand in the
comments of the rows that make it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import (
    AttendanceRow,
    CapacityWarningRow,
    LoginFailureRow,
    LoginRow,
    MeetingRow,
    OccurrenceRow,
    ServerSampleRow,
)

FIRST, LAST = "2026-10-24", "2026-10-26"


def t(text: str) -> datetime:
    """'10-24 09:00' -> 2026-10-24 09:00 UTC."""
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


LOGINS = [  # (at, username)       UTC day / Paris day
    ("10-23 21:59", "erin"),  # 23 / 23: in neither range
    ("10-24 09:00", "alice"),  # 24 / 24
    ("10-24 10:00", "bob"),  # 24 / 24
    ("10-24 12:00", "alice"),  # 24 / 24
    ("10-24 22:30", "carol"),  # 24 / 25 (00:30 CEST)
    ("10-25 08:00", "alice"),  # 25 / 25
    ("10-25 23:30", "bob"),  # 25 / 26 (00:30 CET)
    ("10-26 09:00", "dave"),  # 26 / 26
    ("10-26 23:30", "frank"),  # 26 / 27: in the UTC range only
]
FAILURES = [  # (at, username, address)
    ("10-24 08:00", "alice", "10.0.0.1"),  # 24 / 24
    ("10-24 08:01", "alice", "10.0.0.1"),  # 24 / 24
    ("10-24 23:00", "mallory", "10.0.0.9"),  # 24 / 25
    ("10-25 12:00", "=cmd", "10.0.0.9"),  # 25 / 25
]
# id, type, moderator, partition, started, ended (None: in progress)
MEETINGS = [
    ("collab1", "collaboration", "alice", "acme", "10-24 09:00", "10-24 10:00"),  # 24 / 24
    ("bcast1", "broadcast", "bob", "acme", "10-24 22:15", "10-24 23:45"),  # 24 / 25
    ("collab2", "collaboration", "carol", "globex", "10-25 14:00", "10-25 14:30"),  # 25 / 25
    ("collab3", "collaboration", "dave", None, "10-26 10:00", None),  # 26 / 26, running
]
# meeting, user, role, epoch, joined, left (None: open)
STAYS = [
    ("collab1", "alice", "moderator", 1, "10-24 09:00", "10-24 10:00"),
    ("collab1", "bob", "participant", 1, "10-24 09:10", "10-24 09:40"),
    ("collab1", "bob", "participant", 1, "10-24 09:50", "10-24 10:00"),  # came back
    ("collab1", "carol", "participant", 1, "10-24 09:20", "10-24 10:00"),  # 3 at once: 09:20
    ("bcast1", "bob", "moderator", 1, "10-24 22:15", "10-24 23:45"),
    ("bcast1", "dave", "participant", 1, "10-24 22:30", "10-24 23:45"),  # closed at the end
    ("bcast1", "dave", "participant", 2, "10-24 23:00", "10-24 23:45"),  # after a failover
    ("collab2", "carol", "moderator", 1, "10-25 14:00", "10-25 14:30"),
    ("collab2", "erin", "participant", 1, "10-25 14:05", "10-25 14:25"),
    ("collab3", "dave", "moderator", 1, "10-26 10:00", None),
    ("collab3", "frank", "participant", 1, "10-26 10:05", "10-26 10:35"),
]
WARNINGS = [  # (at, kind, meeting, server)
    ("10-24 09:00", "no_room", "collab1", "room1"),  # 24 / 24
    ("10-24 09:30", "participants_over_limit", "collab1", "room1"),  # 24 / 24
    ("10-24 22:40", "meeting_too_large", "bcast1", "room2"),  # 24 / 25
    ("10-26 10:00", "no_room", "collab3", "room1"),  # 26 / 26
]
SAMPLES = [  # (server, at, meetings, participants, cpu, memory)
    ("room1", "10-20 12:00", 5, 50, 99.0, 99.0),  # before both ranges
    ("room1", "10-24 09:00", 1, 1, 20.0, 40.0),
    ("room1", "10-24 09:21", 1, 3, 35.5, 41.0),
    ("room1", "10-24 09:51", 1, 3, 30.0, 42.5),
    ("room1", "10-26 10:06", 2, 2, 15.0, 39.0),
    ("room2", "10-24 22:31", 1, 2, 12.0, 30.0),
    ("room2", "10-26 23:30", 0, 0, 5.0, 31.0),  # UTC 26th; Paris 27th
    ("@evil", "10-25 12:00", 0, 0, 1.0, 1.0),  # a name a spreadsheet would run
]
# When a sample's highest meetings and participants were seen, if not when it was written:
# (server, written) -> (meetings seen, participants seen). The report gives these times.
SEEN = {
    ("room1", "10-24 09:21"): ("10-24 09:02", "10-24 09:14"),
    ("room1", "10-24 09:51"): ("10-24 09:30", "10-24 09:33"),
}


def _zero_meetings(day: str, kind: str) -> dict[str, Any]:
    return {
        "day": day,
        "type": kind,
        "meetings": 0,
        "ended": 0,
        "minutes": 0.0,
        "average_minutes": None,
        "participants": 0,
        "average_participants": None,
    }


def _meetings(
    day: str, kind: str, n: int, ended: int, minutes: float, people: int
) -> dict[str, Any]:
    return {
        "day": day,
        "type": kind,
        "meetings": n,
        "ended": ended,
        "minutes": minutes,
        "average_minutes": round(minutes / ended, 1) if ended else None,
        "participants": people,
        "average_participants": round(people / n, 1) if n else None,
    }


def _warnings(day: str, no_room: int, too_large: int, over: int, meetings: int) -> dict[str, Any]:
    return {
        "day": day,
        "no_room": no_room,
        "meeting_too_large": too_large,
        "participants_over_limit": over,
        "warnings": no_room + too_large + over,
        "meetings": meetings,
    }


def _login(day: str, logins: int, users: int, peak: int, at: str | None) -> dict[str, Any]:
    return {
        "day": day,
        "logins": logins,
        "distinct_users": users,
        "peak_concurrent_users": peak,
        "peak_at": at,
    }


# report -> zone -> (rows, summary)
EXPECTED: dict[str, dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = {
    "logins": {
        "UTC": (
            [
                # collab1: alice, bob and carol at 09:20 (bcast1's dave counts once: 2)
                _login("2026-10-24", 4, 3, 3, "2026-10-24T09:20:00+00:00"),
                _login("2026-10-25", 2, 2, 2, "2026-10-25T14:05:00+00:00"),  # carol, erin
                _login("2026-10-26", 2, 2, 2, "2026-10-26T10:05:00+00:00"),  # dave, frank
            ],
            [_login("all days", 8, 5, 3, "2026-10-24T09:20:00+00:00")],
        ),
        "Europe/Paris": (
            [
                _login("2026-10-24", 3, 2, 3, "2026-10-24T11:20:00+02:00"),
                # bcast1 (bob, dave at 00:30 CEST) reaches 2 before collab2 does
                _login("2026-10-25", 2, 2, 2, "2026-10-25T00:30:00+02:00"),
                _login("2026-10-26", 2, 2, 2, "2026-10-26T11:05:00+01:00"),
            ],
            [_login("all days", 7, 4, 3, "2026-10-24T11:20:00+02:00")],
        ),
    },
    "login_failures": {
        "UTC": (
            [
                {"day": "2026-10-24", "failures": 3, "user_names": 2, "addresses": 2},
                {"day": "2026-10-25", "failures": 1, "user_names": 1, "addresses": 1},
                {"day": "2026-10-26", "failures": 0, "user_names": 0, "addresses": 0},
            ],
            [{"day": "all days", "failures": 4, "user_names": 3, "addresses": 2}],
        ),
        "Europe/Paris": (
            [
                {"day": "2026-10-24", "failures": 2, "user_names": 1, "addresses": 1},
                {"day": "2026-10-25", "failures": 2, "user_names": 2, "addresses": 1},
                {"day": "2026-10-26", "failures": 0, "user_names": 0, "addresses": 0},
            ],
            [{"day": "all days", "failures": 4, "user_names": 3, "addresses": 2}],
        ),
    },
    "meetings": {
        "UTC": (
            [
                _meetings("2026-10-24", "collaboration", 1, 1, 60.0, 3),
                _meetings("2026-10-24", "broadcast", 1, 1, 90.0, 2),
                _meetings("2026-10-25", "collaboration", 1, 1, 30.0, 2),
                _zero_meetings("2026-10-25", "broadcast"),
                _meetings("2026-10-26", "collaboration", 1, 0, 0.0, 2),  # still running
                _zero_meetings("2026-10-26", "broadcast"),
            ],
            [
                _meetings("all days", "collaboration", 3, 2, 90.0, 7),  # 7/3 = 2.3
                _meetings("all days", "broadcast", 1, 1, 90.0, 2),
                _meetings("all days", "all types", 4, 3, 180.0, 9),  # 9/4 = 2.2 (2.25)
            ],
        ),
        "Europe/Paris": (
            [
                _meetings("2026-10-24", "collaboration", 1, 1, 60.0, 3),
                _zero_meetings("2026-10-24", "broadcast"),
                _meetings("2026-10-25", "collaboration", 1, 1, 30.0, 2),
                _meetings("2026-10-25", "broadcast", 1, 1, 90.0, 2),  # 00:15 CEST
                _meetings("2026-10-26", "collaboration", 1, 0, 0.0, 2),
                _zero_meetings("2026-10-26", "broadcast"),
            ],
            [
                _meetings("all days", "collaboration", 3, 2, 90.0, 7),
                _meetings("all days", "broadcast", 1, 1, 90.0, 2),
                _meetings("all days", "all types", 4, 3, 180.0, 9),
            ],
        ),
    },
    "capacity_warnings": {
        "UTC": (
            [
                _warnings("2026-10-24", 1, 1, 1, 2),
                _warnings("2026-10-25", 0, 0, 0, 0),
                _warnings("2026-10-26", 1, 0, 0, 1),
            ],
            [_warnings("all days", 2, 1, 1, 3)],
        ),
        "Europe/Paris": (
            [
                _warnings("2026-10-24", 1, 0, 1, 1),
                _warnings("2026-10-25", 0, 1, 0, 1),
                _warnings("2026-10-26", 1, 0, 0, 1),
            ],
            [_warnings("all days", 2, 1, 1, 3)],
        ),
    },
    "server_peaks": {
        "UTC": (
            [
                {
                    "server": "@evil",
                    "samples": 1,
                    "peak_meetings": 0,
                    "peak_meetings_at": "2026-10-25T12:00:00+00:00",
                    "peak_participants": 0,
                    "peak_participants_at": "2026-10-25T12:00:00+00:00",
                    "peak_cpu_percent": 1.0,
                    "peak_memory_percent": 1.0,
                },
                {
                    "server": "room1",
                    "samples": 4,
                    "peak_meetings": 2,
                    "peak_meetings_at": "2026-10-26T10:06:00+00:00",
                    "peak_participants": 3,
                    # Seen at 09:14 in the sample written at 09:21, the first of two with 3.
                    "peak_participants_at": "2026-10-24T09:14:00+00:00",
                    "peak_cpu_percent": 35.5,
                    "peak_memory_percent": 42.5,
                },
                {
                    "server": "room2",
                    "samples": 2,
                    "peak_meetings": 1,
                    "peak_meetings_at": "2026-10-24T22:31:00+00:00",
                    "peak_participants": 2,
                    "peak_participants_at": "2026-10-24T22:31:00+00:00",
                    "peak_cpu_percent": 12.0,
                    "peak_memory_percent": 31.0,
                },
            ],
            [],
        ),
        "Europe/Paris": (
            [
                {
                    "server": "@evil",
                    "samples": 1,
                    "peak_meetings": 0,
                    "peak_meetings_at": "2026-10-25T13:00:00+01:00",
                    "peak_participants": 0,
                    "peak_participants_at": "2026-10-25T13:00:00+01:00",
                    "peak_cpu_percent": 1.0,
                    "peak_memory_percent": 1.0,
                },
                {
                    "server": "room1",
                    "samples": 4,
                    "peak_meetings": 2,
                    "peak_meetings_at": "2026-10-26T11:06:00+01:00",
                    "peak_participants": 3,
                    "peak_participants_at": "2026-10-24T11:14:00+02:00",
                    "peak_cpu_percent": 35.5,
                    "peak_memory_percent": 42.5,
                },
                {
                    "server": "room2",
                    "samples": 1,  # its 23:30 UTC sample is on the 27th in Paris
                    "peak_meetings": 1,
                    "peak_meetings_at": "2026-10-25T00:31:00+02:00",
                    "peak_participants": 2,
                    "peak_participants_at": "2026-10-25T00:31:00+02:00",
                    "peak_cpu_percent": 12.0,
                    "peak_memory_percent": 30.0,
                },
            ],
            [],
        ),
    },
}

# Billing (docs/schema.md): closed presence in October 2026 per partition and moderator:
# collab1 alice 60 + bob 30 + 10 + carol 40 = 140; bcast1 bob 90 + dave 75 (two stays
# merged: 22:30-23:45, not 75 + 45) = 165; collab2 carol 30 + erin 20 = 50; collab3 frank 30
# (dave is still there: not billed yet).
BILLING = [
    ("", "dave", 1, 1, 30.0),
    ("acme", "alice", 1, 3, 140.0),
    ("acme", "bob", 1, 2, 165.0),
    ("globex", "carol", 1, 2, 50.0),
]


def rows() -> list[Any]:
    made: list[Any] = []
    for at, user in LOGINS:
        made.append(
            LoginRow(at=t(at), username=user, source="local", partition=None, address="10.0.0.1")
        )
    for at, user, address in FAILURES:
        made.append(
            LoginFailureRow(at=t(at), username=user, address=address, reason="wrong password")
        )
    for mid, kind, moderator, partition, started, ended in MEETINGS:
        start = t(started)
        made.append(
            MeetingRow(
                id=mid,
                name=f"Meeting {mid}",
                type=kind,
                moderator=moderator,
                partition=partition,
                expected_participants=10,
                start_at=start,
                end_at=start + timedelta(hours=1)
                if ended
                else datetime.now(UTC) + timedelta(days=1),
                duration_minutes=60,
                instant=False,
                tools=["chat"],
                status="in_progress" if ended is None else "ended",
                server_name="room1",
                epoch=1,
                started_at=start,
                ended_at=t(ended) if ended else None,
            )
        )
    made.append(  # scheduled, never started: in no report
        MeetingRow(
            id="future1",
            name="Meeting future1",
            type="collaboration",
            moderator="alice",
            expected_participants=5,
            start_at=t("10-25 09:00"),
            end_at=t("10-25 10:00"),
            duration_minutes=60,
            tools=[],
            status="scheduled",
        )
    )
    # The EMS's clock ends a meeting in progress that has no occurrence now and nobody in it.
    made.append(
        OccurrenceRow(
            meeting_id="collab3",
            original_start=t("10-26 10:00"),
            start_at=t("10-26 10:00"),
            end_at=datetime.now(UTC) + timedelta(days=1),
        )
    )
    for mid, user, role, epoch, joined, left in STAYS:
        made.append(
            AttendanceRow(
                meeting_id=mid,
                user_name=user,
                role=role,
                server_name="room1",
                epoch=epoch,
                joined_at=t(joined),
                left_at=t(left) if left else None,
            )
        )
    for at, kind, mid, server in WARNINGS:
        made.append(
            CapacityWarningRow(
                at=t(at), kind=kind, meeting_id=mid, server_name=server, message=kind
            )
        )
    for server, at, meetings, participants, cpu, memory in SAMPLES:
        meetings_seen, participants_seen = SEEN.get((server, at), (at, at))
        made.append(
            ServerSampleRow(
                server_name=server,
                at=t(at),
                active_meetings=meetings,
                meetings_at=t(meetings_seen),
                participants=participants,
                participants_at=t(participants_seen),
                cpu_percent=cpu,
                memory_percent=memory,
            )
        )
    return made


def write_history(database_url: str) -> None:
    """Write the history into a migrated database."""

    async def write() -> None:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                made = rows()
                meetings = [r for r in made if isinstance(r, MeetingRow)]
                session.add_all(meetings)
                await session.flush()  # the stays' meetings first
                session.add_all([r for r in made if not isinstance(r, MeetingRow)])
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(write())
