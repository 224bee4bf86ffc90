"""The failure detector's decision, as a table."""

from __future__ import annotations

import pytest

from moot.core.detector import Observation, Timing, assess
from moot.core.placement import ServerState

T = Timing(reconnect_grace=1.0, failure_after=3.0)
ON, SUS, FAIL, OFF = (
    ServerState.ONLINE,
    ServerState.SUSPECT,
    ServerState.FAILED,
    ServerState.OFFLINE,
)


@pytest.mark.parametrize(
    ("state", "connected", "since_report", "since_disconnect", "expected", "why"),
    [
        (ON, True, 0.5, None, ON, "reporting"),
        (ON, True, 2.9, None, ON, "a report late, not yet failed"),
        (ON, True, 3.0, None, FAIL, "hung: connected but silent for failure_after"),
        (ON, True, None, None, ON, "just registered, no report yet"),
        (SUS, False, 10.0, 0.5, SUS, "within the reconnect grace"),
        (SUS, False, 10.0, 1.0, FAIL, "grace over"),
        (SUS, False, None, -5.0, SUS, "after an EMS restart: allowance not yet over"),
        (SUS, True, 0.1, 0.5, ON, "reconnected in time"),
        (FAIL, False, 50.0, 50.0, FAIL, "stays failed until it registers again"),
        (OFF, False, None, None, OFF, "offline servers are left alone"),
    ],
)
def test_assess(
    state: ServerState,
    connected: bool,
    since_report: float | None,
    since_disconnect: float | None,
    expected: ServerState,
    why: str,
) -> None:
    seen = Observation(
        state=state,
        connected=connected,
        since_report=since_report,
        since_disconnect=since_disconnect,
    )
    assert assess(seen, T) is expected, why
