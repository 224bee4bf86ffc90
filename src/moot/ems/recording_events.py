"""What a recording plays of the meeting tools' journal rows: the event as journaled, with
what the live meeting kept from its viewers kept from the recording's too, and a line for
the transcript.

The EMS reads tool events as plain JSON (the row's body is protocol/tools.py's ToolRecord):
it never imports the room server's state machines, and a tool it does not know (added to
the room server later) still plays, as a line that names its event. The recording page
rebuilds the board, the polls and the hands from these events in the browser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moot.ems.store.models import JournalRow

# A line for the transcript names at most this much of an unknown event's fields.
MAX_GENERIC = 200


@dataclass
class Anonymizer:
    """Per recording: a stand-in for each sender's person (the join token's id, which the
    recording does not show), and the meeting's anonymous polls."""

    people: dict[str, str] = field(default_factory=dict)
    anonymous_polls: set[str] = field(default_factory=set)
    poll_voters: dict[tuple[str, str], str] = field(default_factory=dict)
    polls: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # question, options

    def stand_in(self, person: str) -> str:
        return self.people.setdefault(person, f"p{len(self.people) + 1}")


@dataclass(frozen=True, slots=True)
class Played:
    user: str
    actor: str  # the sender's stand-in: their own undo, their one vote
    role: str
    event: dict[str, Any]
    line: str  # "" when the board or a panel shows it instead (a stroke, a vote)


def played(row: JournalRow, anonymizer: Anonymizer) -> Played:
    body = row.body if isinstance(row.body, dict) else {}
    event = dict(body.get("event") or {})
    person = str(body.get("person", ""))
    user = row.sender
    actor = anonymizer.stand_in(person)
    kind = str(event.get("kind", row.kind))
    poll_id = str(event.get("poll_id", ""))
    if kind == "poll.create":
        anonymizer.polls[poll_id] = (str(event.get("question", "")), list(event.get("options", [])))
        if event.get("anonymous", True):
            anonymizer.anonymous_polls.add(poll_id)
    if kind == "poll.vote":
        # Live, only moderators saw votes come in; the recording shows how many voted, and
        # the results from the closing. An anonymous poll's voter is nobody, and a stand-in
        # of that poll only (else a stroke by the same stand-in would name them).
        event.pop("choices", None)
        if poll_id in anonymizer.anonymous_polls:
            user = ""
            key = (poll_id, person)
            actor = anonymizer.poll_voters.setdefault(
                key, f"{poll_id}:{len(anonymizer.poll_voters)}"
            )
    event.pop("person", None)  # the person id behind a removed, muted or promoted name
    if isinstance(event.get("people"), dict):  # person id -> name (a mute of everyone)
        event["people"] = sorted(str(name) for name in event["people"].values())
    poll = anonymizer.polls.get(poll_id, ("", []))
    return Played(user, actor, str(body.get("role", "")), event, line(kind, user, event, poll))


def _page(event: dict[str, Any]) -> int:
    return int(event.get("page", 0)) + 1


def _results(event: dict[str, Any], poll: tuple[str, list[str]]) -> str:
    counts = event.get("results") or []
    shown = ", ".join(f"{option} {count}" for option, count in zip(poll[1], counts, strict=False))
    return f"{user_poll(poll)}: {shown}" if shown else user_poll(poll)


def user_poll(poll: tuple[str, list[str]]) -> str:
    return f"the poll “{poll[0]}”" if poll[0] else "a poll"


def line(
    kind: str, user: str, event: dict[str, Any], poll: tuple[str, list[str]] = ("", [])
) -> str:
    """The transcript's sentence for a tool event ("" for what the stage shows instead)."""
    if kind in ("board.add", "board.erase", "board.undo", "board.redo", "poll.vote"):
        return ""
    known: dict[str, Callable[[], str]] = {
        "board.clear": lambda: (
            f"{user} cleared the notes on a slide"
            if event.get("slide")
            else f"{user} cleared page {_page(event)} of the board"
        ),
        "board.add_page": lambda: f"{user} added a page to the board",
        "board.show_page": lambda: f"The board shows page {_page(event)}",
        "board.policy": lambda: (
            f"{user} let {'everyone' if event.get('who') == 'everyone' else 'moderators only'}"
            " draw on the board"
        ),
        "slides.open": lambda: f"{user} presented {event.get('name', '')}",
        "slides.page": lambda: f"The presentation shows page {_page(event)}",
        "slides.close": lambda: f"{user} closed the presentation",
        "web.share": lambda: f"{user} sent the web page {event.get('url', '')}",
        "web.close": lambda: f"{user} took the web page off the stage",
        "poll.create": lambda: f"{user} opened a poll: {event.get('question', '')}",
        "poll.close": lambda: f"{user} closed {_results(event, poll)}",
        "hand.raise": lambda: f"{user} raised a hand",
        "hand.lower": lambda: (
            f"{user} lowered their hand"
            if event.get("user") in (None, user)
            else f"{user} lowered the hand of {event.get('user')}"
        ),
        "hand.lower_all": lambda: f"{user} lowered every hand",
        "moderation.lock": lambda: f"{user} locked the meeting",
        "moderation.unlock": lambda: f"{user} unlocked the meeting",
        "moderation.remove": lambda: f"{user} removed {event.get('user', '')} from the meeting",
        "moderation.readmit": lambda: f"{user} let {event.get('user', '')} back in",
        "moderation.grant": lambda: f"{user} made {event.get('user', '')} {event.get('role', '')}",
        "moderation.take_back": lambda: f"{user} took back the role of {event.get('user', '')}",
        "moderation.mute": lambda: f"{user} muted {event.get('user', '')}",
        "moderation.mute_all": lambda: f"{user} muted everyone but the moderators",
        "moderation.unmute": lambda: f"{user} unmuted their microphone",
        "moderation.screens": lambda: (
            f"{user} let several people share a screen at once"
            if event.get("many")
            else f"{user} allowed one screen share at a time"
        ),
        "moderation.new_occurrence": lambda: "A new occurrence of the meeting began",
    }
    if kind in known:
        return known[kind]()
    # A tool this EMS does not know (one added later): its event, plainly.
    details = ", ".join(
        f"{k} {v}"
        for k, v in event.items()
        if k != "kind" and isinstance(v, str | int | float) and not isinstance(v, bool)
    )
    text = f"{user}: {kind}" + (f" ({details})" if details else "")
    return text[:MAX_GENERIC]
