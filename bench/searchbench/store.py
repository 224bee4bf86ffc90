"""The benchmark's databases: built through the real schema and bulk inserts (SQLite
and PostgreSQL), kept and reused with --keep, checked (SQLite's FTS triggers)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from moot.ems.store.migrate import upgrade_async
from searchbench.data import (
    DATA_VERSION,
    MEETING_COLUMNS,
    OCCURRENCE_COLUMNS,
    Counts,
    _sqlite_meeting,
    _sqlite_time,
    generate,
)

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_DATABASE = "moot_bench_search"
CACHE_DIR = Path(tempfile.gettempdir()) / "moot-bench-search"
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
