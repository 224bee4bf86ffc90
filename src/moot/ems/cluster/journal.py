"""The journal writer: meeting events made durable in batches, then acknowledged.

Every event a room server sends is stored before its `journal_ack` goes back; the
room server shows and acknowledges the event only after that. Events that arrive
while a batch commits wait for the next one, so one commit carries many events
(bench/journal.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.bus import LinkClosed
from moot.ems import metrics
from moot.ems.cluster.events import Signal
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import journal as store
from moot.infra.metrics import timed
from moot.protocol.control import JournalAck, JournalAppend, JournalEntry

log = logging.getLogger("moot.ems.journal")

MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Pending:
    server: LiveServer
    append: JournalAppend


class JournalWriter:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], moderated: Signal[str] | None = None
    ) -> None:
        self._sessions = sessions
        self._moderated = moderated
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()

    def submit(self, server: LiveServer, append: JournalAppend) -> None:
        self._queue.put_nowait(_Pending(server, append))

    async def run(self) -> None:
        """Write batches for as long as the EMS runs."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                acks = await self._write(batch)
            except Exception:
                log.exception("could not store %d journal event(s)", len(batch))
                metrics.JOURNAL_ACK_ERRORS.labels(reason="store_failed").inc(len(batch))
                acks = [(p, "the EMS could not store it") for p in batch]
            for pending, error in acks:
                await self._acknowledge(pending, error)

    @timed(metrics.JOURNAL_BATCH_SECONDS)
    async def _write(self, batch: list[_Pending]) -> list[tuple[_Pending, str]]:
        async with self._sessions() as session:
            hosts = await store.hosts_of(session, {p.append.meeting_id for p in batch})
            outcome: list[tuple[_Pending, str]] = []
            rows = []
            for pending in batch:
                event = pending.append
                if hosts.get(event.meeting_id) != (pending.server.name, event.epoch):
                    # Fencing: an old epoch, or a server that no longer hosts it.
                    outcome.append((pending, "this meeting is not hosted there at that epoch"))
                    metrics.JOURNAL_ACK_ERRORS.labels(reason="fenced").inc()
                    continue
                entry = event.entry
                rows.append(
                    {
                        "meeting_id": event.meeting_id,
                        "epoch": event.epoch,
                        "event_id": entry.event_id,
                        "sender": entry.sender,
                        "kind": entry.kind,
                        "body": entry.body,
                        "at": entry.at,
                    }
                )
                outcome.append((pending, ""))
            await store.append(session, rows)
            await session.commit()
            metrics.JOURNAL_EVENTS.inc(len(rows))
        if self._moderated is not None:  # stored: what the door kept of them is stale
            for meeting_id in {str(r["meeting_id"]) for r in rows if r["kind"] == "moderation"}:
                self._moderated.emit(meeting_id)
        return outcome

    @staticmethod
    async def _acknowledge(pending: _Pending, error: str) -> None:
        link = pending.server.link
        if link is None:
            return  # the room server will not show the event; its client resends it
        event = pending.append
        ack = JournalAck(
            meeting_id=event.meeting_id,
            sender=event.entry.sender,
            event_id=event.entry.event_id,
            ok=not error,
            error=error,
        )
        with contextlib.suppress(LinkClosed):
            await link.send(ack)


def entries_of(rows: list[store.JournalRow]) -> list[JournalEntry]:
    return [
        JournalEntry(event_id=r.event_id, sender=r.sender, kind=r.kind, body=r.body, at=r.at)
        for r in rows
    ]
