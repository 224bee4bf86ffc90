"""Community services: presence and instant messages of many users over three room servers.

Starts one EMS and three room servers (`python -m moot ...`) on the machine's NATS
JetStream (`--nats`, default nats://127.0.0.1:4222; names of this run's own, deleted at
the end), then connects `--users` simulated community clients (asyncio WebSockets in this
process), spread over the room servers as the EMS spreads them (the fewest connections
first: round robin here), each watching `--contacts` others. The tokens are community
tokens signed with the EMS's own key (read from its data directory), so no sign-in is
timed. Measured:

- presence: `--changes` status changes of random users; for each, from the change sent to
  every watcher's `presence` message (p99 over all watchers; goal <= 200 ms);
- messages: `--messages` one-to-one messages between contacts (on different servers most
  of the time), from sent to received by the recipient (p99; goal <= 100 ms);
- failover: SIGKILL of room1; each of its clients connects to the server the EMS would
  name it first (`community_servers` on the counts of the moment of the kill: the EMS's
  are a heartbeat old), from the kill to the last `welcome` (goal <= 5 s), and whether
  any watcher saw one of them offline meanwhile (presence kept). The EMS's own answers
  are not part of it: each client already holds a token.

Run: `.venv/bin/python bench/community.py [--users 10000] [--check]`;
`--profile DIR` records the failover with py-spy (`python3 -m venv /tmp/tools &&
/tmp/tools/bin/pip install py-spy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from _common import (
    ADMIN,
    SECRET,
    Cluster,
    HarnessError,
    Processes,
    beside_goal,
    code_version,
    exit_code,
    failed,
    load_average,
    machine,
    parser,
    pct,
    raise_open_files,
)
from moot.core.community import CommunityServer, community_servers
from moot.infra.tokens import load_or_create_private_key, sign_community_token

PRESENCE_GOAL_MS = 200.0
MESSAGE_GOAL_MS = 100.0
FAILOVER_GOAL_S = 5.0


@dataclass(eq=False)
class User:
    index: int
    token: str
    servers: list[str]  # community WebSocket URLs, its own first
    contacts: list[int] = field(default_factory=list)
    socket: ClientConnection | None = None
    server: int = 0
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    welcomed_at: float = 0.0

    @property
    def pid(self) -> str:
        return f"/u{self.index:05d}"


@dataclass
class Run:
    users: list[User]
    by_pid: dict[str, User]
    presence_sent: dict[str, float] = field(default_factory=dict)  # status line -> sent at
    presence_seen: int = 0  # every presence message (the watches' first answers too)

    presence_ms: list[float] = field(default_factory=list)
    message_sent: dict[str, float] = field(default_factory=dict)
    message_ms: list[float] = field(default_factory=list)
    conversations: dict[tuple[int, int], str] = field(default_factory=dict)
    waiting_conversation: dict[tuple[int, int], asyncio.Future[str]] = field(default_factory=dict)
    offline_seen: set[str] = field(default_factory=set)
    watching_killed: bool = False
    counts_at_kill: dict[str, int] = field(default_factory=dict)  # server URL -> clients
    killed: set[str] = field(default_factory=set)


def on_message(run: Run, user: User, message: dict[str, Any]) -> None:
    now = time.perf_counter()
    kind = message.get("type")
    if kind == "welcome":
        user.welcomed_at = now
        user.welcomed.set()
    elif kind == "presence":
        run.presence_seen += 1
        sent = run.presence_sent.get(str(message.get("status")))
        if sent is not None:
            run.presence_ms.append((now - sent) * 1000)
        pid = str(message.get("pid"))
        if run.watching_killed and pid in run.killed and message.get("state") == "offline":
            run.offline_seen.add(pid)
    elif kind == "message" and message.get("from") != user.pid:  # the recipient's copy
        sent = run.message_sent.pop(str(message.get("id")), None)
        if sent is not None:
            run.message_ms.append((now - sent) * 1000)
    elif kind == "conversation":
        members = message.get("members", [])
        if len(members) == 2:
            a, b = sorted(int(p[2:]) for p in members)
            waiting = run.waiting_conversation.pop((a, b), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(str(message["id"]))


async def keep_connected(run: Run, user: User, device: str) -> None:
    """What the page does: stay connected; when its server goes, connect where the EMS
    says (core.community.community_servers, on the counts the EMS had at the kill)."""
    while True:
        url = user.servers[user.server % len(user.servers)]
        try:
            # No protocol pings: a browser sends none (the server pings it).
            async with connect(
                f"{url}?token={user.token}&device={device}",
                open_timeout=30,
                max_queue=None,
                ping_interval=None,
                proxy=None,  # not looked up in the environment at each of 10,000 connects
            ) as socket:
                user.socket = socket
                async for text in socket:
                    on_message(run, user, json.loads(text))
        except (OSError, ConnectionClosed, TimeoutError):
            pass
        user.socket = None
        user.welcomed.clear()
        user.server = next_server(run, user, url)
        await asyncio.sleep(0.05)


def next_server(run: Run, user: User, lost: str) -> int:
    """The index in the user's list of the server the EMS would name first now."""
    if not run.counts_at_kill:
        return user.server + 1
    known = [
        CommunityServer(url, url, online=url != lost, draining=False, offers=True, connections=n)
        for url, n in run.counts_at_kill.items()
    ]
    return user.servers.index(community_servers(known, user.pid)[0].url)


async def send(user: User, message: dict[str, Any]) -> None:
    if user.socket is not None:
        with contextlib.suppress(ConnectionClosed):
            await user.socket.send(json.dumps(message))


async def bench(args: Any, cluster: Cluster) -> bool:
    key = load_or_create_private_key(cluster.workdir / "data" / "signing-key.pem")
    servers = [
        s for s in cluster.client.get(cluster.ems_url + "/api/v1/servers", headers=ADMIN).json()
    ]
    urls = sorted(
        (s["name"], "ws://" + s["url"].removeprefix("http://") + "/community/ws") for s in servers
    )
    rng = random.Random(7)
    users = []
    for index in range(args.users):
        token = sign_community_token(
            key,
            username=f"u{index:05d}",
            display_name=f"User {index}",
            partition=None,
            ttl_seconds=3600,
        )
        own = index % len(urls)
        order = [urls[(own + k) % len(urls)][1] for k in range(len(urls))]
        users.append(User(index, token, order))
    for user in users:
        user.contacts = rng.sample(
            [i for i in range(args.users) if i != user.index], min(args.contacts, args.users - 1)
        )
    run = Run(users, {u.pid: u for u in users})
    tasks = []
    started = time.perf_counter()
    for user in users:
        tasks.append(asyncio.create_task(keep_connected(run, user, f"bench{user.index:08d}")))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(args.ramp)  # a ramp, not a storm of handshakes
    await asyncio.wait_for(asyncio.gather(*(u.welcomed.wait() for u in users)), 600)
    print(f"{args.users} users connected in {time.perf_counter() - started:.1f} s")
    for user in users:
        await send(user, {"type": "watch", "people": [f"/u{c:05d}" for c in user.contacts]})
    # Until the presence messages of the sign-ins and the watches' first answers are all
    # in (none for 3 s): timed is the steady state, not the backlog of 10,000 sign-ins.
    expected = sum(len(u.contacts) for u in users)
    quiet_since, seen = time.perf_counter(), -1
    for _ in range(600):
        if run.presence_seen != seen:
            quiet_since, seen = time.perf_counter(), run.presence_seen
        elif time.perf_counter() - quiet_since >= 3:
            break
        await asyncio.sleep(0.5)
    print(f"watching: {run.presence_seen} presence messages in ({expected} watches), quiet")
    # The simulated clients' objects stay as they are from now on: this process's garbage
    # collector need not walk them again and again (it was a third of its time).
    gc.freeze()

    # Presence changes, 20 a second.
    for change in range(args.changes):
        user = rng.choice(users)
        status = f"change-{change}"
        run.presence_sent[status] = time.perf_counter()
        await send(user, {"type": "set_presence", "state": "available", "status": status})
        await asyncio.sleep(0.05)
    await asyncio.sleep(3)

    # Messages between contacts, 20 a second.
    pairs = [(u, rng.choice(u.contacts)) for u in rng.sample(users, args.messages)]
    for sender, other in pairs:
        key_pair = tuple(sorted((sender.index, other)))
        if key_pair in run.conversations:
            continue
        waiting: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        run.waiting_conversation[key_pair] = waiting  # type: ignore[index]
        # Asked again every 5 s: a client the server dropped for reading too slowly (the
        # backlog of sign-ins) may be between two connections, and its request lost.
        for _ in range(6):
            await send(sender, {"type": "open_chat", "with": f"/u{other:05d}"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiting), 5)
                break
        if not waiting.done():
            raise TimeoutError(f"{sender.pid} asked 6 times in 30 s for a chat, no answer")
        run.conversations[key_pair] = waiting.result()  # type: ignore[index]
    for n, (sender, other) in enumerate(pairs):
        conv = run.conversations[tuple(sorted((sender.index, other)))]  # type: ignore[index]
        run.message_sent[f"m{n}"] = time.perf_counter()
        await send(sender, {"type": "send", "id": f"m{n}", "conversation": conv, "text": "hi"})
        await asyncio.sleep(0.05)
    await asyncio.sleep(3)

    presence_p99 = pct(run.presence_ms, 99)
    message_p99 = pct(run.message_ms, 99)
    print(
        f"presence: {len(run.presence_ms)} deliveries to watchers of {args.changes} changes, "
        f"p50 {pct(run.presence_ms, 50):.1f} ms, p99 {presence_p99:.1f} ms"
    )
    print(
        f"messages: {len(run.message_ms)} of {len(pairs)} delivered, "
        f"p50 {pct(run.message_ms, 50):.1f} ms, p99 {message_p99:.1f} ms"
    )

    # Failover: SIGKILL room1; its clients go to the next server of their list.
    victims = [u for u in users if u.servers[u.server % len(u.servers)] == urls[0][1]]
    run.killed = {u.pid for u in victims}
    run.watching_killed = True
    for victim in victims:
        victim.welcomed.clear()  # each must be welcomed again, elsewhere
    room = next(p for p in cluster.processes if p.name == "room1")
    run.counts_at_kill = dict(
        Counter(u.servers[u.server % len(u.servers)] for u in users if u.socket is not None)
    )
    spies = profile_failover(args.profile, cluster)
    killed_at = time.perf_counter()
    room.popen.send_signal(signal.SIGKILL)
    await asyncio.sleep(0.5)
    # At most a minute: those not back by then are counted, not waited for.
    waits = [asyncio.create_task(v.welcomed.wait()) for v in victims]
    await asyncio.wait(waits, timeout=60)
    for wait in waits:
        wait.cancel()
    returned = [v for v in victims if v.welcomed.is_set() and v.welcomed_at > killed_at]
    back_after = [v.welcomed_at - killed_at for v in returned]
    back = max(back_after) if len(returned) == len(victims) else math.inf
    await asyncio.sleep(2)
    print(
        f"failover: {len(returned)} of {len(victims)} clients of room1 back on other servers "
        f"within 60 s, the last {max(back_after, default=math.nan):.2f} s after SIGKILL (half "
        f"in {pct(back_after, 50):.2f} s, 90 % in {pct(back_after, 90):.2f} s); watchers saw "
        f"{len(run.offline_seen)} of them offline"
    )
    for spy in spies:
        spy.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    met_presence = presence_p99 <= PRESENCE_GOAL_MS
    met_message = message_p99 <= MESSAGE_GOAL_MS and len(run.message_ms) == len(pairs)
    met_failover = back <= FAILOVER_GOAL_S and not run.offline_seen
    print(beside_goal("presence p99", f"{presence_p99:.1f} ms", "<= 200 ms", met_presence))
    print(beside_goal("message p99", f"{message_p99:.1f} ms", "<= 100 ms", met_message))
    print(
        beside_goal(
            f"failover of {len(victims)} users",
            (f"{back:.2f} s" if back < math.inf else f"{len(victims) - len(returned)} not back")
            + f", presence kept for {len(victims) - len(run.offline_seen)}",
            "<= 5 s, all",
            met_failover,
        )
    )
    return met_presence and met_message and met_failover


def profile_failover(folder: str, cluster: Cluster) -> list[subprocess.Popen[bytes]]:
    """With --profile: py-spy records the surviving room servers and this process (the
    clients) for the failover's first 12 s, as collapsed stacks in `folder` (one file
    each; flamegraph.pl draws them)."""
    if not folder:
        return []
    Path(folder).mkdir(parents=True, exist_ok=True)
    pids = {p.name: p.popen.pid for p in cluster.processes if p.name in ("room2", "room3")}
    pids["clients"] = os.getpid()
    return [
        subprocess.Popen(
            [
                args_py_spy(),
                "record",
                "-d",
                "12",
                "-r",
                "50",
                "-p",
                str(pid),
                "-f",
                "raw",
                "-o",
                f"{folder}/{name}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def args_py_spy() -> str:
    return shutil.which("py-spy") or "/tmp/tools/bin/py-spy"


async def delete_bus_state(url: str, prefix: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in ("presence", "servers", "people", "conv"):
        with contextlib.suppress(Exception):
            await js.delete_key_value(f"{prefix}_{name}")
    with contextlib.suppress(Exception):
        await js.delete_stream(f"{prefix}_im")
    await nc.close()


def main() -> int:
    options = parser(__doc__, verbose=True)
    options.add_argument("--users", type=int, default=10_000)
    options.add_argument("--contacts", type=int, default=50)
    options.add_argument("--changes", type=int, default=200)
    options.add_argument("--messages", type=int, default=200)
    options.add_argument("--nats", default="nats://127.0.0.1:4222")
    options.add_argument("--ramp", type=float, default=0.5, help="seconds per 100 sign-ins")
    options.add_argument("--profile", default="", help="folder for py-spy flame graphs")
    args = options.parse_args()
    raise_open_files(args.users * 2 + 1000)
    print(f"machine: {machine()}; load {load_average()}")
    print(f"code: {code_version()}")
    with tempfile.TemporaryDirectory(prefix="moot-bench-community-") as workdir:
        procs = Processes(Path(workdir))
        cluster = Cluster(
            Path(workdir), secret=SECRET, log_level="warning", procs=procs, community_bus=args.nats
        )
        try:
            cluster.start_ems()
            cluster.start_rooms("room1", "room2", "room3")
            met = asyncio.run(bench(args, cluster))
        except (HarnessError, TimeoutError, OSError) as exc:
            return failed(exc, procs, verbose=args.verbose, what="the community benchmark")
        finally:
            cluster.stop(check=False)
            asyncio.run(delete_bus_state(args.nats, cluster.community_prefix))
        print(f"load after: {load_average()}")
        return exit_code(met, args.check)


if __name__ == "__main__":
    sys.exit(main())
