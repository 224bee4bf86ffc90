"""One connected device of a person, on one room server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moot.core.community import Device, RateLimit, State, partition_of
from moot.room.connection import Connection


@dataclass(eq=False)
class Member:
    """One connected device of a person."""

    conn: Connection
    pid: str
    name: str
    device: str
    state: State = State.AVAILABLE
    status: str = ""
    idle: bool = False
    chosen_at: float = 0.0
    watching: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)  # people whose messages it does not see
    rate: RateLimit = field(default_factory=RateLimit)

    @property
    def partition(self) -> str:
        return partition_of(self.pid)

    def send(self, message: dict[str, Any]) -> None:
        self.conn.send_text(json.dumps(message))

    def record(self, now: float, server: str) -> Device:
        return Device(self.state, self.status, self.idle, self.chosen_at, now, server)
