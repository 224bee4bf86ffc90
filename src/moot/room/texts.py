"""What a person is told when the room server refuses them: sending too fast, a name taken,
a message it will not take."""

from __future__ import annotations

import json
import math

from pydantic import ValidationError


def too_fast_text(per_minute: int, wait: float, what: str = "chat lines") -> str:
    return (
        f"you are sending {what} too fast: at most {per_minute} a minute here;"
        f" wait {max(1, math.ceil(wait))} s"
    )


def name_taken_text(name: str) -> str:
    return (
        f"Someone else in this meeting is called {name}: "
        "open the meeting again and choose another name."
    )


def invalid_text(exc: ValidationError) -> str:
    """A message the room server will not take, said with the field at fault: "points: List
    should have at most 2000 items", not the bare rule (of which of the event's numbers?)."""
    errors = exc.errors()
    if not errors:
        return "malformed message"
    first = errors[0]
    # The location reads (message type, "event", event kind, field, ...): keep the fields.
    names = [str(part) for part in first["loc"] if isinstance(part, str) and "." not in part]
    fields = [n for n in names if n not in {"tool", "event", "chat", "draw", "react"}]
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{' '.join(fields)}: {message}" if fields else message


def message_id(data: str) -> str | None:
    """The `id` of a chat line or tool event the room server refuses as malformed, so the
    page drops that one (it would send it again after every reconnect) and says why."""
    try:
        found = json.loads(data).get("id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) and 0 < len(found) <= 64 else None
