"""`moot demo`: an EMS and two room servers as child processes on 127.0.0.1.

With --tls, all of it over TLS: HTTPS for browsers, wss:// for the control channel
(verified against the demo's CA), room servers joining by client certificate.

The children die with us: on Ctrl-C or SIGTERM we stop them (SIGTERM, then
SIGKILL after a grace period), and on Linux the kernel sends them SIGTERM if
this process is killed outright (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from moot.certs import (
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
from moot.config import EmsSettings
from moot.ems.auth.users import ensure_first_admin
from moot.netcheck import ensure_port_free
from moot.secrets_file import load_or_create_cluster_secret

ROOM_NAMES = ("room1", "room2")
DEMO_HOSTS = ("127.0.0.1", "localhost")
READY_TIMEOUT = 60.0
STOP_GRACE = 5.0


class DemoFailed(Exception):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(name: str, args: list[str], env: dict[str, str]) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "moot", *args],
        env={**os.environ, **env},
        preexec_fn=_die_with_parent,
    )
    return Child(name, process)


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _wait_ready(
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
                if child.process.poll() is not None:
                    code = child.process.returncode
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

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        children.append(
            _spawn(
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
                _spawn(
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
        _wait_ready(ems_url, secret, children, len(ROOM_NAMES), lambda: stopping, verify)
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
        while not stopping:
            for child in children:
                if child.process.poll() is not None:
                    raise DemoFailed(f"{child.name} stopped (exit code {child.process.returncode})")
            time.sleep(0.2)
        return 0
    finally:
        stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
