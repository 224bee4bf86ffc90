"""What the benchmarks that start real processes share: a process supervisor, a small
HTTP/1.1 client, CPU and event-loop lag meters, percentiles, and where they ran.

Used by bench/failover.py and bench/room.py (the older scripts keep their own copies
until the benchmarks are unified).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from moot.infra.netcheck import free_port

START_TIMEOUT = 30.0
HOST = "127.0.0.1"
SECRET = "bench-cluster-secret"
ADMIN = {"Authorization": f"Bearer {SECRET}"}  # the administrator, as the CLI


# -- processes -------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGCONT)  # a stopped process cannot act on TERM
                self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Processes:
    """Every process the benchmark starts; stop_all() ends them, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as handle:
            popen = subprocess.Popen(
                [sys.executable, *args],
                env={**os.environ, **env},
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def forget(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        while self.children:
            self.forget(self.children[-1])


def wait_for(
    condition: Callable[[], bool], what: str, child: Child | None, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if child is not None and not child.alive():
            raise RuntimeError(
                f"{child.name} exited ({child.popen.returncode}) while waiting for {what}:\n"
                f"{child.output()[-3000:]}"
            )
        time.sleep(0.05)
    output = f":\n{child.output()[-3000:]}" if child is not None else ""
    raise RuntimeError(f"timed out waiting for {what}{output}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_open_files(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


# -- a cluster: one EMS and its room servers ------------------------------------------


def server_summary(cluster: Cluster) -> str:
    """Each room server's status and meetings, for an error message."""
    try:
        rows = cluster.servers()
    except httpx.HTTPError as exc:
        return f"(the EMS did not answer: {exc})"
    return ", ".join(f"{s['name']} {s['status']} {s['active_meetings']}" for s in rows)


class Cluster:
    """The EMS and its room servers, all on 127.0.0.1."""

    def __init__(
        self, procs: Processes, log_level: str, rooms: int, database_url: str | None = None
    ) -> None:
        self.procs = procs
        self.log_level = log_level
        data = procs.workdir / "data"
        empty_config = procs.workdir / "empty.toml"  # no developer's moot.toml leaks in
        empty_config.write_text("")
        self.common = {
            "MOOT_CLUSTER_SECRET": SECRET,
            "MOOT_DATA_DIR": str(data),
            "MOOT_CONFIG": str(empty_config),
        }
        self.ems_port = free_port()
        self.ems_url = f"http://{HOST}:{self.ems_port}"
        self.ems = procs.spawn(
            "ems",
            ["-m", "moot", "serve", "--host", HOST, "--port", str(self.ems_port)],
            {
                **self.common,
                # INFO: the EMS logs how long moving a failed server's meetings took.
                "MOOT_LOG_LEVEL": "info",
                "MOOT_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{data / 'moot.db'}",
            },
        )
        wait_for(lambda: self._status("/readyz") == 200, "the EMS to be ready", self.ems)
        self.rooms: dict[str, Child] = {}
        self.generation: Counter[str] = Counter()
        for index in range(1, rooms + 1):
            self.start_room(f"room{index}", wait=False)
        for name, child in self.rooms.items():
            wait_for(lambda n=name: self.server_status(n) == "online", f"{name} to register", child)

    def _status(self, path: str) -> int:
        try:
            return httpx.get(self.ems_url + path, timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def start_room(self, name: str, *, wait: bool = True) -> Child:
        self.generation[name] += 1
        args = ["--name", name, "--host", HOST, "--port", str(free_port())]
        child = self.procs.spawn(
            f"{name}.{self.generation[name]}",
            ["-m", "moot", "room", *args, "--ems-url", self.ems_url],
            {**self.common, "MOOT_LOG_LEVEL": self.log_level},
        )
        self.rooms[name] = child
        if wait:
            wait_for(lambda: self.server_status(name) == "online", f"{name} to register", child)
        return child

    def server_status(self, name: str) -> str | None:
        try:
            response = httpx.get(f"{self.ems_url}/api/v1/servers/{name}", timeout=2, headers=ADMIN)
        except httpx.HTTPError:
            return None
        return str(response.json()["status"]) if response.status_code == 200 else None

    def servers(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.ems_url}/api/v1/servers", timeout=10, headers=ADMIN)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def quiet(self) -> bool:
        """Every room server online and reporting no meeting."""
        try:
            servers = [s for s in self.servers() if s["name"] in self.rooms]
        except httpx.HTTPError:
            return False
        return len(servers) == len(self.rooms) and all(
            s["status"] == "online" and s["active_meetings"] == 0 for s in servers
        )

    def events(self, name: str) -> list[tuple[float, str, str]]:
        """The server's changes of state, newest first: (wall-clock time, state, why)."""
        response = httpx.get(
            f"{self.ems_url}/api/v1/servers/{name}/events", timeout=10, headers=ADMIN
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


# -- a small HTTP/1.1 client -----------------------------------------------------------


class Http:
    """One keep-alive connection, one request at a time: what one browser tab holds.

    Written out here because the rejoin storm must not make this process the bottleneck:
    a request costs a few tens of microseconds of this process's CPU.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None and self._writer is not None
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            )
            try:
                self._writer.write(head.encode() + body)
                raw = await self._reader.readuntil(b"\r\n\r\n")
                lines = raw.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                answer = {}
                for line in lines[1:]:
                    if line:
                        key, _, value = line.partition(":")
                        answer[key.strip().lower()] = value.strip()
                if "content-length" not in answer:
                    raise RuntimeError(f"{method} {path}: an answer without Content-Length")
                data = await self._reader.readexactly(int(answer["content-length"]))
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                self.close()
                if fresh or attempt == 2:  # a kept-alive connection may have timed out
                    raise
                continue
            if answer.get("connection", "").lower() == "close":
                self.close()
            return status, answer, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class HttpPool:
    """A few connections shared by concurrent requests, one request per connection."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self._all = [Http(host, port) for _ in range(size)]
        self._free: asyncio.Queue[Http] = asyncio.Queue()
        for http in self._all:
            self._free.put_nowait(http)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        http = await self._free.get()
        try:
            return await http.request(method, path, body, headers)
        finally:
            self._free.put_nowait(http)

    def close(self) -> None:
        for http in self._all:
            http.close()


class LoopLag:
    """How late this process's event loop wakes up: it shows a saturated load generator."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, time.monotonic() - before - self.period)

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.worst


# -- figures ---------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value below which p % of the sample lies)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def code_version() -> str:
    """Which moot the processes run: its path, and the commit of its tree if it is one."""
    import moot

    where = Path(moot.__file__).parent
    git = ["git", "-C", str(where)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"{where} (not a git tree)"
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True
    ).stdout.strip()
    return f"{where} (commit {head.stdout.strip()}{', with uncommitted changes' if dirty else ''})"
