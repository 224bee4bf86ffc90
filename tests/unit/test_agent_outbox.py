"""The room agent's outbox: events survive a lost control link and go out on the next one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from moot.bus import Link, LinkClosed
from moot.protocol.control import ParticipantJoined, ServerLimits
from moot.room.agent import Agent
from moot.room.host import MeetingHost


class FakeLink(Link):
    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[str] = []
        self.fail_after = fail_after

    async def send_text(self, text: str) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise LinkClosed("gone")
        self.sent.append(text)

    async def receive_text(self) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        pass


def joined(user: str) -> ParticipantJoined:
    return ParticipantJoined(
        meeting_id="m1", epoch=1, user=user, role="participant", at=datetime.now(UTC)
    )


async def test_events_left_by_a_lost_link_go_out_on_the_next_one() -> None:
    host = MeetingHost()
    agent = Agent(
        name="r",
        url="http://r",
        secret="s",
        limits=ServerLimits(max_active_meetings=1, max_users_per_meeting=1),
        host=host,
        dial=lambda: asyncio.sleep(0),
    )  # type: ignore[arg-type,return-value]
    host.post(joined("Ann"))
    host.post(joined("Bob"))
    broken = FakeLink(fail_after=1)
    with pytest.raises(LinkClosed):
        await agent._forward_outbox(broken)
    assert len(broken.sent) == 1 and "Ann" in broken.sent[0]
    assert [e.user for e in host.outbox] == ["Bob"]  # kept, not lost

    fresh = FakeLink()
    task = asyncio.create_task(agent._forward_outbox(fresh))
    for _ in range(50):
        if fresh.sent:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert len(fresh.sent) == 1 and "Bob" in fresh.sent[0]  # without a new event posted
    assert not host.outbox
