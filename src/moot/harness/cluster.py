"""A Moot cluster of real processes on one machine: an EMS and its room servers.

The tests, the benchmarks and anyone trying Moot out start one the same way: each process
is `python -m moot ...` with its settings in the environment, logging to a file of the
working directory; readiness is a positive signal (the EMS answers /readyz, a room server
shows `online` in the EMS's API), never a sleep.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx

from moot.harness.ports import free_port
from moot.harness.processes import (
    START_TIMEOUT,
    HarnessError,
    Process,
    Processes,
    moot_command,
    stop_side_by_side,
    wait_for,
)
from moot.infra.certs import ClusterCerts, client_ssl_context

HOST = "127.0.0.1"
SECRET = "test-cluster-secret"


class Cluster:
    """An EMS with its room servers; stop() ends every process it started.

    With tls (the cluster's certificates, from moot.infra.certs.init_cluster), the EMS serves
    HTTPS and asks for client certificates signed by tls.ca, and each room server serves
    HTTPS, verifies the EMS against tls.ca and presents tls.servers[name] as its client
    certificate (when there is one). start_room's env overrides any of these.

    Every process reads an empty moot.toml (no developer's settings leak in) unless its env
    says otherwise; `log_level`, when given, is every process's MOOT_LOG_LEVEL. `procs`:
    the group the processes join (one of the caller's, stopped with its other children).
    """

    def __init__(
        self,
        workdir: Path,
        database_url: str | None = None,
        *,
        secret: str = SECRET,
        tls: ClusterCerts | None = None,
        log_level: str | None = None,
        ems_port: int | None = None,
        ports: Callable[[], int] = free_port,
        procs: Processes | None = None,
        community_bus: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'moot.db'}"
        self.secret = secret
        self.tls = tls
        self.ports = ports
        self.ems_port = ems_port if ems_port is not None else ports()
        self.procs = procs if procs is not None else Processes(workdir)
        self.ems: Process | None = None
        self.rooms: dict[str, Process] = {}  # the newest process of each room server
        # Community services: every room server on this NATS, under names of this cluster's
        # own (a shared NATS serves many clusters: tests side by side).
        self.community_bus = community_bus
        self.community_prefix = f"t{secrets.token_hex(6)}"
        self._client: httpx.Client | None = None
        self._starts: Counter[str] = Counter()
        empty = workdir / "empty-moot.toml"
        empty.write_text("")
        self.common = {"MOOT_DATA_DIR": str(workdir / "data"), "MOOT_CONFIG": str(empty)}
        # Room servers start no Janus unless asked (start_room(..., MOOT_JANUS="auto")): a
        # cluster of the tests or benchmarks that uses no audio/video spares the processes.
        self.common["MOOT_JANUS"] = "off"
        if log_level is not None:
            self.common["MOOT_LOG_LEVEL"] = log_level

    # -- where and how to reach it ------------------------------------------------------

    @property
    def processes(self) -> list[Process]:
        """Every process started and not forgotten, oldest first."""
        return self.procs.children

    @property
    def ems_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{HOST}:{self.ems_port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx checks the servers' certificates with: the cluster CA under TLS."""
        return client_ssl_context(self.tls.ca.cert) if self.tls is not None else True

    @property
    def admin(self) -> dict[str, str]:
        """Headers of an administrator: the cluster secret, as the CLI on a cluster machine."""
        return {"Authorization": f"Bearer {self.secret}"}

    @property
    def client(self) -> httpx.Client:
        """An HTTP client kept for the cluster's life, which keeps no cookies: each request
        is as httpx.get would send it. A new client (as each httpx.get makes) loads the CA
        bundle first, some 25 ms of CPU, which polling every 50 ms while processes start
        would spend again and again."""
        if self._client is None:
            no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
            self._client = httpx.Client(
                verify=self.verify, trust_env=False, timeout=5, cookies=no_cookies
            )
        return self._client

    def http(self) -> httpx.Client:
        """An administrator's HTTP client that trusts the cluster CA (only it) when TLS is on."""
        return httpx.Client(verify=self.verify, trust_env=False, timeout=5, headers=self.admin)

    def ems_tls_env(self) -> dict[str, str]:
        if self.tls is None:
            return {}
        return {
            "MOOT_TLS_CERT": str(self.tls.ems.cert),
            "MOOT_TLS_KEY": str(self.tls.ems.key),
            "MOOT_TLS_CLIENT_CA": str(self.tls.ca.cert),
        }

    def room_tls_env(self, name: str) -> dict[str, str]:
        if self.tls is None:
            return {}
        env = {"MOOT_TLS_CA": str(self.tls.ca.cert)}
        paths = self.tls.servers.get(name)
        if paths is not None:
            env |= {
                "MOOT_ROOM_TLS_CERT": str(paths.cert),
                "MOOT_ROOM_TLS_KEY": str(paths.key),
                "MOOT_ROOM_CLIENT_CERT": str(paths.cert),
                "MOOT_ROOM_CLIENT_KEY": str(paths.key),
            }
        return env

    def community_env(self) -> dict[str, str]:
        if self.community_bus is None:
            return {}
        return {
            "MOOT_COMMUNITY_BUS_URL": self.community_bus,
            "MOOT_COMMUNITY_PREFIX": self.community_prefix,
        }

    # -- starting -----------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        """`moot ARGS` as a process of this cluster, logging to NAME.log."""
        return self.procs.spawn(name, moot_command(*args), {**self.common, **env})

    def start_ems(self, **env: str) -> Process:
        self.ems = self.start_ems_node("ems", self.ems_port, **env)
        return self.ems

    def start_ems_node(self, name: str, port: int, **env: str) -> Process:
        """An EMS process on `port`: the EMS, or another node of several (a nats:// bus_url
        in `common` or env) on the same database."""
        process = self.spawn(
            name,
            ["serve", "--host", HOST, "--port", str(port)],
            {
                "MOOT_DATABASE_URL": self.database_url,
                "MOOT_CLUSTER_SECRET": self.secret,
                **self.ems_tls_env(),
                **env,
            },
        )
        scheme = "https" if self.tls is not None else "http"
        ready = f"{scheme}://{HOST}:{port}/readyz"
        self.wait_for(lambda: self._status(ready) == 200, f"EMS {name} to be ready", process)
        return process

    def start_room(
        self, name: str, *, secret: str | None = None, wait: bool = True, **env: str
    ) -> Process:
        """A room server; one started again under the same name logs to NAME.2.log, ..."""
        self._starts[name] += 1
        starts = self._starts[name]
        where = ["--host", HOST, "--port", str(self.ports()), "--ems-url", self.ems_url]
        process = self.spawn(
            name if starts == 1 else f"{name}.{starts}",
            ["room", "--name", name, *where],
            {
                "MOOT_CLUSTER_SECRET": self.secret if secret is None else secret,
                **self.room_tls_env(name),
                **self.community_env(),
                **env,
            },
        )
        self.rooms[name] = process
        if wait:
            self.wait_online(name)
        return process

    def start_rooms(self, *names: str, **env: str) -> list[Process]:
        """Start room servers side by side, then wait until every one is registered."""
        started = [self.start_room(name, wait=False, **env) for name in names]
        for name in names:
            self.wait_online(name)
        return started

    def wait_online(self, name: str) -> None:
        """Until the EMS shows room server `name` online (its process watched)."""
        self.wait_for(
            lambda: self.server_status(name) == "online",
            f"room server {name} to register",
            self.rooms.get(name),
        )

    # -- asking the EMS -----------------------------------------------------------------

    def _status(self, path: str) -> int:
        """The status of GET `path` on the EMS (or of a whole URL)."""
        url = path if "://" in path else self.ems_url + path
        try:
            return self.client.get(url, timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def moot(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`moot ARGS --ems-url ...` in a process of its own, as an administrator runs it."""
        env = {**os.environ, "MOOT_CLUSTER_SECRET": self.secret}  # the CLI administers with it
        if self.tls is not None:
            env["MOOT_TLS_CA"] = str(self.tls.ca.cert)
        return subprocess.run(
            [sys.executable, "-m", "moot", *args, "--ems-url", self.ems_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )

    def server_status(self, name: str) -> str | None:
        try:
            response = self.client.get(
                f"{self.ems_url}/api/v1/servers/{name}", timeout=2, headers=self.admin
            )
        except httpx.HTTPError:
            return None
        return str(response.json()["status"]) if response.status_code == 200 else None

    def servers(self) -> list[dict[str, Any]]:
        """GET /api/v1/servers, as the administrator."""
        response = self.client.get(f"{self.ems_url}/api/v1/servers", timeout=10, headers=self.admin)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def server_summary(self) -> str:
        """Each room server's status and meetings, for an error message."""
        try:
            rows = self.servers()
        except httpx.HTTPError as exc:
            return f"(the EMS did not answer: {exc})"
        return ", ".join(f"{s['name']} {s['status']} {s['active_meetings']}" for s in rows)

    def quiet(self) -> bool:
        """Every room server of ours online and reporting no meeting."""
        try:
            servers = [s for s in self.servers() if s["name"] in self.rooms]
        except httpx.HTTPError:
            return False
        return len(servers) == len(self.rooms) and all(
            s["status"] == "online" and s["active_meetings"] == 0 for s in servers
        )

    def events(self, name: str) -> list[tuple[float, str, str]]:
        """The server's changes of state, newest first: (wall-clock time, state, why)."""
        response = self.client.get(
            f"{self.ems_url}/api/v1/servers/{name}/events", timeout=10, headers=self.admin
        )
        response.raise_for_status()
        return [
            (
                datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp(),
                str(e["state"]),
                str(e["reason"]),
            )
            for e in response.json()
        ]

    def failed_at(self, name: str) -> float | None:
        """Wall-clock time of the server's latest change to `failed`, from its history."""
        return next((at for at, state, _ in self.events(name) if state == "failed"), None)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the EMS's /metrics (0 if it has none yet)."""
        from prometheus_client.parser import text_string_to_metric_families

        response = self.client.get(self.ems_url + "/metrics", timeout=5)
        if response.status_code != 200:
            raise HarnessError(f"/metrics answered {response.status_code}: {response.text}")
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def detector_ran(self, times: int = 2) -> None:
        """Until the EMS's failure detector has run `times` more times: whatever it decides
        as of now (a server failed, a drain deadline passed) is decided and counted by then.
        The positive signal before a test says that nothing moved."""
        runs = "moot_failure_detector_runs_total"
        before = self.metric(runs)
        self.wait_for(lambda: self.metric(runs) >= before + times, "the failure detector to run")

    def wait_for(
        self,
        condition: Callable[[], bool],
        what: str,
        process: Process | None = None,
        timeout: float = START_TIMEOUT,
    ) -> None:
        """Until `condition()` holds; HarnessError (with every log) when `process` dies or
        the time is up."""
        watch = [process] if process is not None else []
        wait_for(condition, what, watch, timeout, self.procs.logs)

    # -- stopping -----------------------------------------------------------------------

    def stop(self, check: bool = True) -> None:
        """Stop every process; with `check`, a traceback in any log is a HarnessError
        (errors must be clear).

        The room servers (and any other process) side by side, then the EMS, so that each
        room server can still tell it that it shuts down. Our own kept-alive connection is
        closed first: an EMS on HTTPS waits for an idle connection's TLS close_notify, which
        a client that reads nothing never answers (a SIGKILL 10 s later, every time)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        stop_side_by_side(p for p in reversed(self.processes) if p is not self.ems)
        if self.ems is not None:
            self.ems.stop()
        broken = self.procs.with_tracebacks()
        if check and broken:
            raise HarnessError(f"traceback in the log of {', '.join(broken)}:\n{self.procs.logs()}")

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
