"""The query plans of every statement the benchmark sends, as sent, in Markdown."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    event,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
)

from moot.ems.store.db import session_factory
from searchbench.queries import Call, api_call, month_call, month_grid, months_of, search_call
from searchbench.store import Database

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


def plans_markdown(database: Database, plans: list[Plan], when: str, machine: str) -> list[str]:
    name = "SQLite" if database.kind == "sqlite" else "PostgreSQL"
    how = "EXPLAIN QUERY PLAN" if database.kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS)"
    lines = [
        f"## {name}",
        "",
        f"{how}, {database.meta['meetings']:,} meetings, {when}; machine: {machine}.",
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
