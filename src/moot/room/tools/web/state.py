"""The web page on the stage as a pure state machine: apply(state, event, actor) -> state.

One page at a time: its address, and whether the site lets other sites frame it (the room
server asked the site before the event was journaled: room/tools/web/framing.py), with why
not, so every page shows a frame, or a link and the reason, never a blank frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moot.protocol.tools import ToolEvent, WebClose, WebShare
from moot.room.tools.base import Actor, Refused, Tool, only_presenters


@dataclass(frozen=True, slots=True)
class WebPage:
    url: str | None = None  # None: no web page on the stage
    frameable: bool = False
    reason: str = ""
    by: str = ""


def apply(state: WebPage, event: ToolEvent, actor: Actor) -> WebPage:
    if isinstance(event, WebShare):
        only_presenters(actor, "send a web page")
        return WebPage(event.url, event.frameable, event.reason, actor.user)
    if isinstance(event, WebClose):
        only_presenters(actor, "take the web page off the stage")
        if state.url is None:
            raise Refused("no web page is shown")
        return WebPage()
    raise Refused(f"send web page does not take {event.kind}")


def view(state: WebPage, viewer: Actor) -> dict[str, Any]:
    if state.url is None:
        return {"open": False}
    return {
        "open": True,
        "url": state.url,
        "frameable": state.frameable,
        "reason": state.reason,
        "by": state.by,
    }


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, WebShare):
        return f"{actor.user} sent a web page: {event.url}"
    if isinstance(event, WebClose):
        return f"{actor.user} took the web page off the stage"
    return ""


TOOL: Tool[WebPage] = Tool(
    name="web",
    enabled_by="send_web_page",
    initial=WebPage,
    apply=apply,
    view=view,
    announce=announce,
    personal=False,
)
