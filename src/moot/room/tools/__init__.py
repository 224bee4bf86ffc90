"""The meeting tools of the room server: one folder per tool, each a pure state machine
(`state.py`: apply(state, event, actor) -> state) that the meeting engine (host.py) runs
on journaled events. See docs/architecture.md, "Meeting tools"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from moot.protocol.tools import ToolEvent
from moot.room.tools import base
from moot.room.tools.hands import state as hands
from moot.room.tools.moderation import state as moderation
from moot.room.tools.polls import state as polls
from moot.room.tools.slides import state as slides
from moot.room.tools.web import framing
from moot.room.tools.web import state as web
from moot.room.tools.whiteboard import state as whiteboard

# By name: the `kind` of their journal rows, the first part of their events' kinds.
TOOLS: dict[str, base.Tool[Any]] = {
    tool.name: tool
    for tool in (polls.TOOL, hands.TOOL, moderation.TOOL, whiteboard.TOOL, slides.TOOL, web.TOOL)
}

# I/O a tool's event needs before it is checked and journaled (outside the meeting's turn,
# so a slow site holds up no other event): may raise Refused, returns the event to apply.
CHECKS: dict[str, Callable[[ToolEvent, base.Actor], Awaitable[ToolEvent]]] = {
    web.TOOL.name: framing.check,
}


def enabled(tool: base.Tool[Any], meeting_tools: list[str]) -> bool:
    return tool.enabled_by is None or tool.enabled_by in meeting_tools


def disabled_text(tool: base.Tool[Any]) -> str:
    return f"this meeting does not have {tool.enabled_by or tool.name} (see its Tools)"
