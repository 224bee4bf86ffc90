"""A meeting's polls and their results, read from its journal (the rows of kind `poll`).

The room server journals each poll's opening, votes and closing; the closing carries the
final count per option and, for a named poll, who chose what (protocol/tools.py,
PollClose). So the results kept with the meeting are exactly those its pages showed, and
the EMS needs no replay of the room server's state machine.

An open poll has live counts, as its moderators see them on the meeting page: each
person's last vote (a changed vote replaces the earlier one; the room server journals only
the votes it accepted, while the poll was open), marked `open`.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.store import tool_events
from moot.protocol.tools import PollClose, PollCreate, PollVote, record_of

log = logging.getLogger("moot.ems.polls")


@dataclass(slots=True)
class PollResult:
    id: str
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    created_by: str
    opened_at: datetime
    closed_at: datetime | None = None
    # Votes per option, and (named polls) each voter's choices: final once closed, live
    # (each person's last vote) while open.
    results: list[int] | None = None
    ballots: dict[str, list[int]] | None = None
    # While open: person -> (their name when they voted, their choices), last vote wins.
    live: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    # Votes cast (a changed vote counts once more): how busy it was, not the result.
    votes: int = 0
    voters: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        return "open" if self.closed_at is None else "closed"


class PollResults:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def of_meeting(self, meeting_id: str) -> list[PollResult]:
        async with self._sessions() as session:
            rows = await tool_events.events_of(session, meeting_id, "poll")
        polls: dict[str, PollResult] = {}
        for row in rows:
            try:
                record = record_of(row.body)
            except ValidationError:
                log.warning("meeting %s: skipped poll event %s", meeting_id, row.event_id)
                continue
            event = record.event
            if isinstance(event, PollCreate):
                polls[event.poll_id] = PollResult(
                    id=event.poll_id,
                    question=event.question,
                    options=list(event.options),
                    multiple=event.multiple,
                    anonymous=event.anonymous,
                    created_by=row.sender,
                    opened_at=row.at,
                )
            elif isinstance(event, PollVote) and event.poll_id in polls:
                poll = polls[event.poll_id]
                poll.votes += 1
                poll.voters.add(record.person)
                poll.live[record.person] = (row.sender, list(event.choices))
            elif isinstance(event, PollClose) and event.poll_id in polls:
                poll = polls[event.poll_id]
                poll.closed_at = row.at
                poll.results = list(event.results)
                poll.ballots = None if poll.anonymous else dict(event.ballots)
        for poll in polls.values():
            if poll.closed_at is None:
                _count_live(poll)
        return list(polls.values())


def _count_live(poll: PollResult) -> None:
    counts = [0] * len(poll.options)
    for _, choices in poll.live.values():
        for choice in choices:
            if 0 <= choice < len(counts):
                counts[choice] += 1
    poll.results = counts
    poll.ballots = None if poll.anonymous else dict(poll.live.values())


def csv_text(polls: list[PollResult]) -> str:
    """One row per option of each poll; voters' names only for a named poll."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["poll", "question", "status", "option", "votes", "voters"])
    for poll in polls:
        for index, option in enumerate(poll.options):
            votes = "" if poll.results is None else str(poll.results[index])
            names = sorted(n for n, chosen in (poll.ballots or {}).items() if index in chosen)
            writer.writerow([poll.id, poll.question, poll.status, option, votes, "; ".join(names)])
    return out.getvalue()
