"""`moot demo --cluster`: two EMS nodes and three room servers on one PostgreSQL and one
NATS, each given by URL or started by the demo (a PostgreSQL of its own through
moot.harness.postgres_server, Debian's nats-server), as child processes on 127.0.0.1.

Any process that dies is started again after a backoff, the EMS nodes too: a leader that
lost its lease exits, as it must, and comes back as a follower.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

from moot.demo import Child, DemoFailed, spawn_child, start_nats, stop_all, wait_ready
from moot.ems.auth.users import ensure_first_admin
from moot.ems.store.migrate import upgrade_async
from moot.harness.ports import free_port
from moot.harness.postgres_server import PrivatePostgres, why_not
from moot.harness.processes import Process, exit_status
from moot.infra.netcheck import ensure_port_free
from moot.infra.secrets_file import load_or_create_cluster_secret

CLUSTER_NODES = ("node-a", "node-b")
CLUSTER_ROOMS = ("room1", "room2", "room3")


def _cluster_store(
    data_dir: Path, database_url: str, say: Callable[[str], None]
) -> tuple[PrivatePostgres | None, str]:
    """The nodes' one PostgreSQL: the URL given, else one the demo starts for itself."""
    if database_url.startswith(("postgresql", "postgres:")):
        return None, database_url
    problem = why_not()
    if problem:
        raise DemoFailed(
            "--cluster needs PostgreSQL: give one with --database-url postgresql://... "
            f"(the demo cannot start its own: {problem})"
        )
    server = PrivatePostgres(free_port(), data_dir / "postgres.log")
    server.start()
    say(f"PostgreSQL of the demo (removed at the end): {server.url}")
    return server, server.url


def run_cluster_demo(
    *,
    host: str,
    port: int,
    data_dir: Path,
    log_level: str,
    say: Callable[[str], None],
    database_url: str = "",
    bus_url: str = "",
) -> int:
    """Two EMS nodes (PORT, PORT+1) and three room servers (PORT+2..PORT+4) on one
    PostgreSQL and one NATS, each given or started here; a dead process is started again
    (the leader that lost its lease exits, as it must, and comes back as a follower)."""
    ports = list(range(port, port + len(CLUSTER_NODES) + len(CLUSTER_ROOMS)))
    for p in ports:
        ensure_port_free(host, p)
    data_dir.mkdir(parents=True, exist_ok=True)
    secret, _ = load_or_create_cluster_secret(data_dir)
    stopping = False
    nats: Process | None = None
    postgres: PrivatePostgres | None = None
    children: list[Child] = []

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not bus_url:
            nats, bus_url = start_nats(host, data_dir, say)
            if nats is None:
                raise DemoFailed("--cluster needs NATS: give one with --bus-url nats://...")
        postgres, database_url = _cluster_store(data_dir, database_url, say)
        # Migrated once, before the nodes start: two migrating one empty database at once
        # would race to create its tables.
        asyncio.run(upgrade_async(database_url))
        # One data directory: the nodes sign join tokens with the one key kept there.
        common = {
            "MOOT_CLUSTER_SECRET": secret,
            "MOOT_DATA_DIR": str(data_dir),
            "MOOT_LOG_LEVEL": log_level,
            "MOOT_BUS_URL": bus_url,
            "MOOT_DATABASE_URL": database_url,
            "MOOT_COMMUNITY_BUS_URL": bus_url,
        }
        urls = [f"http://{host}:{p}" for p in ports[: len(CLUSTER_NODES)]]
        for node, node_port in zip(CLUSTER_NODES, ports, strict=False):
            children.append(
                spawn_child(
                    f"EMS {node}",
                    ["serve", "--host", host, "--port", str(node_port)],
                    {**common, "MOOT_NODE_NAME": node},
                )
            )
        for name, room_port in zip(CLUSTER_ROOMS, ports[len(CLUSTER_NODES) :], strict=True):
            children.append(
                spawn_child(
                    f"room server {name}",
                    ["room", "--name", name, *["--host", host, "--port", str(room_port)]],
                    {**common, "MOOT_EMS_URL": urls[0]},
                )
            )
        wait_ready(urls[0], secret, children, len(CLUSTER_ROOMS), lambda: stopping)
        if stopping:
            return 0
        say("Meeting Center on either EMS node: " + ", ".join(f"{u}/" for u in urls))
        say(f"PostgreSQL: {database_url}; NATS: {bus_url}")
        password = asyncio.run(ensure_first_admin(database_url, "stadmins"))
        if password is not None:
            say(f"Administrator: sign in as admin with the password {password} (shown only now)")
        say("Each node's /readyz says whether it leads or follows. Ctrl-C stops them all.")
        _supervise_all(children, lambda: stopping, say)
        return 0
    finally:
        stop_all(children)
        if nats is not None:
            nats.stop()
        if postgres is not None:
            postgres.remove()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise_all(
    children: list[Child], stopping: Callable[[], bool], say: Callable[[str], None]
) -> None:
    """Start every process that dies again after its backoff, saying so, until Ctrl-C."""
    while not stopping():
        now = time.monotonic()
        for child in children:
            if child.restart_at is None and not child.process.alive():
                wait = child.backoff.after_death(now - child.process.started_at)
                child.restart_at = now + wait
                say(
                    f"{child.name} stopped: {exit_status(child.process.popen.returncode)}. "
                    f"Starting it again in {wait:.0f} s."
                )
            elif child.restart_at is not None and now >= child.restart_at:
                child.process.start()
                child.restart_at = None
                say(f"{child.name} started again.")
        time.sleep(0.2)
