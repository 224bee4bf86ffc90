"""Child processes of Moot (or any command): start, wait for, stop, and read their logs.

What the demo, the tests and the benchmarks share. A child writes to a log file of its own
(or, with no log, to our own output, as the demo's do). Stopping sends SIGCONT first: a
child a test or a benchmark froze with SIGSTOP cannot act on SIGTERM otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 30.0  # seconds a process may take to become ready
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
POLL = 0.05  # seconds between two looks at a condition


class HarnessError(AssertionError):
    """A child died or did not become ready in time, or wrote a traceback. An
    AssertionError, so that a test meeting it fails (with the children's logs) rather
    than errors."""


def moot_command(*args: str) -> list[str]:
    """`moot ARGS` as this interpreter runs it."""
    return [sys.executable, "-m", "moot", *args]


def exit_status(code: int) -> str:
    """How a process ended, in words: a signal by its name, or the exit code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"killed by signal {-code} (exit code {code})"
    return f"exit code {code}"


def die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Process:
    """One child: how it was started (so it can be started again) and its log."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of os.environ
    log: Path | None = None  # None: the child writes to our own output
    cwd: Path | None = None
    die_with_parent: bool = False
    popen: subprocess.Popen[bytes] = field(init=False)
    started_at: float = field(init=False, default=0.0)  # time.monotonic()

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        """Start the process (again, once it has ended: the same command and settings)."""
        handle = self.log.open("ab") if self.log is not None else None
        try:
            self.popen = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=handle,
                stderr=subprocess.STDOUT if handle is not None else None,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        finally:
            if handle is not None:
                handle.close()
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """What the process wrote so far (empty without a log)."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")

    def send(self, sig: int) -> None:
        """Send a signal if the process still runs."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def terminate(self) -> None:
        """Ask it to stop (SIGCONT first: a stopped process cannot act on SIGTERM)."""
        self.send(signal.SIGCONT)
        self.send(signal.SIGTERM)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_GRACE) -> int:
        """Send `sig` (after SIGCONT), wait up to `timeout` s, then kill; the exit code."""
        self.send(signal.SIGCONT)
        self.send(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = STOP_GRACE) -> int:
        """Wait up to `timeout` s for it to end, then kill it; the exit code."""
        try:
            return self.popen.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def has_traceback(self) -> bool:
        return "Traceback" in self.output()


def stop_side_by_side(processes: Iterable[Process], grace: float = STOP_GRACE) -> None:
    """SIGTERM to all at once, then wait for each (all within `grace` s), then kill."""
    group = list(processes)
    for process in group:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in group:
        process.wait(deadline - time.monotonic())


class Processes:
    """The children started in one working directory, each logging to NAME.log there."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Process] = []

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(
            name, command, env or {}, log=self.workdir / f"{name}.log", cwd=self.workdir
        )
        self.children.append(process)
        return process

    def forget(self, process: Process) -> None:
        """Stop the process and no longer count it among ours."""
        process.stop()
        if process in self.children:
            self.children.remove(process)

    def stop_all(self) -> None:
        """Stop every child, newest first."""
        while self.children:
            self.forget(self.children[-1])

    def logs(self, tail: int | None = None) -> str:
        """Every child's log (its last `tail` characters), for an error message."""
        return "\n".join(
            f"--- {p.name}\n{p.output()[-tail:] if tail else p.output()}" for p in self.children
        )

    def with_tracebacks(self) -> list[str]:
        """The names of the children whose logs hold a traceback."""
        return [p.name for p in self.children if p.has_traceback()]


def wait_for(
    condition: Callable[[], bool],
    what: str,
    watch: Iterable[Process] = (),
    timeout: float = START_TIMEOUT,
    logs: Callable[[], str] = lambda: "",
) -> None:
    """Until `condition()` holds; HarnessError at once if a watched process dies, or after
    `timeout` s (with `logs()`)."""
    watched = list(watch)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for process in watched:
            if not process.alive():
                raise HarnessError(
                    f"{process.name} exited ({exit_status(process.popen.returncode)}) while "
                    f"waiting for {what}:\n{process.output()}"
                )
        time.sleep(POLL)
    raise HarnessError(f"timed out waiting for {what}\n{logs()}")
