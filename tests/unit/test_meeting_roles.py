"""Roles in the meeting engine: a grant counts at once for everything the person does and
sees, reaches their page at once, and is rebuilt from the journal (a failover, a reload)."""

from __future__ import annotations

from moot.protocol.client import Draw
from moot.protocol.tools import (
    BoardElement,
    BoardPolicy,
    Grant,
    Lock,
    PollCreate,
    PollVote,
    TakeBack,
)
from tests.unit.test_meeting_host import settle
from tests.unit.test_meeting_tools import Journal, host_with, join, last_state


async def test_a_granted_moderator_moderates_sees_live_results_and_loses_it_on_take_back() -> None:
    journal = Journal()
    host = host_with(journal, ["polls", "whiteboard"])
    mia, _ = join(host, "Mia", "moderator")
    ada, ada_socket = join(host, "Ada")
    await host.tools.tool_event(
        "m1", mia, "p", PollCreate(poll_id="p", question="Q", options=["a", "b"])
    )
    await host.tools.tool_event("m1", mia, "v", PollVote(poll_id="p", choices=[0]))
    await host.tools.tool_event("m1", ada, "l0", Lock())
    await settle()
    assert ada_socket.of("error")[-1]["message"] == "only a moderator can lock the meeting"

    await host.tools.tool_event("m1", mia, "g", Grant(user="ada", role="moderator"))
    await settle()
    # Her page is told at once: her role, and the poll as a moderator sees it (live results).
    assert last_state(ada_socket, "moderation")["you"] == {"role": "moderator", "muted": False}
    assert last_state(ada_socket, "poll")["polls"][0]["results"] == [1, 0]  # type: ignore[index]
    await host.tools.tool_event("m1", ada, "l1", Lock())
    await host.tools.tool_event("m1", ada, "w", BoardPolicy(who="moderators"))
    await settle()
    assert {"type": "ack", "id": "l1"} in ada_socket.sent
    assert host.get("m1").tool_states["moderation"].locked
    # The journal keeps the token's role; the replay raises it by the grant, as live.
    assert journal.entries[-1].body["role"] == "participant"
    rebuilt = host_with(Journal(), ["polls", "whiteboard"], journal.entries)
    assert rebuilt.get("m1").tool_states == host.get("m1").tool_states
    assert rebuilt.get("m1").actor("Ada", "guest:ada", "participant").moderates

    await host.tools.tool_event("m1", mia, "t", TakeBack(user="Ada"))
    await settle()
    assert last_state(ada_socket, "moderation")["you"]["role"] == "participant"  # type: ignore[index]
    assert last_state(ada_socket, "poll")["polls"][0]["results"] is None  # type: ignore[index]
    # Only moderators (and presenters) draw now, and she is neither any more: her live
    # strokes go nowhere.
    _, ben_socket = join(host, "Ben", "moderator")
    element = BoardElement(id="s", shape="pen", points=[(1, 1)])
    host.tools.draw("m1", ada, Draw(page=0, element=element))
    await settle()
    assert ben_socket.of("drawing") == []


async def test_a_page_that_joins_again_gets_its_granted_role() -> None:
    host = host_with(Journal(), ["chat"])
    mia, _ = join(host, "Mia", "moderator")
    ada, _ = join(host, "Ada")
    await host.tools.tool_event("m1", mia, "g", Grant(user="Ada", role="presenter"))
    host.leave("m1", ada)
    _, again = join(host, "Ada")  # a reload: the same person, the token's role
    await settle()
    assert last_state(again, "moderation")["you"]["role"] == "presenter"  # type: ignore[index]
    assert last_state(again, "moderation")["roles"] == {"Ada": "presenter"}
    assert host.get("m1").actor("Ada", "guest:ada", "participant").presents
