"""Raised hands as a pure state machine: apply(state, event, actor) -> state.

The queue is in the order hands went up; one hand per person (the join token's), shown
under the name they raised it with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moot.protocol.tools import HandLower, HandRaise, HandsLowerAll, ToolEvent
from moot.room.tools.base import Actor, Refused, Tool, only_moderators


@dataclass(frozen=True, slots=True)
class Hands:
    queue: tuple[tuple[str, str], ...] = ()  # (person, name), first raised first

    def raised(self, person: str) -> bool:
        return any(p == person for p, _ in self.queue)


def apply(state: Hands, event: ToolEvent, actor: Actor) -> Hands:
    if isinstance(event, HandRaise):
        if state.raised(actor.person):
            raise Refused("your hand is raised already")
        return Hands((*state.queue, (actor.person, actor.user)))
    if isinstance(event, HandLower):
        if event.user is None or event.user == actor.user:
            if not state.raised(actor.person):
                raise Refused("your hand is not raised")
            return Hands(tuple(h for h in state.queue if h[0] != actor.person))
        only_moderators(actor, "lower someone else's hand")
        kept = tuple(h for h in state.queue if h[1].casefold() != event.user.casefold())
        if len(kept) == len(state.queue):
            raise Refused(f"{event.user} has no hand raised")
        return Hands(kept)
    if isinstance(event, HandsLowerAll):
        only_moderators(actor, "lower every hand")
        return Hands()
    raise Refused(f"hands do not take {event.kind}")


def view(state: Hands, viewer: Actor) -> dict[str, Any]:
    return {"queue": [name for _, name in state.queue]}


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, HandRaise):
        return f"{actor.user} raised a hand"
    if isinstance(event, HandLower):
        if event.user is None or event.user == actor.user:
            return f"{actor.user} lowered their hand"
        return f"{actor.user} lowered the hand of {event.user}"
    if isinstance(event, HandsLowerAll):
        return f"{actor.user} lowered every hand"
    return ""


TOOL: Tool[Hands] = Tool(
    name="hand",
    enabled_by=None,
    initial=Hands,
    apply=apply,
    view=view,
    announce=announce,
    personal=False,
)
