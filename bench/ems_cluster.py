"""Several EMS nodes: attend on two nodes against one; leader kill to failover resumed.

Starts two EMS nodes (`moot serve` with MOOT_BUS_URL=nats://...) on a new PostgreSQL
database, and two room servers, all on the given NATS under a subject prefix of this run.

1. Attend: `wrk` (as bench/attend.py) drives `GET /m/{id}?name=bench` on node A alone,
   then on both nodes at once (half the connections each); the figure is the ratio of the
   sums. Goal >= 1.7x (it needs a free core per node and for wrk: a 2-core machine cannot).
2. Leader kill: ROUNDS times, SIGKILL the leader and time (a) until the other node leads
   (its log), (b) until both room servers are registered with it (its API): the cluster's
   duties resumed; then SIGKILL the room server of a meeting and time until the meeting
   runs on the other one. The killed processes start again for the next round.
   Goal: leader kill to failover resumed p99 <= 3 s.

Run: `.venv/bin/python bench/ems_cluster.py [--nats nats://127.0.0.1:4222]
[--pg postgresql://127.0.0.1:5432/test] [--duration 10] [--rounds 5] [--check]`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import asyncpg
import httpx

from _common import (
    ADMIN,
    HOST,
    SECRET,
    Cluster,
    HarnessError,
    Processes,
    beside_goal,
    exit_code,
    failed,
    machine,
    parser,
    pct,
)
from attend import WRK_SCRIPT, Result, wrk
from moot.harness import Process
from moot.harness.ports import free_port

GOAL_RATIO = 1.7
GOAL_RESUMED_S = 3.0
LEADS = re.compile(r"^(\S+ \S+) WARNING moot\.ems\.cluster: EMS node \S+ leads", re.M)


async def _admin(pg: str, sql: str) -> None:
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def servers(ems: str) -> dict[str, dict[str, object]]:
    try:
        response = httpx.get(f"{ems}/api/v1/servers", headers=ADMIN, timeout=3)
    except httpx.HTTPError:
        return {}
    return {s["name"]: s for s in response.json()} if response.status_code == 200 else {}


def led_at(log: Path, after: float) -> float | None:
    """Wall-clock time of the node's latest "leads" line after `after`."""
    for stamp in reversed(LEADS.findall(log.read_text())):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at >= after:
            return at
    return None


def wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Poll every 20 ms; the monotonic time it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.02)
    raise HarnessError(f"timed out waiting for {what}")


def attend_throughput(urls: list[str], script: Path, connections: int, seconds: float) -> float:
    """Requests per second of wrk on every URL at once (connections split between them)."""
    share = max(1, connections // len(urls))

    async def all_at_once() -> list[Result]:
        return list(
            await asyncio.gather(
                *(
                    asyncio.to_thread(
                        wrk, url, script, connections=share, threads=1, seconds=seconds
                    )
                    for url in urls
                )
            )
        )

    results = asyncio.run(all_at_once())
    bad = sum(r.not_303 + r.socket_errors for r in results)
    if bad:
        raise HarnessError(f"{bad} attend requests failed")
    return sum(r.rps for r in results)


def all_online(ems: str) -> bool:
    return {n: s["status"] for n, s in servers(ems).items()} == {"r1": "online", "r2": "online"}


def host_of(ems: str, meeting: str) -> str:
    return str(httpx.get(f"{ems}/api/v1/meetings/{meeting}", timeout=5).json()["server"])


@dataclass
class Round:
    cluster: Cluster
    nodes: dict[str, Process]
    ports: dict[str, int]
    url: dict[str, str]
    work: Path
    meeting: str


def kill_the_leader(r: Round, leader: str, follower: str) -> tuple[float, float, float]:
    """SIGKILL the leader: (lease taken, failover resumed, meeting moved after its room
    server's SIGKILL), in seconds; then the dead start again."""
    killed = time.time()
    start = time.monotonic()
    r.nodes[leader].popen.send_signal(signal.SIGKILL)
    r.nodes[leader].popen.wait()
    log = r.work / f"ems-{follower}.log"
    wait(lambda: led_at(log, killed) is not None, "the other node to lead")
    lease = (led_at(log, killed) or killed) - killed
    back = wait(partial(all_online, r.url[follower]), "the room servers to register") - start
    # The meeting's room server dies: it moves, decided by the new leader.
    host = host_of(r.url[follower], r.meeting)
    other = "r2" if host == "r1" else "r1"
    start = time.monotonic()
    r.cluster.rooms[host].popen.send_signal(signal.SIGKILL)
    moved = wait(lambda: host_of(r.url[follower], r.meeting) == other, "the meeting to move")
    # The dead start again: the old leader as a follower, the room server.
    r.nodes[leader] = r.cluster.start_ems_node(
        f"ems-{leader}", r.ports[leader], MOOT_NODE_NAME=leader
    )
    r.cluster.start_room(host)
    wait(partial(all_online, r.url[follower]), "both room servers back")
    return lease, back, moved - start


def main() -> int:
    options = parser(__doc__, verbose=True)
    options.add_argument("--nats", default="nats://127.0.0.1:4222")
    options.add_argument("--pg", default="postgresql://127.0.0.1:5432/test", help="admin URL")
    options.add_argument("--connections", type=int, default=64)
    options.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    options.add_argument("--rounds", type=int, default=5, help="leader kills")
    args = options.parse_args()
    print(f"machine: {machine()}")
    database = f"moot_bench_{secrets.token_hex(5)}"
    asyncio.run(_admin(args.pg, f'CREATE DATABASE "{database}"'))
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    with tempfile.TemporaryDirectory(prefix="moot-bench-") as tmp:
        work = Path(tmp)
        procs = Processes(work)
        try:
            cluster = Cluster(work, f"{base}/{database}", secret=SECRET, procs=procs)
            cluster.common |= {
                "MOOT_BUS_URL": args.nats,
                "MOOT_BUS_PREFIX": f"b{secrets.token_hex(6)}",
                "MOOT_LOG_LEVEL": "warning",
            }
            ports = {"a": cluster.ems_port, "b": free_port()}
            nodes = {"a": cluster.start_ems_node("ems-a", ports["a"], MOOT_NODE_NAME="a")}
            nodes["b"] = cluster.start_ems_node("ems-b", ports["b"], MOOT_NODE_NAME="b")
            url = {n: f"http://{HOST}:{p}" for n, p in ports.items()}
            cluster.start_rooms("r1", "r2")
            made = httpx.post(f"{url['a']}/api/v1/meetings", json={"name": "bench"}, timeout=15)
            made.raise_for_status()
            meeting = made.json()["id"]
            attend = {n: f"{u}/m/{meeting}?name=bench" for n, u in url.items()}
            for target in attend.values():
                wait(lambda t=target: httpx.get(t, timeout=5).status_code == 303, "attend: 303")

            script = work / "count.lua"
            script.write_text(WRK_SCRIPT)
            attend_throughput([attend["a"]], script, args.connections, 2)  # warm-up
            # The same two wrk processes both times: on one node, then one on each node.
            one = attend_throughput([attend["a"]] * 2, script, args.connections, args.duration)
            print(f"attend, one node (the leader):  {one:8,.0f}/s", flush=True)
            alone = attend_throughput([attend["b"]] * 2, script, args.connections, args.duration)
            print(f"attend, one node (a follower):  {alone:8,.0f}/s", flush=True)
            two = attend_throughput(list(attend.values()), script, args.connections, args.duration)
            print(f"attend, both nodes at once:     {two:8,.0f}/s", flush=True)
            ratio = two / one
            ratio_met = ratio >= GOAL_RATIO

            leader, follower = "a", "b"
            took_lease: list[float] = []
            resumed: list[float] = []
            moved: list[float] = []
            for round_ in range(args.rounds):
                lease, back, move = kill_the_leader(
                    Round(cluster, nodes, ports, url, work, meeting), leader, follower
                )
                took_lease.append(lease)
                resumed.append(back)
                moved.append(move)
                print(
                    f"round {round_ + 1}: lease taken {lease:.2f} s, failover resumed "
                    f"{back:.2f} s, meeting moved {move:.2f} s after its room server"
                )
                leader, follower = follower, leader
        except (HarnessError, httpx.HTTPError, RuntimeError, OSError) as exc:
            return failed(exc, procs, verbose=args.verbose, what="ems_cluster")
        finally:
            cluster.ems = None
            procs.stop_all()
            asyncio.run(_admin(args.pg, f'DROP DATABASE IF EXISTS "{database}"'))
    p99 = pct(resumed, 99)
    resumed_met = p99 <= GOAL_RESUMED_S
    print()
    print(beside_goal("attend, two nodes / one", f"{ratio:.2f}x", f">= {GOAL_RATIO}x", ratio_met))
    print(
        beside_goal(
            "leader kill to failover resumed",
            f"p99 {p99:.2f} s over {len(resumed)} kills "
            f"(lease taken p99 {pct(took_lease, 99):.2f} s; meeting moved p99 "
            f"{pct(moved, 99):.2f} s)",
            f"p99 <= {GOAL_RESUMED_S:g} s",
            resumed_met,
        )
    )
    return exit_code(ratio_met and resumed_met, args.check)


if __name__ == "__main__":
    sys.exit(main())
