"""The room server under load: one meeting of 500, 50 meetings of 100, a join storm.

Starts an EMS (`python -m moot serve`, SQLite in a temporary directory) and room servers
(`python -m moot room`) as processes, and simulated meeting pages in other processes
(multiprocessing; asyncio and websockets in each). Every page does what the bundled page
does: it attends through the EMS (`GET /m/{id}?name=...`, a 303 to its room server),
loads the meeting page from the room server, opens the WebSocket with `roster=changes`,
waits for `welcome`, then reads everything and sends `ping` every second. A chat line
carries its sender's clock (CLOCK_MONOTONIC, the same in every process of the machine),
so every page measures each line's delay from its sending to its arrival there: the
journal's round trip to the EMS, then the fan-out.

Scenarios (`--scenario`):

- `one`: one meeting of 500 (two room servers), joining evenly within 10 s while 20 of
  them send a line a second each (20 lines/s), for 30 s. Goals: every acknowledged line
  reaches every page (live, or in the `welcome` of a page that joined after it); from
  sending to each page p99 <= 100 ms; no room server marked suspect or failed.
- `many`: one room server, 50 meetings of 100 (5,000 pages) joining within 50 s, then a
  line a second in each meeting for 30 s. Goal: p99 <= 200 ms; its memory (RSS) shown.
- `storm`: 1,000 people attending 10 meetings of 100 (two room servers) through the EMS,
  evenly within 10 s. Goals: all 1,000 in; p99 from arriving to `welcome` <= 1 s (each
  loads the page and opens the socket, as a browser does); no server suspect or failed.
- `ceiling`: `one` with more people each time (500, 750, 1,000, 1,500, 2,000, ...)
  joining at the same 50 a second, until a goal is missed.
- `all` (the default): one, many, storm.

The clients share the machine with the servers: their CPU and how late their event loops
ran are printed, so a saturated load generator is seen.

Run: `.venv/bin/python bench/room.py [--scenario one|many|storm|ceiling|all] [--check]`;
`--database-url` puts the EMS's store in an empty PostgreSQL database (one scenario a run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psutil
import websockets
from websockets.exceptions import ConnectionClosed

from _common import (
    ADMIN,
    HOST,
    Cluster,
    HarnessError,
    HttpPool,
    LoopLag,
    Processes,
    code_version,
    cpu_seconds,
    failed,
    machine,
    own_cpu_seconds,
    pct,
    raise_open_files,
    start_cluster,
    verdict,
)

GOAL_ONE_P99_S = 0.100
GOAL_MANY_P99_S = 0.200
GOAL_STORM_P99_S = 1.0
# Pages load the meeting page and open their socket through a few keep-alive
# connections per process, as browsers of one office behind a proxy would.
HTTP_CONNECTIONS = 16
NOT_PARSED = ('{"type":"pong"', '{"type":"joined"', '{"type":"left"')


# -- one process of simulated pages ----------------------------------------------------


@dataclass
class PagePlan:
    meeting_id: str
    user: str
    arrive: float  # seconds after the start
    sends: bool = False  # sends a line every `line_every` seconds


@dataclass
class Job:
    ems_port: int
    pages: list[PagePlan]
    start: float = 0.0  # CLOCK_MONOTONIC, set once every process is ready
    chat_from: float = 0.0  # seconds after the start
    chat_until: float = 0.0
    line_every: float = 1.0
    ping_every: float = 1.0
    end: float = 0.0  # seconds after the start: every page closes


@dataclass
class PageResult:
    meeting_id: str
    user: str
    join_s: float | None = None  # from arriving to `welcome`
    attend_s: float | None = None  # of which the EMS's answer to attend
    page_s: float | None = None  # and the room server's meeting page
    error: str = ""  # why it never got in
    have: set[str] = field(default_factory=set)  # line ids: in `welcome` or live
    duplicates: int = 0
    acked: list[str] = field(default_factory=list)
    unacked: int = 0
    lost: str = ""  # how it lost its socket before the end, if it did
    dropped: int = 0  # closed by the room server for falling behind (4408)
    received: int = 0  # messages of any kind, `welcome` included


@dataclass
class WorkerResult:
    pages: list[PageResult]
    delays: list[tuple[float, float]]  # each live line at each page: (sent, delay) in s
    arrivals: dict[str, list[float]]  # line id: when it arrived at each page (monotonic)
    ack_delays: list[float]
    cpu: float  # seconds of CPU this process used from the start to the end
    lag: float  # how late its event loop ran at worst (s)


def worker_main(pipe: Pipe) -> None:
    """A process of simulated pages: says ready, takes its job, sends back the results."""
    # No collector pauses in the measurement (a run is short; what it keeps is small).
    gc.disable()
    pipe.send("ready")
    job: Job = pipe.recv()
    pipe.send(asyncio.run(run_job(job)))


async def run_job(job: Job) -> WorkerResult:
    ems = HttpPool(HOST, job.ems_port, HTTP_CONNECTIONS)
    rooms: dict[str, HttpPool] = {}
    delays: list[tuple[float, float]] = []
    arrivals: dict[str, list[float]] = defaultdict(list)
    ack_delays: list[float] = []
    results = [PageResult(p.meeting_id, p.user) for p in job.pages]
    await asyncio.sleep(max(0.0, job.start - time.monotonic()))
    lag = LoopLag()
    lag.start()
    cpu = own_cpu_seconds()
    try:
        await asyncio.gather(
            *(
                run_page(plan, out, job, ems, rooms, delays, arrivals, ack_delays)
                for plan, out in zip(job.pages, results, strict=True)
            )
        )
    finally:
        ems.close()
        for pool in rooms.values():
            pool.close()
    return WorkerResult(
        results, delays, dict(arrivals), ack_delays, own_cpu_seconds() - cpu, await lag.stop()
    )


async def run_page(
    plan: PagePlan,
    out: PageResult,
    job: Job,
    ems: HttpPool,
    rooms: dict[str, HttpPool],
    delays: list[tuple[float, float]],
    arrivals: dict[str, list[float]],
    ack_delays: list[float],
) -> None:
    await asyncio.sleep(max(0.0, job.start + plan.arrive - time.monotonic()))
    arrived = time.monotonic()
    try:
        status, headers, _ = await ems.request(
            "GET", f"/m/{plan.meeting_id}?name={quote(plan.user)}"
        )
        location = headers.get("location", "")
        if status != 303 or "token=" not in location:
            raise RuntimeError(f"attend answered {status}")
        out.attend_s = time.monotonic() - arrived
        page = urlsplit(location)
        host, _, port = page.netloc.partition(":")
        pool = rooms.setdefault(page.netloc, HttpPool(host, int(port), HTTP_CONNECTIONS))
        status, _, _ = await pool.request("GET", f"{page.path}?{page.query}")
        if status != 200:
            raise RuntimeError(f"the meeting page answered {status}")
        out.page_s = time.monotonic() - arrived - out.attend_s
        url = f"ws://{page.netloc}{page.path}/ws?{page.query}&roster=changes"
        ws = await websockets.connect(
            url, open_timeout=30, ping_interval=None, compression=None, max_size=None
        )
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {welcome}")
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:200]
        return
    out.join_s = time.monotonic() - arrived
    out.received = 1
    out.have.update(line["id"] for line in welcome["history"])
    sent: dict[str, float] = {}

    async def ping() -> None:
        await asyncio.sleep(random.uniform(0, job.ping_every))
        while True:
            await ws.send('{"type":"ping"}')
            await asyncio.sleep(job.ping_every)

    async def chat() -> None:
        begin = max(time.monotonic(), job.start + job.chat_from)
        await asyncio.sleep(begin - time.monotonic() + random.uniform(0, job.line_every))
        number = 0
        while time.monotonic() < job.start + job.chat_until:
            number += 1
            line_id = f"{plan.user}-{number}"
            sent[line_id] = now = time.monotonic()
            await ws.send(json.dumps({"type": "chat", "id": line_id, "text": f"t {now:.6f}"}))
            await asyncio.sleep(job.line_every)

    async def close_at_end() -> None:
        await asyncio.sleep(max(0.0, job.start + job.end - time.monotonic()))
        await ws.close()

    helpers = [asyncio.create_task(ping()), asyncio.create_task(close_at_end())]
    if plan.sends:
        helpers.append(asyncio.create_task(chat()))
    try:
        async for raw in ws:
            now = time.monotonic()
            out.received += 1
            if isinstance(raw, str) and raw.startswith(NOT_PARSED):
                continue  # pongs and roster changes: counted, not read (this process's CPU)
            message = json.loads(raw)
            kind = message["type"]
            if kind == "chat":
                if message["id"] in out.have:
                    out.duplicates += 1
                    continue
                out.have.add(message["id"])
                at = float(message["text"].split()[1])
                delays.append((at - job.start, now - at))
                arrivals[message["id"]].append(now)
            elif kind == "ack":
                sent_at = sent.pop(message["id"], None)
                if sent_at is not None:
                    out.acked.append(message["id"])
                    ack_delays.append(now - sent_at)
            elif kind in ("ended", "moved"):
                out.lost = kind
    except ConnectionClosed:
        pass
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    code = ws.close_code
    if time.monotonic() < job.start + job.end - 0.05 and not out.lost:
        out.lost = f"closed {code}"
    out.dropped = int(code == 4408)
    out.unacked = len(sent)


# -- the coordinator -------------------------------------------------------------------


def histogram(url: str, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram at url/metrics; (0, 0) if not there."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0, 0.0
    values = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for key in values:
            if line.startswith(f"{name}_{key} ") or line.startswith(f"{name}_{key}{{"):
                values[key] += float(line.rsplit(" ", 1)[1])
    return values["sum"], values["count"]


def mean_between(before: tuple[float, float], after: tuple[float, float]) -> float:
    count = after[1] - before[1]
    return (after[0] - before[0]) / count if count else math.nan


@dataclass
class Watch:
    """What the coordinator sees of the servers meanwhile."""

    states: Counter[str] = field(default_factory=Counter)  # (server status) seen in polls
    not_online: list[str] = field(default_factory=list)
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0


@dataclass
class Outcome:
    people: int
    pages: list[PageResult]
    delays: list[tuple[float, float]]  # (sent, delay), seconds from the start
    spreads: list[float]  # each live arrival after the first arrival of that line
    ack_delays: list[float]
    lines_acked: int
    join_seconds: float
    missing: int  # (page, acknowledged line) pairs the page never had
    duplicates: int
    events: list[str]  # suspect / failed changes of the room servers during the run
    watch: Watch
    cpu: dict[str, float]  # cores, over the run
    generator_lag: float
    room_log_drops: int
    window: float
    means: dict[str, float]  # from the servers' own metrics, over the run

    @property
    def joined(self) -> list[PageResult]:
        return [p for p in self.pages if p.join_s is not None]

    @property
    def lost(self) -> list[PageResult]:
        return [p for p in self.pages if p.lost]

    @property
    def join_times(self) -> list[float]:
        return [p.join_s for p in self.pages if p.join_s is not None]


def spread(count: int, seconds: float) -> Iterator[float]:
    """Arrival offsets for `count` pages evenly within `seconds`."""
    for index in range(count):
        yield seconds * index / max(1, count)


def create_meetings(cluster: Cluster, count: int, expected: int) -> list[dict[str, Any]]:
    meetings = []
    with httpx.Client(base_url=cluster.ems_url, headers=ADMIN, timeout=30) as client:
        for index in range(count):
            answer = client.post(
                "/api/v1/meetings",
                json={
                    "name": f"load {index}",
                    "moderator": "host",
                    "expected_participants": expected,
                },
            )
            if answer.status_code != 201:
                raise RuntimeError(f"creating a meeting answered {answer.status_code}")
            meetings.append(answer.json())
    return meetings


def run_pages(
    cluster: Cluster,
    plans: list[PagePlan],
    job: Job,
    workers: int,
    rooms: list[str],
    join_seconds: float,
) -> Outcome:
    """Run the pages in `workers` processes; watch the servers meanwhile."""
    context = multiprocessing.get_context("spawn")
    pipes: list[Pipe] = []
    processes = []
    for _ in range(workers):
        ours, theirs = context.Pipe()
        process = context.Process(target=worker_main, args=(theirs,), daemon=True)
        process.start()
        pipes.append(ours)
        processes.append(process)
    try:
        for pipe in pipes:
            if not pipe.poll(60) or pipe.recv() != "ready":
                raise RuntimeError("a load generator process did not start")
        watched = {"EMS": cluster.ems.popen.pid} | {
            name: cluster.rooms[name].popen.pid for name in rooms
        }
        room_process = psutil.Process(cluster.rooms[rooms[0]].popen.pid)
        watch = Watch(rss_start=room_process.memory_info().rss)
        cpu_before = {k: cpu_seconds(pid) for k, pid in watched.items()}
        room_url = next(s["url"] for s in cluster.servers() if s["name"] == rooms[0])
        meters = {
            "EMS journal batch": (cluster.ems_url, "moot_journal_batch_seconds"),
            f"{rooms[0]} journal round trip": (room_url, "moot_room_journal_seconds"),
        }
        meters_before = {k: histogram(*v) for k, v in meters.items()}
        wall_start = time.time()
        job.start = time.monotonic() + 1.0
        for index, pipe in enumerate(pipes):
            pipe.send(
                Job(
                    ems_port=job.ems_port,
                    pages=plans[index::workers],
                    start=job.start,
                    chat_from=job.chat_from,
                    chat_until=job.chat_until,
                    line_every=job.line_every,
                    ping_every=job.ping_every,
                    end=job.end,
                )
            )
        results: list[WorkerResult | None] = [None] * workers
        deadline = job.start + job.end + 120
        meters_joined: dict[str, tuple[float, float]] = {}
        while any(r is None for r in results):
            if not meters_joined and time.monotonic() >= job.start + join_seconds:
                meters_joined = {k: histogram(*v) for k, v in meters.items()}
            if time.monotonic() > deadline:
                raise RuntimeError("the load generators did not finish in time")
            for index, pipe in enumerate(pipes):
                if results[index] is None and pipe.poll():
                    results[index] = pipe.recv()
            rss = room_process.memory_info().rss
            watch.rss_peak = max(watch.rss_peak, rss)
            watch.rss_end = rss
            try:
                for server in cluster.servers():
                    if server["name"] in rooms:
                        watch.states[server["status"]] += 1
                        if server["status"] != "online":
                            watch.not_online.append(f"{server['name']} {server['status']}")
            except httpx.HTTPError as exc:
                watch.not_online.append(f"the EMS did not answer: {exc}")
            time.sleep(0.5)
        window = time.monotonic() - job.start
        meters_joined = meters_joined or meters_before
        means = {}
        for key, meter in meters.items():
            means[f"{key} while joining"] = mean_between(meters_before[key], meters_joined[key])
            means[f"{key} after"] = mean_between(meters_joined[key], histogram(*meter))
        cpu = {k: (cpu_seconds(pid) - cpu_before[k]) / window for k, pid in watched.items()}
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    done = [r for r in results if r is not None]
    cpu["load generators"] = sum(r.cpu for r in done) / window
    pages = [p for r in done for p in r.pages]
    acked: dict[str, set[str]] = defaultdict(set)
    for page in pages:
        acked[page.meeting_id].update(page.acked)
    missing = sum(
        len(acked[p.meeting_id] - p.have) for p in pages if p.join_s is not None and not p.lost
    )
    events = [
        f"{name} {state} ({why})"
        for name in rooms
        for at, state, why in cluster.events(name)
        if at >= wall_start and state in ("suspect", "failed")
    ]
    drops = sum(cluster.rooms[n].output().count("too far behind") for n in rooms)
    arrivals: dict[str, list[float]] = defaultdict(list)
    for r in done:
        for line_id, times in r.arrivals.items():
            arrivals[line_id] += times
    spreads = [t - min(times) for times in arrivals.values() for t in times]
    return Outcome(
        people=len(plans),
        pages=pages,
        delays=[d for r in done for d in r.delays],
        spreads=spreads,
        ack_delays=[d for r in done for d in r.ack_delays],
        lines_acked=sum(len(v) for v in acked.values()),
        join_seconds=join_seconds,
        missing=missing,
        duplicates=sum(p.duplicates for p in pages),
        events=events,
        watch=watch,
        cpu=cpu,
        generator_lag=max(r.lag for r in done),
        room_log_drops=drops,
        window=window,
        means=means,
    )


# -- figures ---------------------------------------------------------------------------


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1000:.0f} ms"


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def common_lines(o: Outcome, goal_p99: float | None) -> tuple[list[str], bool]:
    """The lines every scenario prints; whether its shared goals were met."""
    joined = o.joined
    errors = Counter(p.error for p in o.pages if p.error)
    lost = Counter(p.lost for p in o.lost)
    met = len(joined) == o.people and not o.lost and not o.events
    attend = [p.attend_s for p in o.pages if p.attend_s is not None]
    page = [p.page_s for p in o.pages if p.page_s is not None]
    lines = [
        f"  joined: {len(joined):,} of {o.people:,}; arriving to welcome "
        f"p50 {ms(pct(o.join_times, 50))}, p99 {ms(pct(o.join_times, 99))}, "
        f"max {ms(max(o.join_times, default=math.nan))} (of which attend at the EMS "
        f"p50 {ms(pct(attend, 50))}, p99 {ms(pct(attend, 99))}; the meeting page "
        f"p50 {ms(pct(page, 50))}, p99 {ms(pct(page, 99))})"
    ]
    if errors:
        lines.append("  !! never got in: " + "; ".join(f"{e} x {n}" for e, n in errors.items()))
    if lost:
        lines.append("  !! lost their socket: " + "; ".join(f"{k} x {n}" for k, n in lost.items()))
    if goal_p99 is not None:
        delays = [d for _, d in o.delays]
        joining = [d for at, d in o.delays if at < o.join_seconds]
        after = [d for at, d in o.delays if at >= o.join_seconds]
        fan_out = pct(o.spreads, 99)
        delivered = o.missing == 0 and o.duplicates == 0
        met = met and delivered and fan_out <= goal_p99
        sent_lines = o.lines_acked + sum(p.unacked for p in o.pages)
        lines += [
            f"  lines: {sent_lines:,} sent, {o.lines_acked:,} acknowledged; (page, line) pairs "
            f"missing at the end {o.missing:,}, shown twice {o.duplicates:,}   "
            f"Goal: every line to every page   {verdict(delivered)}",
            f"  fan-out (each page's arrival after the line's first arrival anywhere): "
            f"p50 {ms(pct(o.spreads, 50))}, p99 {ms(fan_out)}, "
            f"max {ms(max(o.spreads, default=math.nan))} over {len(o.spreads):,} deliveries"
            f"   Goal p99 <= {ms(goal_p99)}   {verdict(fan_out <= goal_p99)}",
            f"  from sending to each page (the journal's round trip to the EMS, then the "
            f"fan-out): p50 {ms(pct(delays, 50))}, p99 {ms(pct(delays, 99))}, "
            f"max {ms(max(delays, default=math.nan))}",
            f"    while people join: p50 {ms(pct(joining, 50))}, p99 {ms(pct(joining, 99))}; "
            f"after: p50 {ms(pct(after, 50))}, p99 {ms(pct(after, 99))}",
            f"    the journal (sending to the sender's ack): "
            f"p50 {ms(pct(o.ack_delays, 50))}, p99 {ms(pct(o.ack_delays, 99))}; means "
            + ", ".join(f"{k} {ms(v)}" for k, v in o.means.items()),
        ]
    lines.append(
        "  room servers marked suspect or failed: "
        + ("; ".join(o.events) if o.events else "none")
        + f"   Goal: none   {verdict(not o.events)}"
    )
    if o.watch.not_online:
        lines.append(f"  !! seen not online: {', '.join(o.watch.not_online[:5])}")
    received = sum(p.received for p in o.pages)
    room_cpu = sum(v for k, v in o.cpu.items() if k.startswith("room")) * o.window
    lines.append(
        f"  messages to pages: {received:,} ({received / o.window:,.0f}/s); the room "
        f"server's CPU per message sent: {room_cpu / max(1, received) * 1e6:.0f} µs"
    )
    lines.append(
        "  CPU over the run (cores): "
        + ", ".join(f"{k} {v:.0%}" for k, v in o.cpu.items())
        + f"; load generators' event loops late by at most {o.generator_lag * 1000:.0f} ms"
        + (f"; pages dropped for falling behind: {o.room_log_drops}" if o.room_log_drops else "")
    )
    if o.generator_lag > 0.1:
        lines.append("  !! the load generators were saturated: figures include their own delay")
    return lines, met


def scenario_one(procs: Processes, args: argparse.Namespace, people: int) -> tuple[bool, str]:
    met, text, _ = one_meeting(procs, args, people)
    return met, text


def one_meeting(
    procs: Processes, args: argparse.Namespace, people: int
) -> tuple[bool, str, Outcome]:
    join_seconds = people / args.join_rate
    cluster = start_cluster(procs, args.log_level, 2, args.database_url)
    try:
        (meeting,) = create_meetings(cluster, 1, people)
        rooms = [meeting["server"]]
        senders = args.lines_per_second  # each sends one line a second
        plans = [
            PagePlan(meeting["id"], f"p{index}", at, sends=index < senders)
            for index, at in enumerate(spread(people, join_seconds))
        ]
        seconds = max(args.seconds, join_seconds + 10)
        job = Job(
            ems_port=cluster.ems_port,
            pages=[],
            chat_until=seconds,
            line_every=1.0,
            ping_every=args.ping,
            end=seconds + args.drain,
        )
        outcome = run_pages(cluster, plans, job, args.workers, rooms, join_seconds)
    finally:
        stop_cluster(procs)
    lines, met = common_lines(outcome, GOAL_ONE_P99_S)
    title = (
        f"one meeting of {people:,} joining within {join_seconds:.0f} s, "
        f"{args.lines_per_second} lines/s, {seconds:.0f} s (on {rooms[0]} of 2 room servers)"
    )
    return met, "\n".join([title, *lines, f"  goals {verdict(met)}"]), outcome


def scenario_many(procs: Processes, args: argparse.Namespace) -> tuple[bool, str]:
    meetings_count, size = args.meetings, args.size
    cluster = start_cluster(procs, args.log_level, 1, args.database_url)
    try:
        meetings = create_meetings(cluster, meetings_count, size)
        people = meetings_count * size
        join_seconds = people / args.many_join_rate
        arrivals = list(spread(people, join_seconds))
        plans = [
            PagePlan(
                meetings[index % meetings_count]["id"],
                f"p{index}",
                arrivals[index],
                sends=index < meetings_count,  # the first of each meeting
            )
            for index in range(people)
        ]
        job = Job(
            ems_port=cluster.ems_port,
            pages=[],
            chat_from=join_seconds + 2,
            chat_until=join_seconds + 2 + args.seconds,
            line_every=1.0,
            ping_every=args.ping,
            end=join_seconds + 2 + args.seconds + args.drain,
        )
        outcome = run_pages(cluster, plans, job, args.workers, ["room1"], join_seconds)
    finally:
        stop_cluster(procs)
    lines, met = common_lines(outcome, GOAL_MANY_P99_S)
    w = outcome.watch
    lines.append(
        f"  room server memory (RSS): {mib(w.rss_start)} before, peak {mib(w.rss_peak)}, "
        f"{mib(w.rss_end)} at the end; {(w.rss_peak - w.rss_start) / people / 1024:.0f} KiB "
        f"per page"
    )
    title = (
        f"one room server, {meetings_count} meetings of {size} ({people:,} pages) joining "
        f"within {join_seconds:.0f} s, then 1 line/s per meeting for {args.seconds:.0f} s"
    )
    return met, "\n".join([title, *lines, f"  goals {verdict(met)}"])


def scenario_storm(procs: Processes, args: argparse.Namespace) -> tuple[bool, str]:
    cluster = start_cluster(procs, args.log_level, 2, args.database_url)
    try:
        meetings = create_meetings(cluster, args.storm // 100, 100)
        rooms = sorted({m["server"] for m in meetings})
        plans = [
            PagePlan(meetings[index % len(meetings)]["id"], f"p{index}", at)
            for index, at in enumerate(spread(args.storm, args.storm_seconds))
        ]
        job = Job(
            ems_port=cluster.ems_port,
            pages=[],
            ping_every=args.ping,
            end=args.storm_seconds + 5,
        )
        outcome = run_pages(cluster, plans, job, args.workers, rooms, args.storm_seconds)
    finally:
        stop_cluster(procs)
    lines, met = common_lines(outcome, None)
    p99 = pct(outcome.join_times, 99)
    fast = p99 <= GOAL_STORM_P99_S
    lines.insert(
        1,
        f"  Goal: all {args.storm:,} in, p99 arriving to welcome <= {ms(GOAL_STORM_P99_S)}   "
        f"{verdict(len(outcome.joined) == args.storm and fast)}",
    )
    met = met and fast
    title = (
        f"join storm: {args.storm:,} people attending {len(meetings)} meetings through the "
        f"EMS within {args.storm_seconds:.0f} s ({', '.join(rooms)})"
    )
    return met, "\n".join([title, *lines, f"  goals {verdict(met)}"])


def stop_cluster(procs: Processes) -> None:
    procs.stop_all()


def run(args: argparse.Namespace) -> int:
    raise_open_files(65536)
    print(f"machine: {machine()}")
    print(f"code:    {code_version()}")
    print(
        f"load:    {' '.join(f'{x:.2f}' for x in psutil.getloadavg())} (1, 5, 15 min) "
        f"at the start; {args.workers} load generator processes; pages ping every "
        f"{args.ping:g} s"
    )
    scenarios = ["one", "many", "storm"] if args.scenario == "all" else [args.scenario]
    met_all = True
    with tempfile.TemporaryDirectory(prefix="moot-bench-room-") as tmp:
        where = Path(args.keep or tmp)
        for number, name in enumerate(scenarios):
            procs = Processes(where / f"{number}-{name}")
            procs.workdir.mkdir(parents=True)
            started = time.monotonic()
            try:
                if name == "ceiling":
                    met_all = ceiling(procs, args) and met_all
                    continue
                if name == "one":
                    met, text = scenario_one(procs, args, args.people)
                elif name == "many":
                    met, text = scenario_many(procs, args)
                else:
                    met, text = scenario_storm(procs, args)
            except (RuntimeError, HarnessError, OSError, EOFError, httpx.HTTPError) as exc:
                return failed(exc, procs, verbose=args.verbose, what=name)
            finally:
                procs.stop_all()
            met_all = met_all and met
            print(
                f"\n{text}\n  ({time.monotonic() - started:.0f} s; load now "
                f"{psutil.getloadavg()[0]:.2f})",
                flush=True,
            )
    return 0 if met_all or not args.check else 1


def ceiling(procs: Processes, args: argparse.Namespace) -> bool:
    """Scenario `one` with more people each time, up to --ceiling-max or until it breaks
    (pages thrown out, lines lost, the room server failed); a table at the end."""
    steps = [500, 750, 1000, 1500, 2000, 3000, 4000, 5000]
    print("\nceiling: one meeting, more people each time, 50 joining a second", flush=True)
    rows = []
    for people in (n for n in steps if n <= args.ceiling_max):
        step = Processes(procs.workdir / f"{people}")
        step.workdir.mkdir()
        try:
            met, text, o = one_meeting(step, args, people)
        finally:
            step.stop_all()
        print(f"\n{text}", flush=True)
        room = next(v for k, v in o.cpu.items() if k.startswith("room"))
        broke = bool(o.events or o.lost or o.missing or len(o.joined) < o.people)
        rows.append(
            f"  {people:>6,} | {'yes' if met else 'no ':>4} | {'yes' if broke else 'no':>5} | "
            f"{ms(pct(o.spreads, 99)):>8} | {ms(pct([d for _, d in o.delays], 99)):>8} | "
            f"{room:>4.0%} | {o.cpu['load generators']:>4.0%} | "
            f"{o.generator_lag * 1000:>6.0f} ms | {psutil.getloadavg()[0]:>5.2f}"
        )
        if broke:
            break
    print(
        "\nceiling (goals: fan-out p99 <= 100 ms, every line, no server failed)\n"
        "  people | met? | broke | fan-out  | end2end  | room | gens | gen. lag  | load\n"
        + "\n".join(rows)
    )
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", choices=["one", "many", "storm", "ceiling", "all"], default="all"
    )
    parser.add_argument("--people", type=int, default=500, help="in `one`")
    parser.add_argument("--join-rate", type=float, default=50.0, help="pages a second, `one`")
    parser.add_argument("--lines-per-second", type=int, default=20, help="in `one`")
    parser.add_argument("--seconds", type=float, default=30.0, help="of chat")
    parser.add_argument("--meetings", type=int, default=50, help="in `many`")
    parser.add_argument("--size", type=int, default=100, help="people per meeting, `many`")
    parser.add_argument(
        "--many-join-rate", type=float, default=100.0, help="pages a second, `many`"
    )
    parser.add_argument("--storm", type=int, default=1000, help="people in `storm`")
    parser.add_argument("--storm-seconds", type=float, default=10.0)
    parser.add_argument("--ceiling-max", type=int, default=5000)
    parser.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="seconds the pages stay after the last line: a line not there by then is missing",
    )
    parser.add_argument("--ping", type=float, default=1.0, help="seconds between pings")
    parser.add_argument("--workers", type=int, default=4, help="load generator processes")
    parser.add_argument("--log-level", default="warning", help="of the room servers")
    parser.add_argument(
        "--database-url",
        help="the EMS's store (default: SQLite in a temporary directory); an empty "
        "PostgreSQL database for each scenario, e.g. postgresql+asyncpg://127.0.0.1/bench",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--verbose", action="store_true", help="on an error, show the logs")
    parser.add_argument("--keep", help="a new directory to keep the servers' logs and data in")
    args = parser.parse_args()
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; every process the benchmark started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
