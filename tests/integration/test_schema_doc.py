"""Every ```sql block of docs/schema.md runs, on SQLite and on PostgreSQL, against a migrated
database holding the generated history of report_history.py; the blocks whose figures that
history fixes give exactly those figures.

A block whose first line is `-- postgresql only` or `-- sqlite only` runs on that database
alone; every other block must run on both. A block is named by its first other comment line
(or by where it is).
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from moot.ems.store.db import create_engine
from tests.integration.report_history import BILLING, write_history

SCHEMA_DOC = Path(__file__).parents[2] / "docs" / "schema.md"
BLOCK = re.compile(r"^```sql\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> list[tuple[str, set[str], str]]:
    """(name, dialects, sql) of every sql block of the document, in order."""
    found = []
    text = SCHEMA_DOC.read_text()
    for match in BLOCK.finditer(text):
        sql = match.group(1).strip()
        comments = [line[2:].strip() for line in sql.splitlines() if line.startswith("--")]
        dialects = {"sqlite", "postgresql"}
        if comments and comments[0].lower() in ("postgresql only", "sqlite only"):
            dialects = {comments.pop(0).split()[0].lower()}
        line = text.count("\n", 0, match.start()) + 1
        name = comments[0] if comments else f"the block at line {line}"
        found.append((name, dialects, sql.rstrip(";")))
    return found


def plain(value: Any) -> Any:
    """One Python value for both databases: dates as text, numbers as float."""
    if isinstance(value, Decimal | float):
        return round(float(value), 2)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# Block name -> its rows (after `plain`), for the blocks the history fixes.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "Billing: participant-minutes per partition and moderator, October 2026": [
        (partition, moderator, meetings, people, minutes)
        for partition, moderator, meetings, people, minutes in BILLING
    ],
    "Meetings that ran in October 2026, by type": [
        ("broadcast", 1, 90.0, 2.0),
        ("collaboration", 3, 90.0, 2.33),  # the running one has no length yet
    ],
    "Logins and distinct users per day, 24 to 26 October 2026 (UTC days)": [
        ("2026-10-24", 4, 3),
        ("2026-10-25", 2, 2),
        ("2026-10-26", 2, 2),
    ],
    "Logins and distinct users per day in Europe/Paris, 24 to 26 October 2026": [
        ("2026-10-24", 3, 2),
        ("2026-10-25", 2, 2),
        ("2026-10-26", 2, 2),
    ],
    "Peak concurrent users per UTC day, 24 to 26 October 2026 (ended stays)": [
        ("2026-10-24", 3),
        ("2026-10-25", 2),
        ("2026-10-26", 1),  # the report says 2: dave's stay in collab3 is still open
    ],
    "Peak usage of each room server in October 2026": [
        ("@evil", 0, 0, 1.0, 1.0, 1),
        ("room1", 5, 50, 99.0, 99.0, 5),
        ("room2", 1, 2, 12.0, 31.0, 2),
    ],
    "Failed sign-ins per address, 24 to 26 October 2026": [
        ("10.0.0.1", 2, 1, "2026-10-24 08:01:00"),
        ("10.0.0.9", 2, 2, "2026-10-25 12:00:00"),
    ],
}


def run_all(
    database_url: str, sqls: list[tuple[str, str]]
) -> dict[str, list[tuple[Any, ...]] | str]:
    """Each block in its own transaction: name -> rows, or the error it raised."""

    async def run() -> dict[str, list[tuple[Any, ...]] | str]:
        engine = create_engine(database_url)
        results: dict[str, list[tuple[Any, ...]] | str] = {}
        try:
            for name, sql in sqls:
                try:
                    async with engine.connect() as conn:
                        result = await conn.exec_driver_sql(sql)
                        results[name] = [tuple(plain(v) for v in row) for row in result.all()]
                except Exception as exc:
                    results[name] = f"{type(exc).__name__}: {exc}"
        finally:
            await engine.dispose()
        return results

    return asyncio.run(run())


def test_every_query_of_the_schema_document_runs(migrated_url: str) -> None:
    write_history(migrated_url)
    dialect = make_url(migrated_url).get_backend_name()
    every = blocks()
    assert len(every) >= 20, "docs/schema.md lost its queries"
    names = [name for name, _, _ in every]
    mine = [(name, sql) for name, dialects, sql in every if dialect in dialects]
    assert len({n for n, _ in mine}) == len(mine), "two sql blocks share their first comment"
    results = run_all(migrated_url, mine)
    failed = {name: r for name, r in results.items() if isinstance(r, str)}
    assert not failed, f"sql blocks of docs/schema.md that fail on {dialect}: {failed}"
    for name, rows in EXPECTED.items():
        if name not in results:
            assert name in names, f"docs/schema.md has no block named {name!r}"
            continue  # a block for the other database
        got = results[name]
        assert isinstance(got, list)
        if name.startswith("Failed sign-ins per address"):
            got = [(*row[:3], str(row[3])[:19].replace("T", " ")) for row in got]
        assert got == rows, name
