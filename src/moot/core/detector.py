"""The failure detector: two signals, one decision. Pure: no I/O, no clock of its own.

A dropped control connection makes a server SUSPECT, and FAILED unless it reconnects
within `reconnect_grace`. A server that stays connected but says nothing for
`failure_after` seconds is FAILED too: a hung process or a cut network closes nothing.
Any message counts, not only a report: a busy server's report may be read late behind
a burst of its events, which are no silence.
"""

from __future__ import annotations

from dataclasses import dataclass

from moot.core.placement import ServerState


@dataclass(frozen=True, slots=True)
class Timing:
    reconnect_grace: float
    failure_after: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What the EMS knows of one server at a moment (ages in seconds, None = never)."""

    state: ServerState
    connected: bool
    since_report: float | None  # since its last report or any other message
    since_disconnect: float | None


def assess(seen: Observation, timing: Timing) -> ServerState:
    """The state the server should be in now."""
    if seen.state is ServerState.SUSPECT:
        if seen.connected:
            return ServerState.ONLINE
        if seen.since_disconnect is not None and seen.since_disconnect >= timing.reconnect_grace:
            return ServerState.FAILED
        return ServerState.SUSPECT
    hung = seen.since_report is not None and seen.since_report >= timing.failure_after
    if seen.state is ServerState.ONLINE and seen.connected and hung:
        return ServerState.FAILED
    return seen.state
