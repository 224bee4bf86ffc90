"""Calendar month view and name search over 1,000,000 meetings, on SQLite and PostgreSQL.

Builds the data through the real schema (`moot.ems.store.migrate.upgrade`, then bulk
inserts: `executemany` on SQLite, `COPY` on PostgreSQL): `--meetings` meetings (default
1,000,000) whose first start lies within a year either side of now, names made of a few
thousand distinct words, about 20,000 moderators, durations of 15 to 240 minutes, status
`ended` before now and `scheduled` after it, about 10 % repeating (weekly or daily, COUNT
4 to 52) and about 3 % unlisted. `occurrences` holds one row per meeting that does not
repeat and every occurrence of one that does, as `write_occurrences` writes them; they are
computed by wall-clock arithmetic in the meeting's time zone (start + k days or weeks),
which is what the RFC 5545 rule gives for these rules and start times (07:00 to 18:45, never
in a daylight-saving gap), and a sample of the series is checked against
`moot.core.recurrence.occurrences` while building.

Then it measures the store's own code (`create_engine`, the migrations' indexes: 0010 and
0012), each call in its own session as the EMS makes it, in random order:

- month view: `moot.ems.store.occurrences.calendar_page` as the calendar page calls it for
  a random month (a UTC reader): the counts of the grid's 35 or 42 days (each up to
  DAY_COUNT_CAP), the month's total (up to LIST_COUNT_CAP) and its first 25 occurrences by
  start;
- calendar API (no goal of its own, for reference): `in_range` over the month's grid, the
  first page of GET /api/v1/calendar (2,000 occurrences);
- name search: `moot.ems.store.meetings.list_meetings(MeetingQuery(q=word))`, the first page
  of 50, for random words: half of them drawn from the vocabulary (most are rare: project
  and customer names), about 40 % from the words of a random meeting's name (so common
  words come up as often as people type them), some moderators' family names, some typos
  and every 25th the first one or two letters of a name.

For a sample of the words of 3 characters or more (`--before`), the search must return
exactly the rows of the search before migration 0012 (`search_before`, kept below: a plain
ILIKE), which is timed too. p50/p95/p99 are printed beside the goals. The query plans of
every statement as it was sent (captured from the engine) are summed up, and written to a
Markdown file with `--plans`. On a shared machine, `--wait-load 1.5` waits before each part
until the load average has fallen below 1.5. On SQLite the FTS triggers of migration 0012
are checked on the built database (insert, rename, delete; rolled back).

Run: `.venv/bin/python bench/search.py [--meetings N] [--queries N] [--keep]
[--only sqlite|postgresql] [--parts month,api,search,before,plans] [--plans FILE]
[--wait-load L] [--check]`.
`--keep` keeps the SQLite file (in the temporary directory) and the PostgreSQL database
(`moot_bench_search` on 127.0.0.1:5432, user postgres, trust authentication) after the run
and reuses them on the next run with `--keep` and the same `--meetings` (migrating them to
the newest schema first); without it both are built afresh (in a temporary directory and
in `moot_bench_search_scratch`) and removed at the end.
`--check` exits with status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import (
    Connection,
    event,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from moot.core.recurrence import occurrences as rule_occurrences
from moot.ems.model.meetings import ALL_TOOLS
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.meetings import MeetingQuery, list_meetings
from moot.ems.store.migrate import upgrade_async
from moot.ems.store.models import MeetingRow
from moot.ems.store.occurrences import calendar_page, in_range
from moot.ems.web.calendar import month_weeks

GOAL_MS = {"sqlite": 150.0, "postgresql": 50.0}  # p95 of each query
DATA_VERSION = 2  # change when the generated data changes: kept databases are rebuilt
SEED = 5
CHUNK = 20_000  # meetings per bulk insert
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_DATABASE = "moot_bench_search"
CACHE_DIR = Path(tempfile.gettempdir()) / "moot-bench-search"

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

# --- the words meetings are named with ---------------------------------------------------

KINDS = (
    "weekly sync", "standup", "daily standup", "review", "sprint planning", "retro", "1:1",
    "demo", "kickoff", "workshop", "all-hands", "office hours", "town hall", "training",
    "onboarding", "interview", "brainstorm", "status update", "steering committee",
    "design review", "code review", "roadmap review", "budget review", "board meeting",
    "check-in", "deep dive", "post-mortem", "readout", "offsite prep", "lunch and learn",
    "Q&A", "webinar", "briefing", "handover", "escalation call", "customer call",
    "sales call", "pipeline review", "forecast call", "hiring committee", "performance review",
    "strategy session", "architecture board", "incident review", "release planning",
    "go/no-go", "coffee chat", "AMA", "fireside chat", "planning poker", "refinement",
    "grooming", "jour fixe", "alignment", "sync", "catch-up", "huddle", "summit",
    "quarterly business review", "monthly report", "weekly report", "tech talk",
)  # fmt: skip
TEAMS = (
    "Platform", "Payments", "Identity", "Security", "Finance", "Legal", "People Ops",
    "Recruiting", "Sales EMEA", "Sales APAC", "Sales Americas", "Marketing", "Brand", "Growth",
    "Data", "Analytics", "Machine Learning", "Infrastructure", "SRE", "Networking", "Storage",
    "Mobile", "iOS", "Android", "Web", "Frontend", "Backend", "QA", "Support",
    "Customer Success", "Procurement", "Facilities", "IT", "Compliance", "Risk", "Audit",
    "Treasury", "Tax", "Product", "Design", "UX Research", "Documentation", "Localization",
    "Partnerships", "Channel", "Operations", "Logistics", "Supply Chain", "Manufacturing",
    "Quality", "R&D", "Research", "Hardware", "Firmware", "Billing", "Search", "Messaging",
    "Video", "Audio", "Accessibility", "Developer Relations", "Community", "Events",
    "Communications", "Executive", "Works Council", "Health and Safety", "Sustainability",
    "Privacy", "Architecture", "Release Engineering", "Build", "Tooling", "Observability",
    "Databases", "Cloud", "Edge", "Integrations", "API", "Controlling", "Accounting",
)  # fmt: skip
TOPICS = (
    "budget", "roadmap", "hiring", "release", "incident", "migration", "pricing",
    "compliance", "GDPR", "renewal", "contract", "offboarding", "vendor", "security audit",
    "penetration test", "capacity", "cost", "forecast", "OKR", "KPI", "churn", "retention",
    "launch", "campaign", "conference", "trade fair", "certification", "accessibility",
    "performance", "latency", "uptime", "backup", "disaster recovery", "data retention",
    "tender", "RFP", "invoice", "payroll", "benefits", "relocation", "visa", "office move",
    "floor plan", "parking", "canteen", "IT refresh", "laptop rollout", "SSO", "LDAP", "VPN",
    "firewall", "patching", "upgrade", "deprecation", "API v2", "mobile app",
    "website relaunch", "newsletter", "press release", "annual report", "audit findings",
    "tax filing", "year-end close", "month-end close", "headcount", "reorg", "strategy",
    "vision", "values", "diversity", "wellbeing", "mentoring", "internship",
    "graduate program", "hackathon", "innovation", "patents", "licensing", "open source",
    "partnership", "integration", "customer feedback", "NPS", "support backlog", "SLA",
    "escalations", "quality gate", "test plan", "regression", "beta", "pilot", "rollout",
    "go-live", "cutover", "data migration", "schema change", "calendar", "recording",
    "streaming", "transcoding", "load test", "benchmark", "observability", "on-call",
    "postmortem actions", "runbook", "SOC 2", "ISO 27001", "threat model", "key rotation",
    "certificates", "DNS", "CDN", "Kubernetes", "Terraform", "cost savings", "cloud bill",
    "licences", "seat planning", "travel policy", "expenses", "offsite", "team event",
    "summer party", "holiday planning", "shift plan", "warehouse", "shipping", "returns",
    "inventory", "suppliers", "quality audit", "recall", "safety drill", "fire drill",
    "first aid", "sustainability report", "carbon", "energy", "solar", "fleet", "EV charging",
    "translation", "glossary", "style guide", "brand refresh", "logo", "website", "SEO",
    "social media", "influencers", "events calendar", "customer advisory board",
    "user research", "usability test", "prototype", "wireframes", "design system",
    "dark mode", "onboarding flow", "checkout", "subscriptions", "refunds", "fraud",
    "chargebacks", "KYC", "AML", "sanctions", "export control", "works agreement",
)  # fmt: skip
FIRST_NAMES = (
    "anna", "ben", "carla", "david", "eva", "felix", "greta", "hannes", "ida", "jonas",
    "katrin", "lukas", "mara", "nico", "olga", "paul", "quentin", "rosa", "sven", "tina",
    "ulrich", "vera", "walter", "xenia", "yusuf", "zoe", "amir", "bianca", "cem", "dana",
    "emil", "fatima", "georg", "helga", "ivan", "julia", "kai", "lena", "max", "nina",
    "oskar", "petra", "ralf", "sara", "timo", "ute", "viktor", "wanda", "yara", "aaron",
    "alice", "bob", "chen", "diego", "elena", "farid", "gina", "hiro", "ines", "jamal",
    "kim", "liam", "mei", "noah", "omar", "priya", "raj", "sofia", "tariq", "uma", "valentin",
    "wei", "ximena", "yuki", "zara", "adele", "bruno", "clara", "dirk", "elif", "frida",
    "gustav", "hanna", "igor", "jana", "karl", "lotte", "moritz", "nele", "otto", "pia",
    "rene", "selma", "theo", "ulla", "vincent", "wilma", "alma", "bernd", "doris", "erik",
    "fiona", "gerd", "heidi", "ingo", "jasper", "karin", "leon", "marta", "nils", "ole",
    "pauline", "robin", "sabine", "tobias", "uwe", "vanessa", "yannick", "zora",
)  # fmt: skip
FAMILY_NAMES = (
    "schmidt", "mueller", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
    "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "schroeder", "neumann",
    "schwarz", "braun", "hofmann", "zimmermann", "hartmann", "krueger", "lange", "werner",
    "krause", "lehmann", "koehler", "maier", "herrmann", "walter", "koenig", "mayer", "huber",
    "kaiser", "fuchs", "peters", "lang", "scholz", "moeller", "weiss", "jung", "hahn",
    "schubert", "vogel", "friedrich", "keller", "guenther", "frank", "berger", "winkler",
    "roth", "beck", "lorenz", "baumann", "franke", "albrecht", "schuster", "simon", "ludwig",
    "boehm", "winter", "kraus", "martin", "schumacher", "kraemer", "vogt", "stein", "jaeger",
    "otto", "sommer", "gross", "seidel", "heinrich", "brandt", "haas", "schreiber", "graf",
    "schulte", "dietrich", "ziegler", "kuhn", "kuehn", "pohl", "engel", "horn", "busch",
    "bergmann", "thomas", "voigt", "sauer", "arnold", "wolff", "pfeiffer", "smith",
    "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "taylor", "moore",
    "jackson", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez",
    "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres",
    "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall", "rivera",
    "campbell", "mitchell", "carter", "roberts", "tanaka", "suzuki", "sato", "watanabe",
    "ito", "yamamoto", "nakamura", "kobayashi", "kato", "yoshida", "yamada", "sasaki",
    "kowalski", "nowak", "wisniewski", "dubois", "laurent", "lefebvre", "moreau", "rossi",
    "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci", "marino",
    "greco", "bruno", "gallo", "conti", "devries", "jansen", "bakker", "visser", "smit",
    "meijer", "mulder", "bos", "vos", "peeters", "janssens", "maes", "jacobs", "mertens",
    "willems", "claes", "goossens", "wouters", "silva", "santos", "ferreira", "pereira",
    "oliveira", "costa", "rodrigues", "almeida", "yilmaz", "kaya", "demir", "sahin",
    "celik", "yildiz", "aydin", "ozturk", "arslan", "dogan", "kumar", "sharma", "singh",
    "patel", "gupta", "khan", "ali", "ahmed", "hussain", "chen", "wang", "li", "zhang", "liu",
)  # fmt: skip
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
ZONE_WEIGHTS = (4, 3, 2, 1)
DURATIONS = (15, 30, 30, 30, 45, 60, 60, 60, 60, 90, 120, 180, 240)
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # as moot.ems.meetings.new_meeting_id
_ONSETS = (
    "b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kl", "l", "m", "n",
    "p", "pr", "qu", "r", "s", "sh", "sk", "st", "t", "tr", "v", "w", "z",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "s", "l", "x", "m", "nd", "rt", "st", "th", "k")
CODENAMES = 2_600  # project and customer names: most of the vocabulary, each rare
WORD = re.compile(r"[a-z0-9]+")


def _zipf(items: Sequence[str], rng: random.Random) -> tuple[list[str], list[float]]:
    """The items in a random order with Zipf weights (the first is the most common)."""
    order = list(items)
    rng.shuffle(order)
    total, cumulative = 0.0, []
    for rank in range(len(order)):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    return order, cumulative


@dataclass
class Corpus:
    """What meetings are named after and who moderates them."""

    kinds: tuple[list[str], list[float]]
    teams: tuple[list[str], list[float]]
    topics: tuple[list[str], list[float]]
    codenames: list[str]
    people: list[str]
    people_weights: list[float]

    def words(self) -> list[str]:
        """The distinct lower-case words of at least 3 characters that names contain."""
        found: set[str] = set()
        for phrase in (*self.kinds[0], *self.teams[0], *self.topics[0], *self.codenames):
            found.update(w for w in WORD.findall(phrase.lower()) if len(w) >= 3)
        return sorted(found)


def make_corpus(seed: int) -> Corpus:
    rng = random.Random(seed)
    known = {w for p in (*KINDS, *TEAMS, *TOPICS) for w in WORD.findall(p.lower())}
    codenames: set[str] = set()
    while len(codenames) < CODENAMES:
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3))]
        word = ("".join(syllables) + rng.choice(_CODAS)).capitalize()
        if word.lower() not in known:
            codenames.add(word)
    pairs = [(f, s) for f in FIRST_NAMES for s in FAMILY_NAMES]
    rng.shuffle(pairs)
    people = [f"{f}.{s}" for f, s in pairs[:20_000]]
    weights = [rng.lognormvariate(0.0, 1.0) for _ in people]
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    return Corpus(
        kinds=_zipf(KINDS, rng),
        teams=_zipf(TEAMS, rng),
        topics=_zipf(TOPICS, rng),
        codenames=sorted(codenames),
        people=people,
        people_weights=cumulative,
    )


def _pick(rng: random.Random, items: tuple[list[str], list[float]]) -> str:
    return rng.choices(items[0], cum_weights=items[1])[0]


def meeting_name(rng: random.Random, corpus: Corpus) -> str:
    r = rng.random()
    kind = _pick(rng, corpus.kinds)
    if r < 0.22:
        return f"{_pick(rng, corpus.teams)} {kind}"
    if r < 0.36:
        return f"{_pick(rng, corpus.teams)} {_pick(rng, corpus.topics)} {kind}"
    if r < 0.50:
        topic = _pick(rng, corpus.topics)
        return f"{topic[0].upper()}{topic[1:]} {kind}"
    if r < 0.68:
        return f"Project {rng.choice(corpus.codenames)} {kind}"
    if r < 0.82:
        return f"{kind[0].upper()}{kind[1:]} with {rng.choice(corpus.codenames)}"
    if r < 0.92:
        return f"{rng.choice(corpus.codenames)}: {_pick(rng, corpus.topics)}"
    first, second = rng.sample(FIRST_NAMES, 2)
    return f"{first.capitalize()} / {second.capitalize()} 1:1"


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


# --- the search as it was before migration 0012 (docs/benchmarks.md, "Search") -----------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_before(session: AsyncSession, q: str, limit: int = 50) -> list[MeetingRow]:
    """The first page of `list_meetings(MeetingQuery(q=q))` as the store wrote it before
    0012: ILIKE '%q%' on name or moderator, nothing else. For 3 characters or more the store
    must still return exactly these rows (checked on a sample: `--before`)."""
    pattern = f"%{_escape_like(q)}%"
    stmt = (
        select(MeetingRow)
        .where(
            MeetingRow.unlisted.is_(False),
            or_(
                MeetingRow.name.ilike(pattern, escape="\\"),
                MeetingRow.moderator.ilike(pattern, escape="\\"),
            ),
        )
        .order_by(MeetingRow.start_at.asc(), MeetingRow.id.asc())
        .limit(limit + 1)
    )
    return list((await session.scalars(stmt)).all())[:limit]


# --- SQLite -------------------------------------------------------------------------------


def _insert(table_name: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks})"


def fill_sqlite(path: Path, count: int, now: datetime, seed: int) -> Counts:
    """Bulk-insert the data into a migrated SQLite file."""
    counts = Counts()
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")  # 1 GB while loading
        meeting_sql = _insert("meetings", MEETING_COLUMNS)
        occurrence_sql = _insert("occurrences", OCCURRENCE_COLUMNS)
        for meetings, whens in generate(count, now, seed, counts):
            con.executemany(meeting_sql, [_sqlite_meeting(m) for m in meetings])
            con.executemany(
                occurrence_sql,
                [(m, _sqlite_time(o), _sqlite_time(s), _sqlite_time(e)) for m, o, s, e in whens],
            )
            con.commit()
            print(f"\r  {counts.meetings:,} meetings", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return counts


def _fts_count(con: sqlite3.Connection, word: str) -> int:
    found: int = con.execute(
        "SELECT count(*) FROM meetings_search WHERE meetings_search MATCH ?",
        (f'{{name moderator}} : "{word}"',),
    ).fetchone()[0]
    return found


def check_search_triggers(con: sqlite3.Connection) -> None:
    """Insert, rename and delete a meeting (rolled back): the FTS index follows each."""
    columns = ", ".join(MEETING_COLUMNS)
    values = ", ".join("?" if c in ("id", "name") else c for c in MEETING_COLUMNS)
    con.execute("SAVEPOINT bench_check")
    try:
        con.execute(
            f"INSERT INTO meetings ({columns}) SELECT {values} FROM meetings LIMIT 1",
            ("benchcheck", "Qxzvy trigger check"),
        )
        assert _fts_count(con, "qxzvy") == 1, "the insert trigger did not index the name"
        con.execute("UPDATE meetings SET name = 'Wvutz renamed' WHERE id = 'benchcheck'")
        assert _fts_count(con, "qxzvy") == 0, "the update trigger left the old name"
        assert _fts_count(con, "wvutz") == 1, "the update trigger did not index the new name"
        con.execute("DELETE FROM meetings WHERE id = 'benchcheck'")
        assert _fts_count(con, "wvutz") == 0, "the delete trigger left the name"
    finally:
        con.execute("ROLLBACK TO bench_check")
        con.execute("RELEASE bench_check")


def check_sqlite(path: Path) -> None:
    """The migration's FTS triggers keep the search table right (checked, rolled back)."""
    con = sqlite3.connect(path)
    try:
        check_search_triggers(con)
    finally:
        con.close()


# --- PostgreSQL ---------------------------------------------------------------------------


async def pg_admin() -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")


async def pg_connect(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)


async def pg_meta(database: str) -> dict[str, Any] | None:
    admin = await pg_admin()
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            database,
        )
    finally:
        await admin.close()
    if not comment:
        return None
    meta: dict[str, Any] = json.loads(comment)
    return meta


async def pg_drop(database: str) -> None:
    admin = await pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def fill_postgresql(database: str, count: int, now: datetime, seed: int) -> Counts:
    """COPY the data into the migrated database, then VACUUM ANALYZE as autovacuum would."""
    counts = Counts()
    con = await pg_connect(database)
    try:
        for meetings, whens in generate(count, now, seed, counts):
            async with con.transaction():
                await con.copy_records_to_table(
                    "meetings", records=meetings, columns=list(MEETING_COLUMNS)
                )
                await con.copy_records_to_table(
                    "occurrences", records=whens, columns=list(OCCURRENCE_COLUMNS)
                )
            print(f"\r  {counts.meetings:,} meetings", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        await con.execute("VACUUM ANALYZE meetings")
        await con.execute("VACUUM ANALYZE occurrences")
    finally:
        await con.close()
    return counts


# --- building or reusing ------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str
    where: str
    meta: dict[str, Any]
    built_in: float | None  # seconds, None when reused
    cleanup: Callable[[], Awaitable[None]] | None = None


def _meta(count: int, now: datetime, seed: int, counts: Counts) -> dict[str, Any]:
    return {
        "version": DATA_VERSION,
        "meetings": count,
        "seed": seed,
        "now": now.isoformat(),
        "occurrences": counts.occurrences,
        "recurring": counts.recurring,
        "unlisted": counts.unlisted,
        "checked": counts.checked,
    }


def _matches(meta: dict[str, Any] | None, count: int, seed: int) -> bool:
    return (
        meta is not None
        and meta.get("version") == DATA_VERSION
        and meta.get("meetings") == count
        and meta.get("seed") == seed
    )


async def sqlite_database(count: int, seed: int, keep: bool, now: datetime) -> Database:
    if keep:
        directory = CACHE_DIR
        directory.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        directory = Path(tempfile.mkdtemp(prefix="moot-bench-search-"))

        async def remove() -> None:
            shutil.rmtree(directory, ignore_errors=True)

        cleanup = remove
    path = directory / f"search-{count}.sqlite"
    meta_path = path.with_suffix(".json")
    url = f"sqlite+aiosqlite:///{path}"
    if keep and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if _matches(meta, count, seed):
            await upgrade_async(url)  # any migration added since the file was built
            await asyncio.to_thread(check_sqlite, path)
            return Database("sqlite", url, str(path), meta, None, cleanup)
    for stale in (path, meta_path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    await upgrade_async(url)
    counts = await asyncio.to_thread(fill_sqlite, path, count, now, seed)
    built = time.perf_counter() - started
    await asyncio.to_thread(check_sqlite, path)
    meta = _meta(count, now, seed, counts)
    meta_path.write_text(json.dumps(meta))
    return Database("sqlite", url, str(path), meta, built, cleanup)


async def postgresql_database(count: int, seed: int, keep: bool, now: datetime) -> Database:
    database = PG_DATABASE if keep else f"{PG_DATABASE}_scratch"  # a run leaves the kept one
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"

    async def drop() -> None:
        await pg_drop(database)

    cleanup = None if keep else drop
    if keep:
        meta = await pg_meta(database)
        if _matches(meta, count, seed) and meta is not None:
            await upgrade_async(url)
            return Database("postgresql", url, database, meta, None, cleanup)
    await pg_drop(database)
    admin = await pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    started = time.perf_counter()
    await upgrade_async(url)
    counts = await fill_postgresql(database, count, now, seed)
    built = time.perf_counter() - started
    meta = _meta(count, now, seed, counts)
    admin = await pg_admin()
    try:
        comment = json.dumps(meta).replace("'", "''")
        await admin.execute(f"COMMENT ON DATABASE \"{database}\" IS '{comment}'")
    finally:
        await admin.close()
    return Database("postgresql", url, database, meta, built, cleanup)


# --- measuring ----------------------------------------------------------------------------

Call = Callable[[AsyncSession], Awaitable[list[Any]]]


@dataclass
class Timing:
    label: str
    goal_ms: float
    store: bool  # the store's own code, as it is
    ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)  # the machine's load average at start and end
    # CPU time, which a busy machine does not inflate as it does the time waited: of this
    # process per query (on SQLite that includes the database engine, which runs in it),
    # and on PostgreSQL the server backends' for all the queries together.
    cpu: list[float] = field(default_factory=list)
    server_cpu_ms: float | None = None

    def percentile(self, p: float, values: Sequence[float] | None = None) -> float:
        ordered = sorted(self.ms if values is None else values)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def met(self) -> bool:
        return self.percentile(95) <= self.goal_ms

    def by_kind(self) -> dict[str, list[float]]:
        kinds: dict[str, list[float]] = {}
        for label, ms in zip(self.labels, self.ms, strict=True):
            kind = label.split(":", 1)[0]
            if not kind[0].isdigit():
                kinds.setdefault(kind, []).append(ms)
        return kinds


def month_grid(first: date) -> tuple[datetime, datetime]:
    """The calendar page's range for a month: whole weeks, Monday first (UTC reader)."""
    start = first - timedelta(days=first.weekday())
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    last = following - timedelta(days=1)
    end = last + timedelta(days=7 - last.weekday())
    return (
        datetime.combine(start, clock(0), UTC),
        datetime.combine(end, clock(0), UTC),
    )


def months_of(now: datetime) -> list[date]:
    """The whole months within a year either side of `now`."""
    first = date(now.year - 1, now.month, 1)
    months = []
    for k in range(1, 24):
        index = first.year * 12 + first.month - 1 + k
        months.append(date(index // 12, index % 12 + 1, 1))
    return months


def search_words(corpus: Corpus, rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(kind, word): vocabulary words, words of a random name, family names, typos, and
    one or two first letters of a name (every 25th)."""
    vocabulary = corpus.words()
    chosen: list[tuple[str, str]] = []
    for k in range(count):
        if k % 25 == 24:
            name = meeting_name(rng, corpus).lower()
            chosen.append(("short", name[: rng.choice((1, 2, 2))]))
        elif k % 20 == 19:  # a typo: most often found nowhere
            word = rng.choice(corpus.codenames).lower()
            cut = rng.randrange(1, len(word) - 1)
            chosen.append(("typo", word[:cut] + word[cut + 1] + word[cut] + word[cut + 2 :]))
        elif k % 10 == 9:
            chosen.append(("moderator", rng.choice(corpus.people).split(".")[1]))
        elif k % 2 == 0:
            chosen.append(("vocabulary", rng.choice(vocabulary)))
        else:
            words = [w for w in WORD.findall(meeting_name(rng, corpus).lower()) if len(w) >= 3]
            chosen.append(("in a name", rng.choice(words or vocabulary)))
    rng.shuffle(chosen)
    return chosen


def page_days(first: date) -> tuple[list[tuple[datetime, datetime]], datetime, datetime]:
    """What the calendar page asks for a month (a UTC reader): its grid's days, the month."""
    days = [d for week in month_weeks(first.year, first.month) for d in week]
    midnight = [datetime.combine(d, clock(0), UTC) for d in (*days, days[-1] + timedelta(1))]
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        list(pairwise(midnight)),
        datetime.combine(first, clock(0), UTC),
        datetime.combine(following, clock(0), UTC),
    )


def month_call(first: date) -> Call:
    """The calendar page of a month: counts of its 35 or 42 days, the first 25 of the list."""
    days, low, high = page_days(first)

    async def page(session: AsyncSession) -> list[Any]:
        found = await calendar_page(session, days, low, high)
        return [(e.meeting_id, e.start_at) for e in found.entries]

    return page


def api_call(first: date) -> Call:
    """GET /api/v1/calendar over the month's grid: its first page, 2,000 occurrences."""
    low, high = month_grid(first)

    async def first_page(session: AsyncSession) -> list[Any]:
        return [(e.meeting_id, e.start_at) for e in await in_range(session, low, high)]

    return first_page


def search_call(q: str) -> Call:
    """The first page of a search, as meeting ids."""

    async def store(session: AsyncSession) -> list[Any]:
        rows, _ = await list_meetings(session, MeetingQuery(q=q))
        return [m.id for m in rows]

    return store


def before_call(q: str) -> Call:
    async def before(session: AsyncSession) -> list[Any]:
        return [m.id for m in await search_before(session, q)]

    return before


async def timed(sessions: async_sessionmaker[AsyncSession], call: Call) -> tuple[float, list[Any]]:
    ms, _, found = await timed_cpu(sessions, call)
    return ms, found


async def timed_cpu(
    sessions: async_sessionmaker[AsyncSession], call: Call
) -> tuple[float, float, list[Any]]:
    """Wall-clock and this process's CPU milliseconds of one call, and what it found."""
    started, cpu = time.perf_counter(), time.process_time()
    async with sessions() as session:
        found = await call(session)
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, found


async def backend_cpu_ms(engine: AsyncEngine) -> float:
    """The CPU time so far of the PostgreSQL backends serving this database (its pool)."""
    async with engine.connect() as conn:
        pids = (
            await conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend'"
            )
        ).scalars()
        total = sum(_cpu_ticks(pid) for pid in pids)
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0  # not on this machine, or gone
    return int(fields[11]) + int(fields[12])  # utime, stime


async def measure(
    title: str,
    kind: str,
    engine: AsyncEngine,
    queries: list[tuple[str, Call]],
    warmup: int,
    wait_load: float | None = None,
    goal: bool = True,
) -> Timing:
    """Each query through the store's code, in turn, after `warmup` unmeasured ones."""
    sessions = session_factory(engine)
    timing = Timing(title, GOAL_MS[kind], goal)
    if wait_load is not None:
        await quiet_machine(wait_load)
    print(
        f"  {title}: {len(queries)} queries from load average {os.getloadavg()[0]:.1f} ...",
        file=sys.stderr,
        flush=True,
    )
    started_load = os.getloadavg()[0]
    for _, call in queries[:warmup]:
        await timed(sessions, call)
    server_before = await backend_cpu_ms(engine) if kind == "postgresql" else None
    for label, call in queries:
        ms, cpu, found = await timed_cpu(sessions, call)
        timing.ms.append(ms)
        timing.cpu.append(cpu)
        timing.rows.append(len(found))
        timing.labels.append(label)
    if server_before is not None:  # the pool's connections stay open between queries
        timing.server_cpu_ms = await backend_cpu_ms(engine) - server_before
    timing.load = (started_load, os.getloadavg()[0])
    return timing


async def same_as_before(
    engine: AsyncEngine, words: list[tuple[str, str]], count: int
) -> tuple[int, Timing | None]:
    """The store's search gives the rows the search before 0012 gave, for `count` words of
    3 characters or more (checked, query by query); and how long those took before."""
    sample = [(k, w) for k, w in words if len(w) >= 3][:count]
    if not sample:
        return 0, None
    sessions = session_factory(engine)
    timing = Timing("name search before 0012 (a sample)", GOAL_MS[engine.dialect.name], False)
    started_load = os.getloadavg()[0]
    for label, q in sample:
        _, now_found = await timed(sessions, search_call(q))
        ms, then_found = await timed(sessions, before_call(q))
        if now_found != then_found:
            raise AssertionError(f"the search of {q!r} answers otherwise than before 0012")
        timing.ms.append(ms)
        timing.rows.append(len(then_found))
        timing.labels.append(f"{label}: {q}")
    timing.load = (started_load, os.getloadavg()[0])
    return len(sample), timing


async def quiet_machine(below: float, patience: float = 900.0) -> None:
    """Wait (at most `patience` s) until the 1-minute load average is below `below`."""
    for _ in range(int(patience // 5)):
        if os.getloadavg()[0] < below:
            return
        await asyncio.sleep(5)


# --- query plans --------------------------------------------------------------------------


class Capture:
    """The statements an engine sends while `on`, with their parameters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.on = False
        self.sent: list[tuple[str, Any]] = []

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _sent(
            conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            if self.on:
                self.sent.append((statement, parameters))

    async def statements(self, engine: AsyncEngine, call: Call) -> list[tuple[str, Any]]:
        self.sent = []
        self.on = True
        try:
            async with session_factory(engine)() as session:
                await call(session)
        finally:
            self.on = False
        return list(self.sent)


def _literal(value: Any) -> str:
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ")
    return "'" + str(value).replace("'", "''") + "'"


async def explain(engine: AsyncEngine, kind: str, statement: str, parameters: Any) -> str:
    async with engine.connect() as conn:
        if kind == "sqlite":
            result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _, detail in (tuple(r) for r in result.all()):
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + str(detail))
            return "\n".join(lines)
        result = await conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
        )
        plan = "\n".join(str(row[0]) for row in result.all())
        await conn.rollback()
        return plan


async def explain_generic(engine: AsyncEngine, statement: str, parameters: Any) -> str:
    """The plan PostgreSQL caches for the prepared statement once it goes generic."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("SET plan_cache_mode = force_generic_plan")
        await raw.execute("PREPARE bench_generic AS " + statement)
        try:
            args = ", ".join(_literal(p) for p in parameters)
            rows = await raw.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE bench_generic({args})"
            )
        finally:
            await raw.execute("DEALLOCATE bench_generic")
            await raw.execute("RESET plan_cache_mode")
        return "\n".join(str(r[0]) for r in rows)


def verdict(kind: str, plan: str) -> str:
    if re.search(r"Seq Scan on (meetings|occurrences)\b", plan) or re.search(
        r"^\s*SCAN (meetings|occurrences)\s*$", plan, re.M
    ):
        return "a sequential scan of a table"
    walk = re.search(r"^\s*SCAN meetings USING (COVERING )?INDEX (\w+)", plan, re.M)
    if walk is None:
        walk = re.search(
            r"Index Scan using (ix_meetings_start) on meetings[^\n]*\n\s+Filter:", plan
        )
    if walk is not None:
        return (
            f"a walk of {walk.group(walk.lastindex or 0)} in sort order, every row filtered "
            "(it stops after a page: fast when many rows match, a whole index when few do)"
        )
    return "index searches only (no scan of a table or of a whole index)"


Plan = tuple[str, str, str, str]  # title, statement, parameters, plan


async def query_plans(database: Database, engine: AsyncEngine, words: dict[str, str]) -> list[Plan]:
    """The plans of each statement of the benchmark's queries, as sent."""
    kind = database.kind
    first = months_of(datetime.fromisoformat(database.meta["now"]))[12]
    low, high = month_grid(first)
    cases: list[tuple[str, Call]] = [
        (
            f"Month view (`calendar_page`, the days {low:%Y-%m-%d} to {high:%Y-%m-%d} and "
            f"the first 25 of {first:%B %Y})",
            month_call(first),
        ),
        (f"Calendar API (`in_range`, {low:%Y-%m-%d} to {high:%Y-%m-%d})", api_call(first)),
    ]
    for what, q in words.items():
        cases.append((f"Name search, {what} (q={q!r})", search_call(q)))
    plans: list[Plan] = []
    capture = Capture(engine)
    for title, call in cases:
        sent = await capture.statements(engine, call)
        for number, (statement, parameters) in enumerate(sent, 1):
            named = f"{title}, statement {number} of {len(sent)}" if len(sent) > 1 else title
            plan = await explain(engine, kind, statement, parameters)
            plans.append((named, statement, repr(parameters), plan))
            if kind == "postgresql" and title.startswith("Name search"):
                generic = await explain_generic(engine, statement, parameters)
                plans.append((named + ", its generic plan", statement, repr(parameters), generic))
    return plans


def plans_markdown(database: Database, plans: list[Plan], when: str) -> list[str]:
    name = "SQLite" if database.kind == "sqlite" else "PostgreSQL"
    how = "EXPLAIN QUERY PLAN" if database.kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS)"
    lines = [
        f"## {name}",
        "",
        f"{how}, {database.meta['meetings']:,} meetings, {when}; machine: {machine()}.",
        "",
    ]
    for title, statement, parameters, plan in plans:
        lines += [f"### {title}", "", f"Reads by {verdict(database.kind, plan)}.", ""]
        lines += ["```sql", _shortened(statement.strip(), 2_000), "```", ""]
        lines += [f"Parameters: `{_shortened(parameters, 600)}`", ""]
        lines += ["```", _shortened_plan(plan), "```", ""]
    return lines


def _shortened(text: str, most: int) -> str:
    """The month view counts each of 42 days in a subquery of its own: the same each time."""
    if len(text) <= most:
        return text
    return f"{text[: most - 400]}\n… ({len(text):,} characters in all) …\n{text[-400:]}"


def _shortened_plan(plan: str, most: int = 70) -> str:
    lines = plan.splitlines()
    if len(lines) <= most:
        return plan
    left = len(lines) - most + 20
    return "\n".join(
        [*lines[: most - 20], f"… ({left} lines: the same plan for the other days) …", *lines[-20:]]
    )


# --- the report ---------------------------------------------------------------------------


def machine() -> str:
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
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.1f}"
    )


async def pg_version() -> str:
    admin = await pg_admin()
    try:
        version: str = await admin.fetchval("SHOW server_version")
    finally:
        await admin.close()
    return version


def print_timing(timing: Timing) -> None:
    rows = sum(timing.rows) / len(timing.rows)
    print(
        f"  {timing.label}: {len(timing.ms)} queries, {rows:,.0f} rows on average, "
        f"load average {timing.load[0]:.1f} to {timing.load[1]:.1f}\n"
        f"    p50 {timing.percentile(50):7.1f} ms   p95 {timing.percentile(95):7.1f} ms   "
        f"p99 {timing.percentile(99):7.1f} ms   max {max(timing.ms):7.1f} ms   "
        f"Goal p95 <= {timing.goal_ms:.0f} ms   goal {'MET' if timing.met else 'MISSED'}"
    )
    if timing.cpu:
        server = ""
        if timing.server_cpu_ms is not None:
            server = f", PostgreSQL's backends {timing.server_cpu_ms / len(timing.ms):.1f} ms"
        print(
            f"    CPU: this process p50 {timing.percentile(50, timing.cpu):.1f} ms, "
            f"p95 {timing.percentile(95, timing.cpu):.1f} ms; mean per query "
            f"{sum(timing.cpu) / len(timing.cpu):.1f} ms{server}"
        )
    for kind, values in sorted(timing.by_kind().items()):
        print(
            f"      {kind:>10}: {len(values):3} queries, p50 {timing.percentile(50, values):7.1f}"
            f" ms, p95 {timing.percentile(95, values):7.1f} ms, max {max(values):7.1f} ms"
        )
    slowest = sorted(zip(timing.ms, timing.labels, strict=True), reverse=True)[:3]
    print("      slowest: " + ", ".join(f"{label} {ms:.0f} ms" for ms, label in slowest))


async def run(kind: str, args: argparse.Namespace, now: datetime, plans_out: list[str]) -> bool:
    """Whether the goals were met."""
    build = sqlite_database if kind == "sqlite" else postgresql_database
    name = "SQLite" if kind == "sqlite" else "PostgreSQL"
    print(f"{name}: building or reusing {args.meetings:,} meetings ...", file=sys.stderr)
    database = await build(args.meetings, args.seed, args.keep, now)
    meta = database.meta
    made = "reused" if database.built_in is None else f"built in {database.built_in:,.0f} s"
    version = sqlite3.sqlite_version if kind == "sqlite" else await pg_version()
    print(
        f"{name} {version} ({database.where}, {made}): {meta['meetings']:,} meetings, "
        f"{meta['occurrences']:,} occurrences, {meta['recurring']:,} repeating, "
        f"{meta['unlisted']:,} unlisted; {meta['checked']} series checked against "
        f"moot.core.recurrence; data around {meta['now'][:16]}"
    )
    engine = create_engine(database.url)
    parts = set(args.parts.split(","))
    met = True
    try:
        rng = random.Random(args.seed + 1)
        around = datetime.fromisoformat(meta["now"])
        corpus = make_corpus(args.seed)
        months = [rng.choice(months_of(around)) for _ in range(args.queries)]
        words = search_words(corpus, rng, args.queries)
        # (title, queries, whether it has a goal)
        work: list[tuple[str, list[tuple[str, Call]], bool]] = []
        if "month" in parts:
            work.append(("month view", [(f"{m:%Y-%m}", month_call(m)) for m in months], True))
        if "api" in parts:
            work.append(
                ("calendar API, 2,000 a page", [(f"{m:%Y-%m}", api_call(m)) for m in months], False)
            )
        if "search" in parts:
            work.append(("name search", [(f"{k}: {w}", search_call(w)) for k, w in words], True))
        for title, queries, goal in work:
            timing = await measure(
                title, kind, engine, queries, args.warmup, args.wait_load, goal=goal
            )
            print_timing(timing)
            met = met and (timing.met or not goal)
        if "before" in parts:
            checked, before = await same_as_before(engine, words, args.before)
            if before is not None:
                print_timing(before)
            print(
                f"  the search returned exactly the rows of the search before 0012 for the "
                f"{checked} words of 3 characters or more compared"
            )
        if "plans" in parts:
            examples = {
                "a rare word": corpus.codenames[len(corpus.codenames) // 2].lower(),
                "a common word": "review",
                "a family name": "weber",
                "a typo": "plaftorm",
                "two letters": "pr",
                "two letters, rare": "zq",
            }
            plans = await query_plans(database, engine, examples)
            when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            plans_out.extend(plans_markdown(database, plans, when))
            for title, _, _, plan in plans:
                print(f"  plan of {title}: {verdict(kind, plan)}")
    finally:
        await engine.dispose()
        if database.cleanup is not None:
            await database.cleanup()
    return met


PLANS_HEADER = """# Query plans of the calendar and the search

Written by `bench/search.py --plans docs/query-plans.md` (docs/benchmarks.md, "Search"):
the plans of the month view (`moot.ems.store.occurrences.calendar_page`, as the calendar
page calls it), of the calendar API's first page (`occurrences.in_range`) and of the name
search (`moot.ems.store.meetings.list_meetings` with `q`) on the benchmark's data, each
statement exactly as it was sent (captured from the engine), with its parameters. A search
on SQLite first counts the candidates of the FTS5 table (or, for 1 or 2 characters, of the
lower(name) and lower(moderator) B-trees), up to 5,000, and then sends the search: two
statements. On PostgreSQL each search is also shown with its generic plan: the plan a
connection's prepared statement is given after five executions when PostgreSQL judges it
no dearer than the custom plans so far, and then keeps.
"""


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    plans: list[str] = []
    met = True
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # of new data
    for kind in kinds:
        met = await run(kind, args, now, plans) and met
    if args.plans:
        text = PLANS_HEADER + "\n" + "\n".join(plans)
        await asyncio.to_thread(Path(args.plans).write_text, text)
        print(f"query plans written to {args.plans}")
    print(f"goals {'MET' if met else 'MISSED'}")
    print(f"machine load average at the end: {os.getloadavg()[0]:.1f}")
    return 0 if met or not args.check else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300, help="of each kind (>= 200)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured queries first")
    parser.add_argument(
        "--before", type=int, default=30, help="words compared with the search before 0012"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--keep", action="store_true", help="keep and reuse the databases")
    parser.add_argument(
        "--parts",
        default="month,api,search,before,plans",
        help="what to run, of month,api,search,before,plans (default: all)",
    )
    parser.add_argument("--plans", help="write the query plans to this Markdown file")
    parser.add_argument(
        "--wait-load",
        type=float,
        help="on a shared machine: before each part, wait (up to 15 min) for the 1-minute "
        "load average to fall below this",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a goal is missed"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
