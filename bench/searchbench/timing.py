"""Measuring: each query in its own session, wall-clock and CPU time, percentiles."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from moot.ems.store.db import session_factory
from searchbench.queries import Call, before_call, search_call

GOAL_MS = {"sqlite": 150.0, "postgresql": 50.0}  # p95 of each query


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
