"""Real EMS and room-server processes on 127.0.0.1 for integration and browser tests."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from moot.infra.certs import ClusterCerts, client_ssl_context
from tests.ports import free_port

START_TIMEOUT = 30.0


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.alive():
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


@dataclass
class Cluster:
    """An EMS with its room servers; stop() ends every process it started.

    With tls (the cluster's certificates, from moot.infra.certs.init_cluster), the EMS serves
    HTTPS and asks for client certificates signed by tls.ca, and each room server serves
    HTTPS, verifies the EMS against tls.ca and presents tls.servers[name] as its client
    certificate (when there is one). start_room's env overrides any of these.
    """

    workdir: Path
    database_url: str
    secret: str = "test-cluster-secret"
    ems_port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)
    ems: Process | None = None
    tls: ClusterCerts | None = None

    @property
    def ems_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.ems_port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx checks the servers' certificates with: the cluster CA under TLS."""
        return client_ssl_context(self.tls.ca.cert) if self.tls is not None else True

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

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        log = self.workdir / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "moot", *args],
            env={**os.environ, "MOOT_DATA_DIR": str(self.workdir / "data"), **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_ems(self, **env: str) -> Process:
        self.ems = self._spawn(
            "ems",
            ["serve", "--port", str(self.ems_port)],
            {
                "MOOT_DATABASE_URL": self.database_url,
                "MOOT_CLUSTER_SECRET": self.secret,
                **self.ems_tls_env(),
                **env,
            },
        )
        self.wait_for(lambda: self._get("/readyz") == 200, "the EMS to be ready", self.ems)
        return self.ems

    def start_room(
        self, name: str, *, secret: str | None = None, wait: bool = True, **env: str
    ) -> Process:
        port = free_port()
        process = self._spawn(
            name,
            ["room", "--name", name, "--port", str(port), "--ems-url", self.ems_url],
            {
                "MOOT_CLUSTER_SECRET": self.secret if secret is None else secret,
                **self.room_tls_env(name),
                **env,
            },
        )
        if wait:
            self.wait_for(
                lambda: self.server_status(name) == "online",
                f"room server {name} to register",
                process,
            )
        return process

    def start_rooms(self, *names: str, **env: str) -> list[Process]:
        """Start room servers side by side, then wait until every one is registered."""
        started = [self.start_room(name, wait=False, **env) for name in names]
        for name, process in zip(names, started, strict=True):
            self.wait_for(
                lambda name=name: self.server_status(name) == "online",  # type: ignore[misc]
                f"room server {name} to register",
                process,
            )
        return started

    def _get(self, path: str) -> int:
        try:
            return httpx.get(self.ems_url + path, timeout=2, verify=self.verify).status_code
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

    @property
    def admin(self) -> dict[str, str]:
        """Headers of an administrator: the cluster secret, as the CLI on a cluster machine."""
        return {"Authorization": f"Bearer {self.secret}"}

    def server_status(self, name: str) -> str | None:
        try:
            response = httpx.get(
                f"{self.ems_url}/api/v1/servers/{name}",
                timeout=2,
                verify=self.verify,
                headers=self.admin,
            )
        except httpx.HTTPError:
            return None
        return str(response.json()["status"]) if response.status_code == 200 else None

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the EMS's /metrics (0 if it has none yet)."""
        response = httpx.get(self.ems_url + "/metrics", timeout=5, verify=self.verify)
        assert response.status_code == 200, response.text
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
        condition: object,
        what: str,
        process: Process | None = None,
        timeout: float = START_TIMEOUT,
    ) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if process is not None and not process.alive():
                raise AssertionError(
                    f"{process.name} exited ({process.popen.returncode}) while waiting for "
                    f"{what}:\n{process.output()}"
                )
            time.sleep(0.05)
        logs = "\n".join(f"--- {p.name}\n{p.output()}" for p in self.processes)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def stop(self) -> None:
        """Stop every process; a traceback in any log fails the test (errors must be clear).

        The room servers (and any other process) side by side, then the EMS, so that each
        room server can still tell it that it shuts down."""
        rest = [p for p in reversed(self.processes) if p is not self.ems]
        for process in rest:
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)
        for process in rest:
            process.stop()
        if self.ems is not None:
            self.ems.stop()
        broken = [p.name for p in self.processes if "Traceback" in p.output()]
        if broken:
            logs = "\n".join(f"--- {p.name}\n{p.output()}" for p in self.processes)
            raise AssertionError(f"traceback in the log of {', '.join(broken)}:\n{logs}")
