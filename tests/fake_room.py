"""A room server in the test's process, on the EMS's control WebSocket (TestClient)."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Literal

from fastapi.testclient import TestClient

from moot.bus.direct import CONTROL_PATH
from moot.protocol import PROTOCOL_VERSION
from moot.protocol.control import (
    CommandResult,
    MeetingStatus,
    Participant,
    Register,
    ServerLimits,
    Status,
)

SECRET = "secret"
REFUSAL = "this room server is out of memory"

# How the fake answers a kind of command: ok, ok=False with REFUSAL, or not at all.
Answer = Literal["ok", "refuse", "silent"]


class FakeRoom:
    """A room server in the test's process: it registers, then a thread answers every
    command with ok, or as `answers` says for its type (`answers["open_meeting"] =
    "refuse"`). `report` sends a status report."""

    def __init__(self, api: TestClient, name: str, **limits: Any) -> None:
        self.name = name
        self.opened: list[str] = []
        self.commands: list[dict[str, Any]] = []  # every command the EMS sent, in order
        self.answers: dict[str, Answer] = {}
        self._context = api.websocket_connect(CONTROL_PATH)
        self._ws = self._context.__enter__()
        limits = {"max_active_meetings": 10, "max_users_per_meeting": 10, **limits}
        register = Register(
            name=name,
            url=f"http://{name}.test",
            protocol_version=PROTOCOL_VERSION,
            secret=SECRET,
            limits=ServerLimits(**limits),
        )
        self._ws.send_text(register.model_dump_json())
        assert json.loads(self._ws.receive_text())["type"] == "registered"
        self._thread = threading.Thread(target=self._answer, daemon=True)
        self._thread.start()

    def _answer(self) -> None:
        with contextlib.suppress(Exception):  # ends when the test closes the connection
            while True:
                message = json.loads(self._ws.receive_text())
                self.commands.append(message)
                answer = self.answers.get(message["type"], "ok")
                if message["type"] == "open_meeting" and answer == "ok":
                    self.opened.append(message["meeting_id"])
                if "request_id" in message and answer != "silent":
                    result = CommandResult(
                        request_id=message["request_id"],
                        ok=answer == "ok",
                        error="" if answer == "ok" else REFUSAL,
                    )
                    self._ws.send_text(result.model_dump_json())

    def report(self, participants: dict[str, int], epoch: int = 1) -> None:
        """A status report: each meeting with that many participants."""
        status = Status(
            seq=1,
            meetings=[
                MeetingStatus(
                    meeting_id=meeting_id,
                    epoch=epoch,
                    participants=[
                        Participant(user=f"u{i}", role="participant") for i in range(count)
                    ],
                )
                for meeting_id, count in participants.items()
            ],
            logins=0,
            cpu_percent=0.0,
            memory_percent=0.0,
        )
        self._ws.send_text(status.model_dump_json())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._context.__exit__(None, None, None)
        self._thread.join(timeout=5)
