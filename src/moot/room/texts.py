"""What a person is told when the room server refuses them: sending too fast, a name taken."""

from __future__ import annotations

import math


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
