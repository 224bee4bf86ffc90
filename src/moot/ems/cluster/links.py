"""The control links: a room server's handshake (authentication, fencing, reopening),
then its messages up (reports, command results, journal appends, meeting events), until
the link drops; and the EMS's own shutdown of every link."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from moot.bus import Link, LinkClosed
from moot.core.meeting_status import MeetingStatus
from moot.core.placement import ServerState
from moot.ems.cluster.bookings import Bookings
from moot.ems.cluster.commands import CommandFailed, Commands
from moot.ems.cluster.context import ClusterContext, limits_of, live_from_row
from moot.ems.cluster.failover import Failover
from moot.ems.cluster.journal import JournalWriter
from moot.ems.cluster.recorded_media import MediaReceiver
from moot.ems.cluster.registry import LiveServer
from moot.ems.cluster.states import ServerStates
from moot.ems.store import hosting
from moot.ems.store import meetings as meeting_store
from moot.ems.store import servers as server_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import RoomServerRow
from moot.infra.certs import EMS_NAME
from moot.protocol import PROTOCOL_VERSION, is_compatible
from moot.protocol.control import (
    CommandResult,
    JournalAppend,
    MeetingEnded,
    ParticipantJoined,
    ParticipantLeft,
    RecordedMedia,
    Refused,
    Register,
    Registered,
    ShuttingDown,
    Status,
    parse_up,
)

log = logging.getLogger("moot.ems.cluster")

REGISTER_TIMEOUT = 5.0
# Messages that write to the store: applied in order, off the link's reader (serve_link).
_Queued = ParticipantJoined | ParticipantLeft | MeetingEnded | ShuttingDown | RecordedMedia
_QUEUED = (ParticipantJoined, ParticipantLeft, MeetingEnded, ShuttingDown, RecordedMedia)


class Links:
    def __init__(
        self,
        ctx: ClusterContext,
        *,
        cluster_secret: str,
        public_key_pem: str,
        auto_register: bool,
        states: ServerStates,
        commands: Commands,
        bookings: Bookings,
        failover: Failover,
        journal: JournalWriter,
    ) -> None:
        self._ctx = ctx
        self._secret = cluster_secret
        self._public_key_pem = public_key_pem
        self._auto_register = auto_register
        self._states = states
        self._commands = commands
        self._bookings = bookings
        self._failover = failover
        self._journal = journal
        self._media = MediaReceiver(ctx.sessions)
        self._serving: set[asyncio.Task[object]] = set()  # the handlers of control links

    async def serve_link(self, link: Link) -> None:
        """Handshake, then read the room server's messages until the link drops.

        Reports, command results and journal appends are handled as they arrive; meeting
        events (which write to the store) go through a queue of their own, in order, so a
        burst of them (a meeting of 200 ending) never holds up the reports behind them:
        a report read late looks like a silent server, and a command result read late
        like a room server that did not answer.
        """
        server = await self._handshake(link)
        if server is None:
            return
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        events: asyncio.Queue[_Queued | None] = asyncio.Queue()
        applying = self._ctx.in_background(self._apply_events(server, events))
        try:
            while True:
                text = await link.receive_text()
                server.last_message_at = time.monotonic()
                try:
                    message = parse_up(text)
                except ValidationError as exc:
                    log.warning("room server %s sent a malformed message: %s", server.name, exc)
                    continue
                if isinstance(message, _QUEUED):
                    events.put_nowait(message)
                else:
                    await self._dispatch(server, message)
        except LinkClosed:
            pass
        finally:
            events.put_nowait(None)
            # Shielded: a handler cancelled mid-write (shutdown) still records the loss.
            await asyncio.shield(self._ctx.in_background(self._link_done(server, link, applying)))

    async def _apply_events(
        self, server: LiveServer, events: asyncio.Queue[_Queued | None]
    ) -> None:
        while (message := await events.get()) is not None:
            try:
                await self._dispatch(server, message)
            except Exception:  # one bad event must not stop the ones after it
                log.exception("room server %s: %s could not be applied", server.name, message)

    async def _link_done(
        self, server: LiveServer, link: Link, applying: asyncio.Task[None]
    ) -> None:
        """After its last events are applied: the link is lost, unless a new one replaced it."""
        await applying
        self._media.forget(server)  # a file half sent comes again whole on the next link
        if server.link is link:
            await self._states.link_lost(server)

    async def _handshake(self, link: Link) -> LiveServer | None:
        try:
            first = parse_up(await asyncio.wait_for(link.receive_text(), REGISTER_TIMEOUT))
        except (TimeoutError, ValidationError, LinkClosed) as exc:
            await self._refuse(link, "?", f"the first message must be a valid register ({exc})")
            return None
        if not isinstance(first, Register):
            await self._refuse(link, "?", "the first message must be register")
            return None
        how, refusal = self._authenticate(link, first)
        if refusal is not None:
            await self._refuse(link, first.name, refusal)
            return None
        if not is_compatible(first.protocol_version):
            await self._refuse(
                link,
                first.name,
                f"protocol version {first.protocol_version} is not compatible with the "
                f"cluster's {PROTOCOL_VERSION}",
            )
            return None
        async with self._ctx.sessions() as session:
            row = await server_store.get_server(session, first.name)
            if row is None:
                if not self._auto_register:
                    await self._refuse(
                        link,
                        first.name,
                        f"unknown room server {first.name!r}: add it with `moot servers add`",
                    )
                    return None
                row = RoomServerRow(
                    name=first.name,
                    url=first.url,
                    max_active_meetings=first.limits.max_active_meetings,
                    max_users_per_meeting=first.limits.max_users_per_meeting,
                    instant_meetings=first.limits.instant_meetings,
                    location=first.limits.location,
                    draining=False,
                )
                session.add(row)
                log.info("room server %s added to the cluster on first registration", row.name)
            row.url = first.url
            row.status = ServerState.ONLINE.value
            row.last_seen_at = utcnow()
            await session.commit()
            live = self._ctx.registry.get(row.name) or live_from_row(row)
            live.url = row.url
            live.limits = limits_of(row)
            live.draining = row.draining
            stale_meetings = await self._fence(session, row.name, first)
            hosted = await meeting_store.meetings_on_server(session, row.name)
            reported = {m.meeting_id for m in first.meetings}
            lost = [m.id for m in hosted if m.id not in reported]
            live.booked = {m.id: m.expected_participants for m in hosted}
            live.instant = {m.id for m in hosted if m.instant}
        old = live.link
        live.link = link
        live.disconnected_at = None
        live.last_report_at = time.monotonic()
        live.meetings = {
            m.meeting_id: m for m in first.meetings if m.meeting_id not in stale_meetings
        }
        self._ctx.registry.put(live)
        await self._states.set_state(live, ServerState.ONLINE, f"registered from {link.peer}")
        if old is not None:
            await old.close("replaced by a new connection from the same room server")
        try:
            await link.send(
                Registered(
                    heartbeat_interval=self._ctx.heartbeat,
                    join_token_public_key=self._public_key_pem,
                    limits=live.limits,
                )
            )
        except LinkClosed:  # gone before it heard back (it stopped): a lost link as any other
            if live.link is link:
                await self._states.link_lost(live)
            return None
        log.info("room server %s registered from %s (%s) %s", live.name, link.peer, live.url, how)
        # Before the commands below: a reopened meeting gets its configuration.
        self._ctx.events.server_registered.emit(live)
        # The answers come through serve_link's reader, so these commands run in the background.
        for meeting_id, runs_on in stale_meetings.items():  # fencing
            reason = "this meeting moved" if runs_on else "this meeting has ended"
            self._ctx.in_background(
                self._commands.send_close(live, meeting_id, reason, moved=runs_on)
            )
        for meeting_id in lost:  # the room server restarted and forgot them
            self._ctx.in_background(self._reopen(live, meeting_id))
        if self._bookings.unbooked:  # scheduled meetings that found no server: one may now
            self._bookings.unbooked = False
            self._ctx.in_background(self._bookings.book_unbooked())
        return live

    async def close(self) -> None:
        """Before the store closes: stop background work and store pending warnings.

        Work left running would wait forever on a store that has closed.
        """
        # Let work in flight finish: a task cancelled in the middle of a query leaves its
        # connection to be terminated, and aiosqlite's close of it can hang the loop's exit.
        # So close the control links and let their handlers record that, then wait for the
        # rest. Room servers reconnect when the EMS is back.
        self._ctx.stopping = True
        for server in self._ctx.registry.all():
            if server.link is not None:
                with contextlib.suppress(LinkClosed):
                    await server.link.close("the EMS is stopping")
        if self._serving:
            await asyncio.wait(set(self._serving), timeout=5.0)
        if self._ctx.background:
            _, late = await asyncio.wait(set(self._ctx.background), timeout=5.0)
            for task in late:
                task.cancel()
        try:
            await asyncio.wait_for(self._ctx.capacity.settle(), 5.0)
        except TimeoutError:
            log.warning("capacity warnings not stored before shutdown")

    async def _reopen(self, server: LiveServer, meeting_id: str) -> None:
        """Open a meeting again, with a new epoch, on the server that forgot it."""
        async with self._ctx.sessions() as session:
            meeting = await meeting_store.get_meeting(session, meeting_id)
        if meeting is None or meeting.status != MeetingStatus.IN_PROGRESS:
            return
        was_epoch = meeting.epoch
        epoch = was_epoch + 1
        try:  # no session held while the server answers
            await self._commands.send(server, await self._commands.open_command(meeting, epoch))
        except CommandFailed as exc:
            log.warning("could not reopen meeting %s on %s: %s", meeting_id, server.name, exc)
            return
        hosting.mark_hosted(meeting, server.name, epoch, None)
        async with self._ctx.sessions() as session:
            reopened = await hosting.record_hosted(
                session,
                meeting,
                was=MeetingStatus.IN_PROGRESS,
                was_epoch=was_epoch,
                previous_ended=f"{server.name} restarted",
                recording_allowed=self._ctx.recording_allowed(server.name),
            )
            await session.commit()
        if not reopened:  # it ended or moved meanwhile
            await self._commands.send_close(server, meeting_id, "the meeting ended meanwhile")
            return
        self._ctx.events.meeting_changed.emit(meeting_id)
        log.info(
            "meeting %s reopened on %s after its restart (epoch %d)", meeting_id, server.name, epoch
        )

    async def _fence(self, session: AsyncSession, name: str, register: Register) -> dict[str, bool]:
        """Meetings the room server still holds but must not: id -> whether it runs on."""
        stale: dict[str, bool] = {}
        for meeting in register.meetings:
            row = await meeting_store.get_meeting(session, meeting.meeting_id)
            running = row is not None and row.status == MeetingStatus.IN_PROGRESS
            if (
                not running
                or row is None
                or (row.server_name, row.epoch)
                != (
                    name,
                    meeting.epoch,
                )
            ):
                stale[meeting.meeting_id] = running
        return stale

    def _authenticate(self, link: Link, register: Register) -> tuple[str, str | None]:
        """How the room server proved it may join, or why it did not: (how, None) or
        ("", reason).

        Either proof is enough: the cluster secret, or a client certificate the cluster
        CA signed whose CN is the name it registers with. The transport verified the
        certificate in its TLS handshake (one from another CA never gets this far) and
        gives only the name it proves (link.certificate_name).
        """
        proven = link.certificate_name
        if proven is not None and proven.lower() == EMS_NAME:
            proven = None  # the EMS's own certificate (clientAuth too) is no room server's
        name = register.name
        if proven is not None and proven == name:
            return "by client certificate", None
        # An empty secret proves nothing, even to an EMS that was given none.
        secret_ok = bool(register.secret) and hmac.compare_digest(
            register.secret.encode(), self._secret.encode()
        )
        if secret_ok:
            if proven is not None:
                log.warning(
                    "room server %s from %s presents the client certificate of %r; "
                    "it joins with the cluster secret",
                    name,
                    link.peer,
                    proven,
                )
            return "with the cluster secret", None
        secret_problem = "wrong cluster secret" if register.secret else "no cluster secret"
        if proven is not None:
            return "", (
                f"{secret_problem}, and its client certificate is for {proven!r}, not {name!r}"
            )
        if not register.secret:
            return "", "no cluster secret and no client certificate"
        return "", secret_problem

    async def _refuse(self, link: Link, name: str, reason: str) -> None:
        log.warning("refused room server %s from %s: %s", name, link.peer, reason)
        with contextlib.suppress(LinkClosed):
            await link.send(Refused(reason=reason))
        await link.close(reason, refused=True)

    async def _shutting_down(self, server: LiveServer) -> None:
        """A server that says it is leaving: its meetings move at once."""
        link = server.link
        self._states.drop_link(server)
        await self._states.set_state(server, ServerState.OFFLINE, "it announced its shutdown")
        await self._failover.move_meetings_off(server)
        if link is not None:
            await link.close("shutdown acknowledged")

    async def _dispatch(self, server: LiveServer, message: object) -> None:
        if isinstance(message, Status):
            self._ctx.registry.report(server, message)
            self._ctx.capacity.check_report(server)
        elif isinstance(message, CommandResult):
            self._commands.answered(message)
        elif isinstance(message, JournalAppend):
            self._journal.submit(server, message)
        elif isinstance(message, ParticipantJoined | ParticipantLeft | MeetingEnded):
            await self._meeting_event(server, message)
        elif isinstance(message, ShuttingDown):
            await self._shutting_down(server)
        elif isinstance(message, RecordedMedia):
            await self._media.receive(server, message)
        else:
            log.warning("room server %s sent an unexpected %s", server.name, type(message))

    async def _meeting_event(
        self, server: LiveServer, event: ParticipantJoined | ParticipantLeft | MeetingEnded
    ) -> None:
        async with self._ctx.sessions() as session:
            meeting = await meeting_store.get_meeting(session, event.meeting_id)
            if (
                meeting is None
                or meeting.server_name != server.name
                or meeting.epoch != event.epoch
            ):
                log.warning(
                    "ignored %s from %s for meeting %s (not hosted there at epoch %s)",
                    event.type,
                    server.name,
                    event.meeting_id,
                    event.epoch,
                )
                return
            if isinstance(event, ParticipantJoined):
                await meeting_store.record_join(
                    session,
                    meeting_id=event.meeting_id,
                    user=event.user,
                    role=event.role,
                    server=server.name,
                    epoch=event.epoch,
                    at=event.at,
                )
            elif isinstance(event, ParticipantLeft):
                await meeting_store.record_leave(
                    session, meeting_id=event.meeting_id, user=event.user, at=event.at
                )
            else:
                # A repeating meeting ends only this occurrence: the series goes on.
                goes_on = await hosting.ended_inside(
                    session, meeting, event.at, event.ended_by, self._ctx.early_join
                )
                server.meetings.pop(meeting.id, None)
                self._ctx.registry.unhost(server, meeting.id)
                if goes_on:
                    self._ctx.registry.unbook(meeting.id)
                log.info(
                    "meeting %s: %s ended by %s on %s",
                    meeting.id,
                    "this occurrence" if goes_on else "the meeting",
                    event.ended_by,
                    server.name,
                )
            await session.commit()
        if isinstance(event, MeetingEnded):
            self._ctx.events.moderated.emit(event.meeting_id)  # a new occurrence: read afresh
            self._ctx.events.meeting_changed.emit(event.meeting_id)

    async def disconnect(self, name: str, reason: str) -> None:
        """Send a removed server away; it stops instead of reconnecting."""
        server = self._ctx.registry.remove(name)
        if server is not None and server.link is not None:
            link, server.link = server.link, None
            with contextlib.suppress(LinkClosed):
                await link.send(Refused(reason=reason))
            await link.close(reason, refused=True)
