"""A PostgreSQL of one test's own, from Debian's programs: a fault test may stop, kill and
start it again without touching the machine's shared PostgreSQL.

initdb refuses to run as root (CI runs as root): there, the cluster belongs to the
`postgres` user, and its programs run as that user (started with its uid, so that a signal
sent to the process reaches PostgreSQL itself, not a wrapper). Its files live in a
directory of their own under the system's temporary directory (a test's tmp_path is not
reachable by another user), removed by `remove()`. Trust authentication on 127.0.0.1 only,
no fsync: a test's data, not anyone's.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from moot.harness.processes import die_with_parent

HOST = "127.0.0.1"
POSTGRES_USER = "postgres"


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL's program directory, or None if none is installed."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def why_not() -> str:
    """Why a private PostgreSQL cannot run here ("" if it can)."""
    if postgres_bin() is None:
        return "no PostgreSQL programs in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return "running as root, and there is no `postgres` user to run initdb as"
    return ""


class PrivatePostgres:
    """One PostgreSQL server on `port`; start(), stop(), kill() and start() again."""

    def __init__(self, port: int, log: Path) -> None:
        problem = why_not()
        if problem:
            raise RuntimeError(problem)
        self.port = port
        self.log = log
        self._bin = postgres_bin() or Path()
        self.directory = Path(tempfile.mkdtemp(prefix="moot-postgres-"))
        # As root, every program runs as `postgres`: (uid, gid), else None (ourselves).
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            user = pwd.getpwnam(POSTGRES_USER)
            self._user = (user.pw_uid, user.pw_gid)
            os.chown(self.directory, *self._user)
        self.data = self.directory / "data"
        self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its `postgres` database, as the EMS takes a database URL."""
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/postgres"

    def _as(self) -> dict[str, Any]:
        """subprocess's arguments that run a program as the cluster's owner."""
        if self._user is None:
            return {"cwd": self.directory}
        return {
            "user": self._user[0],
            "group": self._user[1],
            "extra_groups": [],
            "cwd": self.directory,
        }

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=120, **self._as()
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Serve on 127.0.0.1:port until it accepts connections."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self._bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    f"listen_addresses={HOST}",
                    "-c",
                    f"unix_socket_directories={self.directory}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                **self._as(),
            )
        if not self._accepting(timeout=30):
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}:\n{self.output()}")

    def _accepting(self, timeout: float) -> bool:
        """Until it accepts queries (after its start-up or crash recovery), or the time is up;
        pg_isready tells, where a port that accepts would say too early."""
        deadline = time.monotonic() + timeout
        ready = [str(self._bin / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port)]
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            if subprocess.run(ready, check=False, timeout=10).returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def stop(self, sig: int = signal.SIGINT) -> None:
        """A fast shutdown (SIGINT: clients are disconnected, the data stays); SIGKILL is a
        crash, recovered from the WAL at the next start."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def remove(self) -> None:
        """Stop it and delete its files."""
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
