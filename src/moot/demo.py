"""`moot demo`: an EMS and two room servers as child processes on 127.0.0.1 (with
--cluster: moot.demo_cluster).

With --tls, all of it over TLS: HTTPS for browsers, wss:// for the control channel
(verified against the demo's CA), room servers joining by client certificate.

The demo supervises its room servers, so failover can be watched: when one dies it says
which and how, the EMS moves its meetings to the other (their pages reconnect by
themselves), and the demo starts it again after a few seconds, waiting longer each time
it dies again soon (RESTART_AFTER, doubled up to RESTART_MAX). It comes back empty: the
EMS fences a server that returns after its meetings moved. Without the EMS there is no
demo: if the EMS dies, the demo says so and stops the room servers.

The children die with us: on Ctrl-C or SIGTERM we stop them (SIGTERM, then
SIGKILL after a grace period), and on Linux the kernel sends them SIGTERM if
this process is killed outright (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from moot.ems.auth.users import ensure_first_admin
from moot.harness.nats_server import nats_server_binary, nats_server_command, wait_listening
from moot.harness.ports import free_port
from moot.harness.processes import Process, exit_status, moot_command, stop_side_by_side
from moot.infra.certs import (
    CA_CERT,
    CA_KEY,
    EMS_NAME,
    CertError,
    CertPaths,
    ClusterCerts,
    client_ssl_context,
    init_cluster,
    issue_server_cert,
)
from moot.infra.netcheck import ensure_port_free
from moot.infra.secrets_file import load_or_create_cluster_secret
from moot.infra.settings import EmsSettings

ROOM_NAMES = ("room1", "room2")
DEMO_HOSTS = ("127.0.0.1", "localhost")
READY_TIMEOUT = 60.0
STOP_GRACE = 5.0
# A dead room server is started again after RESTART_AFTER seconds; if it dies again
# within STABLE_AFTER of its start, the wait doubles, up to RESTART_MAX.
RESTART_AFTER = 3.0
RESTART_MAX = 60.0
STABLE_AFTER = 60.0
# How often the demo asks the EMS about its room servers, to say what became of them.
WATCH_EVERY = 1.0


class DemoFailed(Exception):
    pass


@dataclass
class Backoff:
    """How long to wait before starting a dead room server again. Pure: no clock."""

    wait: float = RESTART_AFTER

    def after_death(self, ran_for: float) -> float:
        """The wait before the next start, for a server that died after `ran_for` s."""
        if ran_for >= STABLE_AFTER:
            self.wait = RESTART_AFTER
        now, self.wait = self.wait, min(self.wait * 2, RESTART_MAX)
        return now


@dataclass
class Child:
    """A process of the demo, and what the demo waits for it to do."""

    process: Process
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None  # dead, to be started again then
    # What to tell once the EMS shows it: that it failed over, that it is back online.
    await_failed: bool = False
    await_online: bool = False

    @property
    def name(self) -> str:
        return self.process.name


def spawn_child(name: str, args: list[str], env: dict[str, str]) -> Child:
    """`moot ARGS` writing to our own output, and killed with us (PR_SET_PDEATHSIG)."""
    return Child(Process(name, moot_command(*args), env, die_with_parent=True))


def stop_all(children: list[Child]) -> None:
    stop_side_by_side((child.process for child in children), STOP_GRACE)


def wait_ready(
    ems_url: str,
    secret: str,
    children: list[Child],
    expect_rooms: int,
    stopping: Callable[[], bool],
    verify: ssl.SSLContext | bool = True,
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0, verify=verify, trust_env=False) as client:
        while time.monotonic() < deadline and not stopping():
            for child in children:
                if not child.process.alive():
                    code = child.process.popen.returncode
                    raise DemoFailed(f"{child.name} exited with code {code}; its log is above")
            try:
                servers = client.get(
                    f"{ems_url}/api/v1/servers", headers={"Authorization": f"Bearer {secret}"}
                ).json()
                online = [s for s in servers if s["status"] == "online"]
                if len(online) >= expect_rooms:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
    if stopping():
        return
    raise DemoFailed(f"the room servers did not register within {READY_TIMEOUT:.0f}s")


def demo_certs(data_dir: Path) -> ClusterCerts:
    """The demo's CA and certificates in data_dir/certs: made on first use, then reused, so
    a browser told to trust its ca.pem once keeps trusting the demo. DemoFailed if unusable."""
    directory = (data_dir / "certs").resolve()  # children get absolute paths
    try:
        if not (directory / CA_CERT).exists():
            return init_cluster(directory, hosts=DEMO_HOSTS, servers=ROOM_NAMES)
        # A CA from an earlier run (or `moot certs init --dir`): add what is missing.
        leaves = {}
        for name in (EMS_NAME, *ROOM_NAMES):
            paths = CertPaths(cert=directory / f"{name}.pem", key=directory / f"{name}.key")
            if not (paths.cert.exists() and paths.key.exists()):
                paths = issue_server_cert(directory, name, DEMO_HOSTS)
            leaves[name] = paths
    except CertError as exc:
        raise DemoFailed(f"cannot make the demo's certificates in {directory}: {exc}") from exc
    ca = CertPaths(cert=directory / CA_CERT, key=directory / CA_KEY)
    servers = {name: leaves[name] for name in ROOM_NAMES}
    return ClusterCerts(directory=directory, ca=ca, ems=leaves[EMS_NAME], servers=servers)


def _tls_env(made: ClusterCerts) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Settings for the EMS and for each room server: HTTPS everywhere, the control channel
    verified against the CA, room servers proving their names with client certificates."""
    ems = {
        "MOOT_TLS_CERT": str(made.ems.cert),
        "MOOT_TLS_KEY": str(made.ems.key),
        "MOOT_TLS_CLIENT_CA": str(made.ca.cert),
    }
    rooms = {
        name: {
            "MOOT_ROOM_TLS_CERT": str(paths.cert),
            "MOOT_ROOM_TLS_KEY": str(paths.key),
            "MOOT_TLS_CA": str(made.ca.cert),
            "MOOT_ROOM_CLIENT_CERT": str(paths.cert),
            "MOOT_ROOM_CLIENT_KEY": str(paths.key),
            # No secret: the certificate is the proof, which is what --tls shows off.
            "MOOT_CLUSTER_SECRET": "",
        }
        for name, paths in made.servers.items()
    }
    return ems, rooms


def start_nats(host: str, data_dir: Path, say: Callable[[str], None]) -> tuple[Process | None, str]:
    """Debian's nats-server with JetStream for community services (presence, instant
    messages), on a free port, its files in the data directory; without it, none."""
    binary = nats_server_binary()
    if binary is None:
        say(
            "Community services (presence, instant messages) are off: nats-server is not "
            "installed (apt-get install nats-server), and MOOT_COMMUNITY_BUS_URL is not set."
        )
        return None, ""
    port = free_port()
    command = nats_server_command(binary, host, port, data_dir / "nats")
    log = data_dir / "nats-server.log"
    process = Process("nats-server", command, {}, log=log, die_with_parent=True)
    if not wait_listening(host, port):
        process.stop()
        say(f"Community services are off: nats-server did not start (see {log}).")
        return None, ""
    return process, f"nats://{host}:{port}"


def _database_url(data_dir: Path) -> str:
    """The demo EMS's database: MOOT_DATABASE_URL, else SQLite in the data directory."""
    return EmsSettings(data_dir=data_dir).resolved_database_url()


def run_demo(
    *,
    host: str,
    port: int,
    data_dir: Path,
    log_level: str,
    say: Callable[[str], None],
    use_tls: bool = False,
) -> int:
    ports = [port, port + 1, port + 2]
    for p in ports:
        ensure_port_free(host, p)
    secret, _ = load_or_create_cluster_secret(data_dir)
    scheme = "https" if use_tls else "http"
    ems_url = f"{scheme}://{host}:{port}"
    common = {
        "MOOT_CLUSTER_SECRET": secret,
        "MOOT_DATA_DIR": str(data_dir),
        "MOOT_LOG_LEVEL": log_level,
    }
    ems_env: dict[str, str] = {}
    room_env: dict[str, dict[str, str]] = {name: {} for name in ROOM_NAMES}
    verify: ssl.SSLContext | bool = True
    made: ClusterCerts | None = None
    if use_tls:
        made = demo_certs(data_dir)
        ems_env, room_env = _tls_env(made)
        try:
            verify = client_ssl_context(made.ca.cert)
        except CertError as exc:
            raise DemoFailed(str(exc)) from exc
    children: list[Child] = []
    stopping = False
    bus_url = os.environ.get("MOOT_COMMUNITY_BUS_URL", "")
    nats: Process | None = None
    if not bus_url:
        nats, bus_url = start_nats(host, data_dir, say)
    for env in room_env.values():
        env["MOOT_COMMUNITY_BUS_URL"] = bus_url

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        children.append(
            spawn_child(
                "the EMS",
                ["serve", "--host", host, "--port", str(port)],
                {
                    **common,
                    "MOOT_DATABASE_URL": os.environ.get("MOOT_DATABASE_URL", ""),
                    **ems_env,
                },
            )
        )
        for name, room_port in zip(ROOM_NAMES, ports[1:], strict=True):
            children.append(
                spawn_child(
                    f"room server {name}",
                    [
                        "room",
                        "--name",
                        name,
                        "--host",
                        host,
                        "--port",
                        str(room_port),
                        "--ems-url",
                        ems_url,
                    ],
                    {**common, **room_env[name]},
                )
            )
        wait_ready(ems_url, secret, children, len(ROOM_NAMES), lambda: stopping, verify)
        if stopping:
            return 0
        say(f"Meeting Center: {ems_url}/")
        if made is not None:
            say(
                f"TLS: the certificates come from the demo's own CA; trust "
                f"{made.ca.cert.resolve()} in your browser (or curl --cacert) to open it."
            )
        password = asyncio.run(ensure_first_admin(_database_url(data_dir), "stadmins"))
        if password is not None:
            say(f"Administrator: sign in as admin with the password {password} (shown only now)")
        say("Press Ctrl-C to stop the EMS and both room servers.")
        _supervise(children, ems_url, secret, verify, lambda: stopping, say)
        return 0
    finally:
        stop_all(children)
        if nats is not None:
            nats.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(
    children: list[Child],
    ems_url: str,
    secret: str,
    verify: ssl.SSLContext | bool,
    stopping: Callable[[], bool],
    say: Callable[[str], None],
) -> None:
    """Keep the room servers running until Ctrl-C; DemoFailed when the EMS dies."""
    ems, rooms = children[0], children[1:]
    next_look = 0.0
    with httpx.Client(timeout=2.0, verify=verify, trust_env=False) as client:
        while not stopping():
            now = time.monotonic()
            if not ems.process.alive():
                raise DemoFailed(
                    f"the EMS stopped: {exit_status(ems.process.popen.returncode)}. The demo "
                    "cannot go on without it, so it stopped the room servers too. Its log "
                    "is above; run `moot demo` again to start over."
                )
            for room in rooms:
                if room.restart_at is None and not room.process.alive():
                    wait = room.backoff.after_death(now - room.process.started_at)
                    room.restart_at = now + wait
                    room.await_failed, room.await_online = True, False
                    say(
                        f"{room.name} stopped: {exit_status(room.process.popen.returncode)}. The "
                        "EMS moves its meetings to the other room server; their pages "
                        f"reconnect by themselves. Starting it again in {wait:.0f} s."
                    )
                elif room.restart_at is not None and now >= room.restart_at:
                    room.process.start()  # the same command and settings
                    room.restart_at = None
                    room.await_online = True
                    say(f"{room.name} started again; it comes back empty (its meetings moved).")
            if now >= next_look and any(r.await_failed or r.await_online for r in rooms):
                next_look = now + WATCH_EVERY
                _tell_states(client, ems_url, secret, rooms, say)
            time.sleep(0.2)


def _tell_states(
    client: httpx.Client,
    ems_url: str,
    secret: str,
    rooms: list[Child],
    say: Callable[[str], None],
) -> None:
    """Say what the EMS made of a room server that died, and when it is back online."""
    try:
        answer = client.get(
            f"{ems_url}/api/v1/servers", headers={"Authorization": f"Bearer {secret}"}
        )
        servers: list[dict[str, Any]] = answer.json() if answer.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return  # asked again in a second
    by_name = {s["name"]: s for s in servers}
    for room in rooms:
        name = room.name.removeprefix("room server ")
        status = by_name.get(name, {}).get("status")
        if room.await_failed and status == "failed":
            room.await_failed = False
            hosts = ", ".join(
                f"{s['name']} hosts {s['active_meetings']}"
                for s in servers
                if s["name"] != name and s["status"] == "online"
            )
            say(f"The EMS marked {name} failed and moved its meetings ({hosts or 'no server'}).")
        elif room.await_online and status == "online":
            room.await_failed = room.await_online = False
            say(f"{room.name} is back online.")
