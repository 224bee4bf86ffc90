"""Attend throughput: `GET /m/{id}?name=bench` on a real EMS, against a bare Starlette redirect.

Starts one EMS (`python -m moot serve`, SQLite in a temporary data directory) and one room
server (`python -m moot room`), creates a meeting that starts now, then drives attend with
`wrk` (a separate process, 64 connections over loopback, redirects not followed) for a
warm-up and a measured run. The same client then measures a bare Starlette app (one route
answering 303) served by uvicorn in its own process with the same uvicorn settings, and
the ratio Moot/bare is printed.

Run: `.venv/bin/python bench/attend.py [--connections 64] [--duration 10] [--warmup 3]`.
Needs Debian's wrk: `apt-get install -y wrk`.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import httpx

from _common import HOST, SECRET, children_cpu_seconds, cpu_seconds, machine
from moot.harness import Cluster, HarnessError, Process, Processes, wait_for
from moot.harness.ports import free_port

GOAL_RPS = 1_500
GOAL_P99_MS = 50.0

# Counts answers other than 303 per wrk thread and prints exact figures at the end.
WRK_SCRIPT = """
threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  wrong = 0
end
function response(status, headers, body)
  if status ~= 303 then
    wrong = wrong + 1
  end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("wrong")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
    .. "not303=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, bad, e.connect, e.read, e.write, e.timeout))
end
"""


# -- the bare app ----------------------------------------------------------------------


def serve_bare(port: int, log_level: str) -> None:
    """A Starlette app with one route answering 303, run like `moot serve` runs the EMS."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    target = f"http://{HOST}:1/meeting/bench?token=" + "x" * 300

    async def attend(request: Request) -> RedirectResponse:
        return RedirectResponse(target, status_code=303)

    app = Starlette(routes=[Route("/m/{meeting_id}", attend)])
    # The same settings as `moot serve` (src/moot/cli.py), save the EMS's app itself.
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level=log_level,
        access_log=False,
        ws_ping_interval=10,
        ws_ping_timeout=10,
        loop="asyncio",
    )


# -- processes -------------------------------------------------------------------------


def start_moot(procs: Processes, log_level: str) -> str:
    """EMS plus one room server; returns the attend URL of a meeting in progress."""
    cluster = Cluster(procs.workdir, secret=SECRET, log_level=log_level, procs=procs)
    cluster.start_ems()
    cluster.start_room("bench-room")
    response = httpx.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "bench", "moderator": "alice"},
        timeout=10,
    )
    response.raise_for_status()
    meeting_id = response.json()["id"]
    url = f"{cluster.ems_url}/m/{meeting_id}?name=bench"
    first = httpx.get(url, timeout=10)
    if first.status_code != 303 or "/meeting/" not in first.headers.get("location", ""):
        raise RuntimeError(f"attend answered {first.status_code}, not a 303 to the room server")
    return url


def status_of(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def start_bare(procs: Processes, log_level: str) -> str:
    port = free_port()
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--serve-bare", str(port), "--log-level", log_level]
    bare = procs.spawn("bare", command)
    url = f"http://{HOST}:{port}/m/bench?name=bench"
    wait_for(lambda: status_of(url) == 303, "the bare app to answer 303", [bare])
    return url


# -- the load generator ----------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    not_303: int
    socket_errors: int
    server_cpu: float = 0.0  # cores the server processes used during the measured run
    client_cpu: float = 0.0  # cores wrk used

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def meets_goal(self) -> bool:
        return (
            self.rps >= GOAL_RPS
            and self.p99_ms <= GOAL_P99_MS
            and self.not_303 == 0
            and self.socket_errors == 0
        )

    def line(self) -> str:
        text = (
            f"{self.rps:8,.0f} req/s   p50 {self.p50_ms:7.2f} ms   p90 {self.p90_ms:7.2f} ms   "
            f"p99 {self.p99_ms:7.2f} ms   max {self.max_ms:7.2f} ms   "
            f"({self.requests:,} requests in {self.seconds:.1f} s)"
        )
        if self.server_cpu or self.client_cpu:
            text += f"\n  CPU: server {self.server_cpu:.0%} of a core, wrk {self.client_cpu:.0%}"
        if self.not_303 or self.socket_errors:
            text += f"   !! {self.not_303} non-303 answers, {self.socket_errors} socket errors"
        return text


def wrk(url: str, script: Path, *, connections: int, threads: int, seconds: float) -> Result:
    command = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={script}",
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    value = {key: int(number) for key, number in fields.items()}
    return Result(
        requests=value["requests"],
        seconds=value["duration_us"] / 1e6,
        p50_ms=value["p50_us"] / 1e3,
        p90_ms=value["p90_us"] / 1e3,
        p99_ms=value["p99_us"] / 1e3,
        max_ms=value["max_us"] / 1e3,
        not_303=value["not303"],
        socket_errors=sum(value[k] for k in ("connect", "read", "write", "timeout")),
    )


def measure(
    name: str, url: str, script: Path, servers: list[Process], args: argparse.Namespace
) -> Result:
    print(f"{name}: {url}")
    print(f"  warm-up {args.warmup:g} s ...", flush=True)
    wrk(url, script, connections=args.connections, threads=args.threads, seconds=args.warmup)
    print(f"  measuring {args.duration:g} s ...", flush=True)
    server_before = sum(cpu_seconds(c.popen.pid) for c in servers)
    client_before = children_cpu_seconds()
    result = wrk(
        url, script, connections=args.connections, threads=args.threads, seconds=args.duration
    )
    server = sum(cpu_seconds(c.popen.pid) for c in servers) - server_before
    client = children_cpu_seconds() - client_before
    result = replace(result, server_cpu=server / result.seconds, client_cpu=client / result.seconds)
    print(f"  {result.line()}", flush=True)
    return result


# -- main ------------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (version.stdout + version.stderr).splitlines()[0].strip()
    print(f"machine: {machine()}")
    print(
        f"client:  {wrk_version}; {args.connections} connections, {args.threads} thread(s), "
        f"{args.warmup:g} s warm-up then {args.duration:g} s, redirects not followed"
    )
    with tempfile.TemporaryDirectory(prefix="moot-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "count.lua"
        script.write_text(WRK_SCRIPT)
        procs = Processes(workdir)
        try:
            moot_url = start_moot(procs, args.log_level)
            moot = measure(
                "Moot attend (EMS + 1 room server)", moot_url, script, procs.children[:], args
            )
            # Measure the bare app alone on the machine, as Moot was.
            procs.stop_all()
            bare_url = start_bare(procs, args.log_level)
            bare = measure("bare Starlette 303", bare_url, script, procs.children[:], args)
        except (RuntimeError, HarnessError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            procs.stop_all()
    print()
    print(f"Moot attend: {moot.line()}")
    print(f"bare app:    {bare.line()}")
    print(f"Moot/bare:   {moot.rps / bare.rps:.1%} of the bare app's throughput")
    print(f"Goal >= {GOAL_RPS:,}/s with p99 <= {GOAL_P99_MS:g} ms")
    if moot.meets_goal():
        print("goal MET")
        return 0
    misses = []
    if moot.rps < GOAL_RPS:
        misses.append(f"throughput {moot.rps:,.0f}/s < {GOAL_RPS:,}/s")
    if moot.p99_ms > GOAL_P99_MS:
        misses.append(f"p99 {moot.p99_ms:.1f} ms > {GOAL_P99_MS:g} ms")
    if moot.not_303 or moot.socket_errors:
        misses.append("some requests failed")
    print("goal MISSED: " + "; ".join(misses))
    return 1 if args.check else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64, help="concurrent clients")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up")
    parser.add_argument("--log-level", default="warning", help="of every server process")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when the goal is missed"
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.log_level)
        return 0
    if shutil.which("wrk") is None:
        print(
            "error: this benchmark needs wrk, the HTTP load generator.\n"
            "Install it with: apt-get install -y wrk   (Debian/Ubuntu; needs root)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; every process the benchmark started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
