"""A person's role in a meeting now: the join token's, raised by a moderator's grant.

Pure. The room server builds every `Actor` here (tool events, the views each page gets,
who may draw or end the meeting), so a grant counts everywhere at once; a replay builds
the actor of each journaled event the same way, from the state rebuilt so far (the
journal keeps the token's role: what the grants made of it follows from the journal).
"""

from __future__ import annotations

from moot.infra.tokens import Role
from moot.room.tools.base import Actor
from moot.room.tools.moderation.state import Moderation


def actor_of(state: Moderation, user: str, person: str, token_role: Role) -> Actor:
    granted = state.grant_of(person)
    role: Role = "moderator" if state.moderates(person, token_role) else "participant"
    return Actor(user=user, person=person, role=role, presenter=granted == "presenter")
