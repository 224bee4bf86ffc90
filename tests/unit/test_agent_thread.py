"""The agent on a thread of its own: a room server whose meetings keep its event loop busy
still reports on time, and still carries out the EMS's commands once that loop is free.

Real threads and event loops; only the control link is in memory.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from moot.bus import Link
from moot.infra.tokens import generate_private_key, public_key_pem
from moot.protocol.control import OpenMeeting, Registered, ServerLimits
from moot.room.agent import Agent
from moot.room.host import MeetingHost

HEARTBEAT = 0.2


class MemoryLink(Link):
    """The EMS's side in memory: accepts the registration, then sends what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, object]]] = []  # (monotonic, message)
        self._lock = threading.Lock()
        self._down: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.registered = Registered(
            heartbeat_interval=HEARTBEAT,
            join_token_public_key=public_key_pem(generate_private_key()),
            limits=ServerLimits(max_active_meetings=5, max_users_per_meeting=50),
        ).model_dump_json()

    async def send_text(self, text: str) -> None:
        with self._lock:
            self.sent.append((time.monotonic(), json.loads(text)))

    async def receive_text(self) -> str:
        if self._down is None:
            self._loop = asyncio.get_running_loop()
            self._down = asyncio.Queue()
            return self.registered
        return await self._down.get()

    def command(self, text: str) -> None:
        """Send a command down, from any thread."""
        assert self._loop is not None and self._down is not None
        self._loop.call_soon_threadsafe(self._down.put_nowait, text)

    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        pass

    def of(self, kind: str) -> list[tuple[float, dict[str, object]]]:
        with self._lock:
            return [(at, m) for at, m in self.sent if m["type"] == kind]


async def test_reports_go_out_on_time_while_the_meetings_loop_is_busy() -> None:
    link = MemoryLink()

    async def dial() -> Link:
        return link

    host = MeetingHost()
    agent = Agent(
        name="room1",
        url="http://room1",
        secret="s",
        limits=ServerLimits(max_active_meetings=5, max_users_per_meeting=50),
        host=host,
        dial=dial,
    )
    running = asyncio.create_task(agent.run_in_thread())
    try:
        for _ in range(200):
            if link.of("status"):
                break
            await asyncio.sleep(0.01)
        assert agent.registered.is_set()

        # The meetings' loop is busy for 1.5 s (a fan-out to thousands, a storm of joins):
        # it runs no callback at all meanwhile.
        busy_from = time.monotonic()
        time.sleep(1.5)  # noqa: ASYNC251 (blocking the loop is the point)
        busy_until = time.monotonic()
        during = [at for at, _ in link.of("status") if busy_from <= at <= busy_until]
        assert len(during) >= 5, f"only {len(during)} reports in 1.5 s"  # about 7 due

        # A command that needs the meetings' loop is carried out once it is free.
        link.command(
            OpenMeeting(
                request_id="r1", meeting_id="m1", epoch=1, name="Weekly", moderator="Ann"
            ).model_dump_json()
        )
        for _ in range(200):
            if link.of("command_result"):
                break
            await asyncio.sleep(0.01)
        assert [m["request_id"] for _, m in link.of("command_result")] == ["r1"]
        assert "m1" in host.meetings
        for _ in range(100):  # and the next report says so
            reported = [m["meetings"] for _, m in link.of("status")][-1]
            if reported:
                break
            await asyncio.sleep(0.05)
        assert [m["meeting_id"] for m in reported] == ["m1"]  # type: ignore[union-attr]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert not any(t.name.startswith("moot-control") for t in threading.enumerate())
