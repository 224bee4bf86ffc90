"""What the benchmarks share: a cluster of real processes (moot.harness), a small HTTP/1.1
client, CPU and event-loop lag meters, percentiles, the machine they ran on, the options
every benchmark takes, and a figure printed beside its goal.

A benchmark is run as a script (`.venv/bin/python bench/NAME.py`), so this directory is
first on its import path: `from _common import ...` needs nothing more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path

from moot.harness import Cluster, HarnessError, Processes

__all__ = ["Cluster", "HarnessError", "Processes"]  # the harness, as the benchmarks use it

HOST = "127.0.0.1"
SECRET = "bench-cluster-secret"
ADMIN = {"Authorization": f"Bearer {SECRET}"}  # the administrator, as the CLI


# -- processes ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    """CPU time of this process's children that have ended (wrk, say)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def raise_open_files(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def start_cluster(
    procs: Processes, log_level: str, rooms: int, database_url: str | None = None
) -> Cluster:
    """An EMS (on SQLite in the working directory unless `database_url`) and `rooms` room
    servers room1, room2, ... logging at `log_level`; all of them `procs`' children."""
    cluster = Cluster(procs.workdir, database_url, secret=SECRET, log_level=log_level, procs=procs)
    # INFO: the EMS logs how long moving a failed server's meetings took.
    cluster.start_ems(MOOT_LOG_LEVEL="info")
    cluster.start_rooms(*(f"room{index}" for index in range(1, rooms + 1)))
    return cluster


# -- a small HTTP/1.1 client -----------------------------------------------------------


class Http:
    """One keep-alive connection, one request at a time: what one browser tab holds.

    Written out here because the rejoin storm must not make this process the bottleneck:
    a request costs a few tens of microseconds of this process's CPU.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None and self._writer is not None
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            )
            try:
                self._writer.write(head.encode() + body)
                raw = await self._reader.readuntil(b"\r\n\r\n")
                lines = raw.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                answer = {}
                for line in lines[1:]:
                    if line:
                        key, _, value = line.partition(":")
                        answer[key.strip().lower()] = value.strip()
                if "content-length" not in answer:
                    raise RuntimeError(f"{method} {path}: an answer without Content-Length")
                data = await self._reader.readexactly(int(answer["content-length"]))
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                self.close()
                if fresh or attempt == 2:  # a kept-alive connection may have timed out
                    raise
                continue
            if answer.get("connection", "").lower() == "close":
                self.close()
            return status, answer, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class HttpPool:
    """A few connections shared by concurrent requests, one request per connection."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self._all = [Http(host, port) for _ in range(size)]
        self._free: asyncio.Queue[Http] = asyncio.Queue()
        for http in self._all:
            self._free.put_nowait(http)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        http = await self._free.get()
        try:
            return await http.request(method, path, body, headers)
        finally:
            self._free.put_nowait(http)

    def close(self) -> None:
        for http in self._all:
            http.close()


class LoopLag:
    """How late this process's event loop wakes up: it shows a saturated load generator."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, time.monotonic() - before - self.period)

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.worst


# -- figures ---------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value below which p % of the sample lies)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine(*extra: str) -> str:
    """Cores, CPU model and Python version, then `extra` (a database's version, say)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = f"Python {platform.python_version()} ({platform.python_implementation()})"
    return ", ".join([f"{os.cpu_count()} cores", model, python, *extra])


def load_average() -> str:
    """The machine's load averages over 1, 5 and 15 minutes."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def beside_goal(label: str, figure: str, goal: str, met: bool) -> str:
    """One line of a benchmark's result: what it measured, beside its goal."""
    return f"{label}: {figure}   goal {goal}: {verdict(met)}"


def parser(
    doc: str | None, *, check: bool = True, verbose: bool = False
) -> argparse.ArgumentParser:
    """A benchmark's options, described by the first line of its docstring, with the ones
    every benchmark has: --check (status 1 when a goal is missed), --verbose (logs on an
    error)."""
    made = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    if check:
        made.add_argument(
            "--check", action="store_true", help="exit with status 1 when a goal is missed"
        )
    if verbose:
        made.add_argument("--verbose", action="store_true", help="on an error, show the logs")
    return made


def exit_code(met: bool, check: bool) -> int:
    """0, or 1 when a goal was missed and --check asked for it."""
    return 0 if met or not check else 1


def code_version() -> str:
    """Which moot the processes run: its path, and the commit of its tree if it is one."""
    import moot

    where = Path(moot.__file__).parent
    git = ["git", "-C", str(where)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"{where} (not a git tree)"
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True
    ).stdout.strip()
    return f"{where} (commit {head.stdout.strip()}{', with uncommitted changes' if dirty else ''})"


def failed(exc: BaseException, procs: Processes, *, verbose: bool, what: str = "") -> int:
    """A benchmark that could not finish: say why (with the processes' last lines when
    `verbose`); the exit status 2."""
    if verbose:
        traceback.print_exc()
        for child in procs.children:
            print(f"--- {child.name} (last lines)\n{child.output()[-2000:]}")
    print(f"error{f' in {what}' if what else ''}: {exc!r}", file=sys.stderr)
    return 2
