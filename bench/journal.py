"""Journal throughput: durable chat events per second through one meeting, and ack latency.

Starts one EMS (`python -m moot serve`, SQLite in a temporary data directory, or the
PostgreSQL database given with `--database-url`) and one room server (`python -m moot
room`), creates a meeting that starts now, and attends it with a few WebSocket clients as
a browser does (`GET /m/{id}?name=...` answers 303 to the room page; its WebSocket is the
same path + `/ws`). Every sender keeps a window of `--window` chat events outstanding
(`{"type": "chat", "id": ..., "text": ...}`) and sends the next as soon as one is
acknowledged; one passive listener only receives. The room server acknowledges an event
only after the EMS stored it in its journal, so an `ack` means "durable". After a warm-up
the acknowledgements of `--duration` seconds are counted, with the latency of each event
from its send to its `ack`.

At the end the senders stop, every outstanding event is waited for, and the journal rows
of the meeting are read back (SQLite: python's sqlite3, read-only; PostgreSQL: asyncpg):
they must be exactly the acknowledged events, and the listener must have seen each once.
The CPU of the EMS, the room server and this client is printed, to show the bottleneck.

Run: `.venv/bin/python bench/journal.py [--senders 4] [--window 4] [--duration 10]`.
PostgreSQL: create a scratch database, pass
`--database-url postgresql+asyncpg://127.0.0.1:5432/<db>`, drop it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import httpx
import psutil
import websockets
from websockets.asyncio.client import ClientConnection

from _common import SECRET, machine
from moot.harness import Cluster, HarnessError, Process, Processes

GOAL_EVENTS = 2_000
GOAL_P99_MS = 20.0
DRAIN_TIMEOUT = 15.0  # the room server gives up on the EMS after 5 s (agent.JOURNAL_TIMEOUT)
TEXT = "a benchmark chat line of about sixty characters, number "


# -- processes -------------------------------------------------------------------------


@dataclass
class Moot:
    ems_url: str
    ems: Process
    room: Process
    database_url: str
    meeting_id: str


def start_moot(procs: Processes, database_url: str | None, log_level: str) -> Moot:
    """EMS plus one room server, and one meeting in progress on it."""
    cluster = Cluster(procs.workdir, database_url, secret=SECRET, log_level=log_level, procs=procs)
    ems = cluster.start_ems()
    ems_url = cluster.ems_url
    # What is measured is the journal, not the rate one person may chat at: lifted before the
    # room server registers (it gets the configuration then).
    httpx.put(
        f"{ems_url}/api/v1/config/cluster",
        json={"based_on": 0, "values": {"max_chat_lines_per_minute": 1_000_000}},
        headers=cluster.admin,
        timeout=10,
    ).raise_for_status()
    room = cluster.start_room("bench-room")
    response = httpx.post(
        f"{ems_url}/api/v1/meetings",
        json={"name": "journal bench", "moderator": "moderator", "expected_participants": 8},
        timeout=10,
    )
    response.raise_for_status()
    return Moot(ems_url, ems, room, cluster.database_url, response.json()["id"])


def socket_url(moot: Moot, name: str) -> str:
    """Attend as `name`: the room page's WebSocket address, with its join token."""
    response = httpx.get(f"{moot.ems_url}/m/{moot.meeting_id}", params={"name": name}, timeout=10)
    location = response.headers.get("location", "")
    if response.status_code != 303 or "/meeting/" not in location:
        raise RuntimeError(f"attend answered {response.status_code}, not a 303 to the room")
    parts = urlsplit(location)
    return f"ws://{parts.netloc}{parts.path}/ws?{parts.query}"


# -- the clients -----------------------------------------------------------------------


class ClientFailed(Exception):
    pass


@dataclass
class Sender:
    name: str
    ws: ClientConnection
    window: asyncio.Semaphore
    sent_at: dict[str, float] = field(default_factory=dict)  # outstanding: id -> send time
    acked: set[str] = field(default_factory=set)
    sent: int = 0


@dataclass
class Run:
    """What every client saw; acks are (ack time, latency) in perf_counter seconds."""

    acks: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    listener_lines: int = 0
    listener_duplicates: int = 0
    sending: bool = True
    # Set on every ack and every line the listener sees, to wait for the last ones.
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, done: Callable[[], bool], within: float) -> None:
        """Wait until done(), for at most `within` seconds, waking on progress."""
        deadline = time.monotonic() + within
        while not done() and (left := deadline - time.monotonic()) > 0:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), left)


async def connect(url: str) -> ClientConnection:
    """As a browser does; websockets offers permessage-deflate, as browsers do."""
    return await websockets.connect(url, max_size=2**24, open_timeout=10)


async def welcome_of(ws: ClientConnection) -> None:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == "welcome":
            return
        if message["type"] == "error":
            raise ClientFailed(f"the room server refused a client: {message['message']}")


async def send_loop(sender: Sender, run: Run) -> None:
    for n in itertools.count():
        await sender.window.acquire()
        if not run.sending:
            sender.window.release()
            return
        event_id = f"{sender.name}-{n}"
        sender.sent_at[event_id] = time.perf_counter()
        sender.sent += 1
        await sender.ws.send(f'{{"type":"chat","id":"{event_id}","text":"{TEXT}{n}"}}')


# What a page gets besides chat lines and acks, not measured here: the roster, and each
# meeting tool's state after the welcome.
PASSING = frozenset({"roster", "tool_state", "media_state"})


async def receive_loop(sender: Sender, run: Run) -> None:
    """Acks of this sender's events; chat lines (everyone's) are skipped unparsed."""
    async for raw in sender.ws:
        if isinstance(raw, bytes):
            run.errors.append(f"{sender.name}: unexpected binary message")
            continue
        if raw.startswith('{"type":"chat"'):
            continue
        message = json.loads(raw)
        if message["type"] == "ack":
            now = time.perf_counter()
            started = sender.sent_at.pop(message["id"], None)
            if started is None:
                run.errors.append(f"{sender.name}: unexpected ack {message['id']}")
                continue
            sender.acked.add(message["id"])
            run.acks.append((now, now - started))
            sender.window.release()
            run.progress.set()
        elif message["type"] not in PASSING:
            run.errors.append(f"{sender.name}: unexpected {raw[:200]!r}")


async def listen_loop(ws: ClientConnection, run: Run) -> None:
    seen: set[str] = set()
    async for raw in ws:
        message = json.loads(raw)
        if message["type"] == "chat":
            key = f"{message['sender']}/{message['id']}"
            if key in seen:
                run.listener_duplicates += 1
            seen.add(key)
            run.listener_lines += 1
            run.progress.set()
        elif message["type"] not in PASSING:
            run.errors.append(f"listener: unexpected {raw[:200]!r}")


# -- measuring -------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


@dataclass
class Result:
    events: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu: dict[str, float]  # cores used during the measured window, per process
    machine_cpu: float  # per cent of all cores busy, the whole machine
    acked_total: int = 0
    stored: int = 0
    missing: int = 0  # acknowledged, not in the journal
    extra: int = 0  # in the journal, never acknowledged
    unacked: int = 0  # sent, no ack by the end
    listener_lines: int = 0
    listener_duplicates: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def consistent(self) -> bool:
        return (
            not self.errors
            and self.missing == self.extra == self.unacked == self.listener_duplicates == 0
            and self.stored == self.acked_total == self.listener_lines
        )

    def meets_goal(self) -> bool:
        return self.rate >= GOAL_EVENTS and self.p99_ms <= GOAL_P99_MS and self.consistent()

    def line(self) -> str:
        return (
            f"{self.rate:8,.0f} events/s   p50 {self.p50_ms:6.2f} ms   p90 {self.p90_ms:6.2f} ms"
            f"   p99 {self.p99_ms:6.2f} ms   max {self.max_ms:6.2f} ms"
            f"   ({self.events:,} acks in {self.seconds:.1f} s)"
        )

    def cpu_line(self) -> str:
        parts = ", ".join(f"{name} {used:.0%}" for name, used in self.cpu.items())
        # Busy cores of the whole machine, less this benchmark's processes: other work.
        others = max(0.0, self.machine_cpu / 100 * (os.cpu_count() or 1) - sum(self.cpu.values()))
        return f"CPU (of one core): {parts}; other processes on the machine {others:.0%}"


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def drive(moot: Moot, args: argparse.Namespace) -> tuple[Result, list[Sender]]:
    run = Run()
    senders: list[Sender] = []
    tasks: list[asyncio.Task[None]] = []
    listener: ClientConnection | None = None
    try:
        for i in range(args.senders):
            ws = await connect(await asyncio.to_thread(socket_url, moot, f"sender{i + 1}"))
            senders.append(Sender(f"sender{i + 1}", ws, asyncio.Semaphore(args.window)))
            await welcome_of(ws)
        if args.listener:
            listener = await connect(await asyncio.to_thread(socket_url, moot, "listener"))
            await welcome_of(listener)
            tasks.append(asyncio.create_task(listen_loop(listener, run)))
        for sender in senders:
            tasks.append(asyncio.create_task(receive_loop(sender, run)))
            tasks.append(asyncio.create_task(send_loop(sender, run)))

        processes = {
            "EMS": psutil.Process(moot.ems.popen.pid),
            "room server": psutil.Process(moot.room.popen.pid),
            "client": psutil.Process(),
        }

        async def watch(seconds: float) -> None:
            """Sleep, but fail early when a client task dies."""
            deadline = time.perf_counter() + seconds
            while (left := deadline - time.perf_counter()) > 0:
                done = [t for t in tasks if t.done()]
                if done:
                    error = done[0].exception()
                    raise ClientFailed(f"a client stopped: {error!r}")
                await asyncio.sleep(min(left, 0.2))

        print(f"  warm-up {args.warmup:g} s ...", flush=True)
        await watch(args.warmup)
        print(f"  measuring {args.duration:g} s ...", flush=True)
        before = {name: cpu_seconds(p) for name, p in processes.items()}
        psutil.cpu_percent(None)
        start = time.perf_counter()
        await watch(args.duration)
        end = time.perf_counter()
        machine_cpu = psutil.cpu_percent(None)
        cpu = {
            name: (cpu_seconds(p) - before[name]) / (end - start) for name, p in processes.items()
        }

        # Stop sending; wait for every outstanding event (or its timeout).
        run.sending = False
        for sender in senders:
            sender.window.release()  # wakes a sender waiting for a slot
        await run.until(lambda: not any(s.sent_at for s in senders), DRAIN_TIMEOUT)
        acked_total = sum(len(s.acked) for s in senders)
        if listener is not None:  # its last lines may still be on their way
            await run.until(lambda: run.listener_lines >= acked_total, 5.0)
            await asyncio.sleep(0.2)  # a line shown twice would come now
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ws in [*(s.ws for s in senders), *([listener] if listener else [])]:
            await ws.close()

    window = sorted(lat for at, lat in run.acks if start <= at < end)
    result = Result(
        events=len(window),
        seconds=end - start,
        p50_ms=percentile(window, 50) * 1e3,
        p90_ms=percentile(window, 90) * 1e3,
        p99_ms=percentile(window, 99) * 1e3,
        max_ms=(window[-1] if window else float("nan")) * 1e3,
        cpu=cpu,
        machine_cpu=machine_cpu,
        acked_total=acked_total,
        unacked=sum(len(s.sent_at) for s in senders),
        listener_lines=run.listener_lines if listener is not None else acked_total,
        listener_duplicates=run.listener_duplicates,
        errors=run.errors,
    )
    return result, senders


# -- checking the journal --------------------------------------------------------------


def stored_events(database_url: str, meeting_id: str) -> set[tuple[str, str]]:
    """(sender, event_id) of every journal row of the meeting, read without writing."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT sender, event_id FROM journal WHERE meeting_id = ?", (meeting_id,)
            ).fetchall()
        finally:
            db.close()
        return {(sender, event_id) for sender, event_id in rows}

    import asyncpg  # type: ignore[import-untyped]

    async def read() -> set[tuple[str, str]]:
        dsn = "postgresql://" + database_url.split("://", 1)[1]
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT sender, event_id FROM journal WHERE meeting_id = $1", meeting_id
            )
        finally:
            await conn.close()
        return {(row["sender"], row["event_id"]) for row in rows}

    return asyncio.run(read())


def check_journal(moot: Moot, result: Result, senders: list[Sender]) -> None:
    stored = stored_events(moot.database_url, moot.meeting_id)
    acked = {(s.name, event_id) for s in senders for event_id in s.acked}
    result.stored = len(stored)
    result.missing = len(acked - stored)
    result.extra = len(stored - acked)


# -- main ------------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def report(result: Result, database: str) -> list[str]:
    """Prints the result; returns the reasons the goal was missed."""
    print()
    print(f"journal on {database}: {result.line()}")
    print(f"  {result.cpu_line()}")
    print(
        f"  acknowledged {result.acked_total:,} events in all; the journal holds "
        f"{result.stored:,} rows for the meeting ({result.missing} acknowledged but missing, "
        f"{result.extra} stored but never acknowledged); {result.unacked} never acknowledged; "
        f"the listener saw {result.listener_lines:,} lines ({result.listener_duplicates} twice)"
    )
    for error in result.errors[:10]:
        print(f"  !! {error}")
    print(f"Goal >= {GOAL_EVENTS:,} events/s with p99 <= {GOAL_P99_MS:g} ms")
    misses = []
    if result.rate < GOAL_EVENTS:
        misses.append(f"throughput {result.rate:,.0f}/s < {GOAL_EVENTS:,}/s")
    if not result.p99_ms <= GOAL_P99_MS:
        misses.append(f"p99 {result.p99_ms:.1f} ms > {GOAL_P99_MS:g} ms")
    if not result.consistent():
        misses.append("the journal or the listener does not match the acknowledged events")
    print("goal MET" if not misses else "goal MISSED: " + "; ".join(misses))
    return misses


def run(args: argparse.Namespace) -> int:
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"machine: {machine()}")
    print(
        f"clients: {args.senders} sender(s), each with {args.window} event(s) outstanding"
        f"{', 1 passive listener' if args.listener else ''}; one meeting; "
        f"{args.warmup:g} s warm-up then {args.duration:g} s; database {database}"
    )
    with tempfile.TemporaryDirectory(prefix="moot-bench-") as tmp:
        procs = Processes(Path(tmp))
        try:
            moot = start_moot(procs, args.database_url, args.log_level)
            print(
                f"EMS pid {moot.ems.popen.pid}, room server pid {moot.room.popen.pid}, "
                f"meeting {moot.meeting_id}",
                flush=True,
            )
            result, senders = asyncio.run(drive(moot, args))
            check_journal(moot, result, senders)
        except (
            RuntimeError,
            HarnessError,
            ClientFailed,
            httpx.HTTPError,
            OSError,
            websockets.WebSocketException,
            sqlite3.Error,
        ) as exc:
            print(f"error: {exc}", file=sys.stderr)
            quiet = isinstance(exc, RuntimeError | HarnessError)  # the logs are in the message
            for child in procs.children if not quiet else []:
                tail = "\n".join(child.output().splitlines()[-20:])
                if tail:
                    print(f"--- last lines of the {child.name}'s log:\n{tail}", file=sys.stderr)
            return 2
        finally:
            procs.stop_all()
    misses = report(result, database)
    return 1 if misses and args.check else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=4, help="WebSocket clients that chat")
    parser.add_argument(
        "--window", type=int, default=4, help="events each sender keeps outstanding"
    )
    parser.add_argument(
        "--no-listener", dest="listener", action="store_false", help="no passive listener"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up")
    parser.add_argument(
        "--database-url",
        help="the EMS's database, e.g. postgresql+asyncpg://127.0.0.1:5432/<db> (default: "
        "SQLite in a temporary directory)",
    )
    parser.add_argument("--log-level", default="warning", help="of every server process")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when the goal is missed"
    )
    args = parser.parse_args()
    if args.senders < 1 or args.window < 1:
        parser.error("--senders and --window must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; every process the benchmark started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
