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

The parts live in `bench/searchbench/`, one idea each: `names` (the words meetings are named
with), `data` (the meetings and occurrences), `store` (building, keeping and checking the
databases), `queries` (the calls timed), `timing` (measuring), `plans` (query plans).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from _common import machine
from moot.ems.store.db import create_engine
from searchbench.data import SEED
from searchbench.names import make_corpus
from searchbench.plans import PLANS_HEADER, plans_markdown, query_plans, verdict
from searchbench.queries import Call, api_call, month_call, months_of, search_call, search_words
from searchbench.store import pg_admin, postgresql_database, sqlite_database
from searchbench.timing import Timing, measure, same_as_before

# --- the report ---------------------------------------------------------------------------


def this_machine() -> str:
    return machine(f"SQLite {sqlite3.sqlite_version}", f"load average {os.getloadavg()[0]:.1f}")


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
            plans_out.extend(plans_markdown(database, plans, when, this_machine()))
            for title, _, _, plan in plans:
                print(f"  plan of {title}: {verdict(kind, plan)}")
    finally:
        await engine.dispose()
        if database.cleanup is not None:
            await database.cleanup()
    return met


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {this_machine()}")
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
