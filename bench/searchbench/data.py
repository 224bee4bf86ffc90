"""The benchmark's meetings and their occurrences, generated from a seed (the same data
for the same seed), in the columns of the real schema."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from moot.core.recurrence import occurrences as rule_occurrences
from moot.ems.model.meetings import ALL_TOOLS
from searchbench.names import (
    make_corpus,
    meeting_name,
)

DATA_VERSION = 2  # change when the generated data changes: kept databases are rebuilt
SEED = 5
CHUNK = 20_000  # meetings per bulk insert
MEETING_COLUMNS = (
    "id",
    "name",
    "type",
    "moderator",
    "expected_participants",
    "start_at",
    "end_at",
    "duration_minutes",
    "instant",
    "recurrence",
    "record",
    "password_hash",
    "tools",
    "status",
    "server_name",
    "epoch",
    "started_at",
    "ended_at",
    "created_at",
    "updated_at",
    "location",
    "location_required",
    "booked_server",
    "timezone",
    "series_end_at",
    "unlisted",
    "restricted_to",
)
OCCURRENCE_COLUMNS = ("meeting_id", "original_start", "start_at", "end_at")
_TIMES = frozenset(
    MEETING_COLUMNS.index(c)
    for c in (
        *("start_at", "end_at", "started_at", "ended_at", "created_at", "updated_at"),
        "series_end_at",
    )
)
_FLAGS = frozenset(
    MEETING_COLUMNS.index(c) for c in ("instant", "record", "location_required", "unlisted")
)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
ZONE_WEIGHTS = (4, 3, 2, 1)
DURATIONS = (15, 30, 30, 30, 45, 60, 60, 60, 60, 90, 120, 180, 240)
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # as moot.ems.meetings.new_meeting_id
# --- the data -----------------------------------------------------------------------------

Meeting = tuple[Any, ...]  # in MEETING_COLUMNS order; times naive UTC
Occurrence = tuple[str, datetime, datetime, datetime]


@dataclass
class Counts:
    meetings: int = 0
    occurrences: int = 0
    recurring: int = 0
    unlisted: int = 0
    checked: int = 0  # series compared with moot.core.recurrence.occurrences


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _check_series(
    start: datetime, minutes: int, rule: str, zone: str, starts: list[datetime]
) -> None:
    """The arithmetic gave exactly what the repeat rule gives (moot.core.recurrence)."""
    expected = rule_occurrences(
        start=start,
        duration_minutes=minutes,
        rule=rule,
        timezone=zone,
        range_from=start,
        range_to=starts[-1] + timedelta(days=1),
    )
    got = [o.start for o in expected]
    if got != starts:
        raise AssertionError(f"{rule} from {start} in {zone}: arithmetic disagrees with the rule")


def generate(
    count: int, now: datetime, seed: int, counts: Counts
) -> Iterator[tuple[list[Meeting], list[Occurrence]]]:
    """The meetings and their occurrences, CHUNK meetings at a time (the same for a seed)."""
    rng = random.Random(seed)
    corpus = make_corpus(seed)
    zones = {name: ZoneInfo(name) for name in ZONES}
    tools = json.dumps(ALL_TOOLS)
    ids: set[str] = set()
    today = now.date()
    meetings: list[Meeting] = []
    whens: list[Occurrence] = []
    for number in range(count):
        meeting_id = "".join(rng.choices(_ID_ALPHABET, k=10))
        while meeting_id in ids:
            meeting_id = "".join(rng.choices(_ID_ALPHABET, k=10))
        ids.add(meeting_id)
        day = today + timedelta(days=rng.randrange(-365, 365))
        if day.weekday() >= 5 and rng.random() < 0.8:  # fewer meetings at weekends
            day = today + timedelta(days=rng.randrange(-365, 365))
        zone_name = rng.choices(ZONES, weights=ZONE_WEIGHTS)[0]
        zone = zones[zone_name]
        minute = rng.choices((0, 15, 30, 45), weights=(5, 1, 3, 1))[0]
        local = datetime.combine(day, clock(rng.randint(7, 18), minute), zone)
        start = local.astimezone(UTC)
        minutes = rng.choice(DURATIONS)
        length = timedelta(minutes=minutes)
        instant = start < now and rng.random() < 0.05
        rule = None
        starts = [start]
        if not instant and rng.random() < 0.10:
            step, freq = (7, "WEEKLY") if rng.random() < 0.75 else (1, "DAILY")
            repeats = rng.randint(4, 52)
            rule = f"FREQ={freq};COUNT={repeats}"
            starts = [(local + timedelta(days=step * k)).astimezone(UTC) for k in range(repeats)]
            counts.recurring += 1
            if counts.recurring % 997 == 1:
                _check_series(start, minutes, rule, zone_name, starts)
                counts.checked += 1
        series_end = starts[-1] + length
        if series_end <= now:
            status = "ended"
        elif rule is None and start <= now:
            status = "in_progress"
        else:
            status = "scheduled"
        unlisted = rng.random() < 0.03
        name = meeting_name(rng, corpus)
        if unlisted:  # unlisted names are unique
            name = f"{name} {meeting_id}"
            counts.unlisted += 1
        server = f"room{rng.randint(1, 12)}"
        created = start - timedelta(minutes=0 if instant else rng.randint(60, 60 * 24 * 30))
        meetings.append(
            (
                meeting_id,
                name,
                "broadcast" if rng.random() < 0.08 else "collaboration",
                rng.choices(corpus.people, cum_weights=corpus.people_weights)[0],
                max(2, min(500, int(rng.lognormvariate(2.3, 0.9)))),
                _naive(start),
                _naive(start + length),
                minutes,
                instant,
                rule,
                rng.random() < 0.15,
                "scrypt$bench$bench" if rng.random() < 0.05 else None,
                tools,
                status,
                server if status != "scheduled" else None,
                1 if status != "scheduled" else 0,
                _naive(start) if status != "scheduled" else None,
                _naive(series_end) if status == "ended" else None,
                _naive(created),
                _naive(created),
                "",
                False,
                server if status == "scheduled" and start < now + timedelta(days=30) else None,
                zone_name,
                _naive(series_end),
                unlisted,
                '["finance"]' if rng.random() < 0.02 else "[]",
            )
        )
        for s in starts:
            whens.append((meeting_id, _naive(s), _naive(s), _naive(s + length)))
        counts.meetings += 1
        if len(meetings) == CHUNK or number == count - 1:
            counts.occurrences += len(whens)
            yield meetings, whens
            meetings, whens = [], []


def _sqlite_time(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")  # SQLAlchemy's storage format


def _sqlite_meeting(row: Meeting) -> tuple[Any, ...]:
    return tuple(
        (None if v is None else _sqlite_time(v)) if i in _TIMES else (int(v) if i in _FLAGS else v)
        for i, v in enumerate(row)
    )
