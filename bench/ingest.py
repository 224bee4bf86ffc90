"""Status ingest: 2,000 simulated room servers reporting at 1 Hz to one EMS process.

Starts one EMS (`python -m moot serve`, SQLite in a temporary directory, servers register
themselves) and, in this process, 2,000 simulated room servers: each dials the control
WebSocket, registers with the cluster secret, answers any command with ok, and sends a
status report every heartbeat (1 s), at its own phase so the reports arrive evenly.

Measured over the window (after every server registered and a warm-up):
- the EMS's CPU, from /proc through psutil, as a share of one core (goal <= 50%);
- report-to-visible latency: ten times a second one server sends an extra report with a
  new `cpu_percent`, and a client polls `GET /api/v1/servers/{name}` every 2 ms until the
  EMS shows it (goal p99 <= 100 ms);
- the reports actually sent per second, so a simulator that fell behind is seen.

Run: `.venv/bin/python bench/ingest.py [--servers 2000] [--seconds 60] [--check]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import websockets
from websockets.asyncio.client import ClientConnection

from _common import machine, pct, raise_open_files
from moot.bus.direct import CONTROL_PATH
from moot.harness import Cluster
from moot.protocol import PROTOCOL_VERSION
from moot.protocol.control import CommandResult, Register, ServerLimits, Status

GOAL_CPU = 0.50  # of one core
GOAL_P99_MS = 100.0
SECRET = "bench-ingest-secret"


class SimulatedRoom:
    """One room server as the EMS sees it: register, then a report every interval."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cpu = 1.0
        self.seq = 0
        self.ws: ClientConnection | None = None

    async def connect(self, ems_url: str) -> None:
        url = ems_url.replace("http://", "ws://") + CONTROL_PATH
        self.ws = await websockets.connect(url, max_queue=64, ping_interval=None)
        register = Register(
            name=self.name,
            url=f"http://{self.name}.bench.invalid",
            protocol_version=PROTOCOL_VERSION,
            secret=SECRET,
            limits=ServerLimits(max_active_meetings=50, max_users_per_meeting=100),
        )
        await self.ws.send(register.model_dump_json())
        answer = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if answer["type"] != "registered":
            raise RuntimeError(f"{self.name} was not registered: {answer}")

    async def report(self) -> None:
        assert self.ws is not None
        self.seq += 1
        status = Status(
            seq=self.seq, meetings=[], logins=0, cpu_percent=self.cpu, memory_percent=10.0
        )
        await self.ws.send(status.model_dump_json())

    async def answer_commands(self) -> None:
        """Every command gets ok, as a healthy room server would answer."""
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.ws:
                message = json.loads(text)
                if "request_id" in message:
                    result = CommandResult(request_id=message["request_id"], ok=True)
                    await self.ws.send(result.model_dump_json())


async def report_loop(room: SimulatedRoom, interval: float, sent: list[int]) -> None:
    await asyncio.sleep(random.random() * interval)  # its own phase
    next_at = time.monotonic()
    while True:
        await room.report()
        sent[0] += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def probe(http: httpx.AsyncClient, room: SimulatedRoom, marker: float) -> float:
    """Send a report with a new marker; milliseconds until the EMS shows it."""
    room.cpu = marker
    started = time.perf_counter()
    await room.report()
    while True:
        answer = await http.get(f"/api/v1/servers/{room.name}")
        if answer.status_code == 200 and answer.json()["cpu_percent"] == marker:
            return (time.perf_counter() - started) * 1000
        if time.perf_counter() - started > 5:
            raise RuntimeError(f"a report of {room.name} did not show within 5 s")
        await asyncio.sleep(0.002)


async def drive(cluster: Cluster, args: argparse.Namespace) -> tuple[float, list[float], float]:
    rooms = [SimulatedRoom(f"sim-{i:04d}") for i in range(args.servers)]
    sent = [0]
    tasks: list[asyncio.Task[None]] = []

    async def join(room: SimulatedRoom) -> None:
        await room.connect(cluster.ems_url)
        # Reporting starts at once: a registered server that stays silent for 3 s fails.
        tasks.append(asyncio.create_task(room.answer_commands()))
        tasks.append(asyncio.create_task(report_loop(room, 1.0, sent)))

    started = time.monotonic()
    for chunk in range(0, len(rooms), 100):  # 100 at a time: registration writes a row each
        await asyncio.gather(*(join(r) for r in rooms[chunk : chunk + 100]))
    print(f"  {len(rooms):,} servers registered in {time.monotonic() - started:.1f} s")
    assert cluster.ems is not None
    ems = psutil.Process(cluster.ems.popen.pid)
    latencies: list[float] = []
    try:
        await asyncio.sleep(args.warmup)
        async with httpx.AsyncClient(
            base_url=cluster.ems_url, timeout=30, headers=cluster.admin
        ) as http:
            listing = (await http.get("/api/v1/servers")).json()
            down = [s["name"] for s in listing if s["status"] != "online"]
            if down:  # the simulator fell behind: figures would not be of 2,000 live servers
                raise RuntimeError(f"{len(down)} simulated servers are not online: {down[:5]}")
            cpu_before = sum(ems.cpu_times()[:2])
            sent_before, window_start = sent[0], time.monotonic()
            marker = 1000.0
            while time.monotonic() - window_start < args.seconds:
                marker += 1
                tick = time.monotonic()
                latencies.append(await probe(http, random.choice(rooms), marker))
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
            window = time.monotonic() - window_start
            cpu = (sum(ems.cpu_times()[:2]) - cpu_before) / window
            rate = (sent[0] - sent_before) / window
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(r.ws.close() for r in rooms if r.ws), return_exceptions=True)
    return cpu, latencies, rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    raise_open_files(args.servers * 2 + 256)  # the EMS inherits it: a socket on each side
    print(f"machine: {machine()}")
    print(f"{args.servers:,} simulated room servers reporting every 1 s to one EMS process")
    with tempfile.TemporaryDirectory(prefix="moot-ingest-") as tmp:
        cluster = Cluster(
            workdir=Path(tmp),
            database_url=f"sqlite+aiosqlite:///{tmp}/moot.db",
            secret=SECRET,
        )
        try:
            cluster.start_ems(MOOT_LOG_LEVEL="warning", MOOT_AUTO_REGISTER_SERVERS="true")
            cpu, latencies, rate = asyncio.run(drive(cluster, args))
        finally:
            cluster.stop()
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print(f"  reports sent: {rate:,.0f}/s over the window")
    print(f"  EMS CPU: {cpu:.0%} of one core   Goal <= {GOAL_CPU:.0%}")
    print(
        f"  report to visible: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} probes"
        f"   Goal p99 <= {GOAL_P99_MS:.0f} ms"
    )
    met = cpu <= GOAL_CPU and p99 <= GOAL_P99_MS
    print("  goals MET" if met else "  goal MISSED")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
