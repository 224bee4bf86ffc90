"""The presentation on the stage as a pure state machine: apply(state, event, actor) -> state.

One presentation at a time: which file, how many pages (the presenter's page read the PDF
and said so), and the presenter's page, which every page follows (a participant may look
ahead on their own: that is their page's business, never journaled). Which file may be
shown is checked in `prepare`, against the meeting's files as they are now; a replay never
asks again (a file removed since was shown then).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from moot.protocol.tools import SlidesClose, SlidesOpen, SlidesPage, ToolEvent
from moot.room.tools.base import Actor, Refused, Room, Tool, only_presenters

PDF = "application/pdf"


@dataclass(frozen=True, slots=True)
class Slides:
    file_id: int | None = None  # None: no presentation on the stage
    name: str = ""
    pages: int = 0
    page: int = 0  # the presenter's, 0 the first
    by: str = ""  # who opened it (the name they had)


def apply(state: Slides, event: ToolEvent, actor: Actor) -> Slides:
    if isinstance(event, SlidesOpen):
        only_presenters(actor, "show a presentation")
        return Slides(event.file_id, event.name, event.pages, 0, actor.user)
    if isinstance(event, SlidesPage):
        only_presenters(actor, "turn the presentation's page")
        if state.file_id is None:
            raise Refused("no presentation is open")
        if event.page >= state.pages:
            raise Refused(f"this presentation has {state.pages} pages")
        return replace(state, page=event.page)
    if isinstance(event, SlidesClose):
        only_presenters(actor, "close the presentation")
        if state.file_id is None:
            raise Refused("no presentation is open")
        return Slides()
    raise Refused(f"presentations do not take {event.kind}")


def prepare(state: Slides, event: ToolEvent, actor: Actor, room: Room) -> ToolEvent:
    """An opening names one of the meeting's PDF files; its name goes with it."""
    if not isinstance(event, SlidesOpen):
        return event
    found = room.files.get(event.file_id)
    if found is None:
        raise Refused("this file is not attached to the meeting (any more)")
    name, content_type = found
    if content_type != PDF:
        raise Refused(
            f"only PDF files are shown as slides; {name} can be downloaded from the meeting's Files"
        )
    return event.model_copy(update={"name": name})


def view(state: Slides, viewer: Actor) -> dict[str, Any]:
    """The same for everyone: the file (its link is in the page's files), the presenter's
    page."""
    if state.file_id is None:
        return {"open": False}
    return {
        "open": True,
        "file_id": state.file_id,
        "name": state.name,
        "pages": state.pages,
        "page": state.page,
        "by": state.by,
    }


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, SlidesOpen):
        return f"{actor.user} is presenting {event.name}"
    if isinstance(event, SlidesPage):
        return f"The presentation shows page {event.page + 1}"
    if isinstance(event, SlidesClose):
        return f"{actor.user} closed the presentation"
    return ""


TOOL: Tool[Slides] = Tool(
    name="slides",
    # Presentations are shown on the whiteboard's stage, as in Sametime: the form's
    # Whiteboard tool enables both.
    enabled_by="whiteboard",
    initial=Slides,
    apply=apply,
    view=view,
    announce=announce,
    prepare=prepare,
    personal=False,
)
