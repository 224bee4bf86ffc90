"""`moot demo` starts a dead room server again: soon, then later each time it dies soon."""

from __future__ import annotations

import signal

from moot.demo import RESTART_AFTER, RESTART_MAX, STABLE_AFTER, Backoff
from moot.harness.processes import exit_status


def test_a_server_that_keeps_dying_waits_longer_each_time_up_to_the_most() -> None:
    backoff = Backoff()
    waits = [backoff.after_death(ran_for=1.0) for _ in range(8)]
    assert waits == [3.0, 6.0, 12.0, 24.0, 48.0, 60.0, 60.0, 60.0]
    assert waits[0] == RESTART_AFTER and waits[-1] == RESTART_MAX


def test_a_server_that_ran_a_while_before_it_died_is_started_again_soon() -> None:
    backoff = Backoff()
    for _ in range(4):
        backoff.after_death(ran_for=1.0)
    assert backoff.after_death(ran_for=STABLE_AFTER) == RESTART_AFTER


def test_exit_status_names_the_signal() -> None:
    assert exit_status(-signal.SIGKILL) == "killed by SIGKILL (exit code -9)"
    assert exit_status(1) == "exit code 1"
