"""The cluster manager: registers room servers, reads their reports, sends commands.

One `serve_link` task runs per connected room server. Commands wait for the
room server's `command_result`, so a caller knows whether a meeting opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.bus import Link, LinkClosed
from moot.core.capacity_plan import HourPlan, PlanWarning, ServerCapacity, plan
from moot.core.detector import Observation, Timing, assess
from moot.core.meeting_status import MeetingStatus
from moot.core.placement import HOUR, MeetingRequest, Placement, ServerState, hour_span, place
from moot.ems import metrics
from moot.ems.cluster.capacity_warnings import CapacityWatch
from moot.ems.cluster.journal import JournalWriter, entries_of
from moot.ems.cluster.registry import Booking, LiveServer, Registry
from moot.ems.store import journal as journal_store
from moot.ems.store import meetings as meeting_store
from moot.ems.store import recordings as recording_store
from moot.ems.store import servers as server_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow, RoomServerRow
from moot.infra.certs import EMS_NAME
from moot.protocol import PROTOCOL_VERSION, is_compatible
from moot.protocol.control import (
    ApplyConfig,
    CloseMeeting,
    CommandResult,
    JournalAppend,
    JournalEntry,
    MeetingEnded,
    MeetingFile,
    MeetingFiles,
    Notice,
    OpenMeeting,
    ParticipantJoined,
    ParticipantLeft,
    Refused,
    Register,
    Registered,
    ServerLimits,
    ShuttingDown,
    Status,
    parse_up,
)

log = logging.getLogger("moot.ems.cluster")

REGISTER_TIMEOUT = 5.0
# After an EMS restart, how long room servers get to reconnect before their
# meetings are moved (on top of the reconnect grace).
RESTART_ALLOWANCE = 10.0
ORPHAN_RETRY = 1.0
# How soon a drain deadline's evacuation tries again when a meeting could not move.
DRAIN_RETRY = 2.0
# Meetings an evacuation moves at once: a drain is not urgent, so it leaves most of the
# store's pool (8 connections on SQLite) to the meetings that keep running meanwhile.
EVACUATION_CONCURRENCY = 3
# Messages that write to the store: applied in order, off the link's reader (serve_link).
_Queued = ParticipantJoined | ParticipantLeft | MeetingEnded | ShuttingDown
_QUEUED = (ParticipantJoined, ParticipantLeft, MeetingEnded, ShuttingDown)


class NoRoomServer(Exception):
    """No room server can take the meeting; the message says why."""


class CommandFailed(Exception):
    """The room server refused a command (`refusal` says why) or did not answer in time."""

    def __init__(self, message: str, refusal: str | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal


def limits_of(row: RoomServerRow) -> ServerLimits:
    return ServerLimits(
        max_active_meetings=row.max_active_meetings,
        max_users_per_meeting=row.max_users_per_meeting,
        instant_meetings=row.instant_meetings,
        location=row.location,
    )


class ClusterManager:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster_secret: str,
        public_key_pem: str,
        heartbeat_interval: float,
        auto_register: bool,
        command_timeout: float,
        timing: Timing | None = None,
    ) -> None:
        self.registry = Registry()
        self._sessions = sessions
        self._secret = cluster_secret
        self._public_key_pem = public_key_pem
        self._heartbeat = heartbeat_interval
        self._auto_register = auto_register
        self._command_timeout = command_timeout
        self._waiting: dict[str, tuple[str, asyncio.Future[CommandResult]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._timing = timing or Timing(reconnect_grace=1.0, failure_after=3 * heartbeat_interval)
        # Meetings of a failed server that no other server could take yet: retried.
        self._orphans: set[str] = set()
        self.journal = JournalWriter(sessions)
        self.capacity = CapacityWatch(sessions)
        self._next_orphan_retry = 0.0
        self._retrying = False
        self._failing: set[str] = set()  # servers being failed in the background
        # Told when a meeting ends or moves here, so caches elsewhere can drop it.
        self.on_meeting_changed: Callable[[str], None] = lambda meeting_id: None
        # Told when a room server has registered (its configuration is sent then).
        self.on_registered: Callable[[LiveServer], None] = lambda server: None
        # Whether a room server may record (the cluster configuration's recording_allowed).
        self.recording_allowed: Callable[[str], bool] = lambda server_name: True
        # A meeting's attached files with their links for its pages, at an epoch (ems/files.py).
        self.files_of: Callable[[MeetingRow, int], Awaitable[list[MeetingFile]]] = _no_files
        self._files_sends: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, sends waiting
        # More listeners of a registration, each told after on_registered (messages to all).
        self.registered_listeners: list[Callable[[LiveServer], None]] = []
        # Draining servers whose meetings move at a deadline (until none is left there).
        self._drain_deadlines: dict[str, datetime] = {}
        self._next_drain_try: dict[str, float] = {}
        self._evacuations: dict[str, asyncio.Lock] = {}
        self._past_hour = 0  # the hour up to which bookings were forgotten
        self._serving: set[asyncio.Task[Any]] = set()  # the handlers of control links
        self._unbooked = False  # some scheduled meeting may have found no server to book
        self._stopping = False

    # -- start-up --------------------------------------------------------

    async def load(self) -> None:
        """Know every stored server: offline until it connects.

        One that hosts meetings is SUSPECT from the start: after an EMS restart its room
        servers get a while to reconnect, and the meetings of one that never does are moved.
        """
        async with self._sessions() as session:
            for row in await server_store.list_servers(session):
                live = self._live_from_row(row)
                if await server_store.count_active_meetings(session, row.name):
                    live.state = ServerState.SUSPECT
                    live.disconnected_at = time.monotonic() + RESTART_ALLOWANCE
                self.registry.put(live)
                if row.draining and row.drain_deadline is not None:
                    self.set_drain_deadline(row.name, row.drain_deadline)
            # Bookings of scheduled meetings, where they were booked: the servers are not
            # connected yet, so placing them again now would find no server at all.
            for meeting in await meeting_store.scheduled_until_after(session, utcnow()):
                if meeting.booked_server and meeting.booked_server in self.registry:
                    self.registry.book(meeting.id, self._booking(meeting))
                else:
                    self._unbooked = True  # booked when a server is online to take it

    @staticmethod
    def _live_from_row(row: RoomServerRow) -> LiveServer:
        return LiveServer(name=row.name, url=row.url, limits=limits_of(row), draining=row.draining)

    # -- one connection ---------------------------------------------------

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
        applying = self._in_background(self._apply_events(server, events))
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
            await asyncio.shield(self._in_background(self._link_done(server, link, applying)))

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
        if server.link is link:
            await self._link_lost(server)

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
        async with self._sessions() as session:
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
            live = self.registry.get(row.name) or self._live_from_row(row)
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
        self.registry.put(live)
        await self._set_state(live, ServerState.ONLINE, f"registered from {link.peer}")
        if old is not None:
            await old.close("replaced by a new connection from the same room server")
        try:
            await link.send(
                Registered(
                    heartbeat_interval=self._heartbeat,
                    join_token_public_key=self._public_key_pem,
                    limits=live.limits,
                )
            )
        except LinkClosed:  # gone before it heard back (it stopped): a lost link as any other
            if live.link is link:
                await self._link_lost(live)
            return None
        log.info("room server %s registered from %s (%s) %s", live.name, link.peer, live.url, how)
        self.on_registered(live)  # before the commands below: a reopened meeting gets it
        for listener in self.registered_listeners:
            listener(live)
        # The answers come through serve_link's reader, so these commands run in the background.
        for meeting_id, runs_on in stale_meetings.items():  # fencing
            reason = "this meeting moved" if runs_on else "this meeting has ended"
            self._in_background(self._send_close(live, meeting_id, reason, moved=runs_on))
        for meeting_id in lost:  # the room server restarted and forgot them
            self._in_background(self._reopen(live, meeting_id))
        if self._unbooked:  # scheduled meetings that found no server: one may take them now
            self._unbooked = False
            self._in_background(self._book_unbooked())
        return live

    async def close(self) -> None:
        """Before the store closes: stop background work and store pending warnings.

        Work left running would wait forever on a store that has closed.
        """
        # Let work in flight finish: a task cancelled in the middle of a query leaves its
        # connection to be terminated, and aiosqlite's close of it can hang the loop's exit.
        # So close the control links and let their handlers record that, then wait for the
        # rest. Room servers reconnect when the EMS is back.
        self._stopping = True
        for server in self.registry.all():
            if server.link is not None:
                with contextlib.suppress(LinkClosed):
                    await server.link.close("the EMS is stopping")
        if self._serving:
            await asyncio.wait(set(self._serving), timeout=5.0)
        if self._background:
            _, late = await asyncio.wait(set(self._background), timeout=5.0)
            for task in late:
                task.cancel()
        try:
            await asyncio.wait_for(self.capacity.settle(), 5.0)
        except TimeoutError:
            log.warning("capacity warnings not stored before shutdown")

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _reopen(self, server: LiveServer, meeting_id: str) -> None:
        """Open a meeting again, with a new epoch, on the server that forgot it."""
        async with self._sessions() as session:
            meeting = await meeting_store.get_meeting(session, meeting_id)
            if meeting is None or meeting.status != MeetingStatus.IN_PROGRESS:
                return
            epoch = meeting.epoch + 1
            try:
                await self._command(server, await self._open_command(meeting, epoch))
            except CommandFailed as exc:
                log.warning("could not reopen meeting %s on %s: %s", meeting_id, server.name, exc)
                return
            meeting.epoch = epoch
            await record_segment(
                session,
                meeting,
                server.name,
                epoch,
                previous_ended=f"{server.name} restarted",
                allowed=self.recording_allowed(server.name),
            )
            await session.commit()
        self.on_meeting_changed(meeting_id)
        log.info(
            "meeting %s reopened on %s after its restart (epoch %d)", meeting_id, server.name, epoch
        )

    async def _open_command(self, meeting: MeetingRow, epoch: int) -> OpenMeeting:
        """The command that opens (or rebuilds) a meeting: with its journal so far."""
        history: list[JournalEntry] = []
        if meeting.epoch > 0:  # opened before: it may have a journal to rebuild from
            async with self._sessions() as session:
                history = entries_of(await journal_store.history_of(session, meeting.id))
        return OpenMeeting(
            request_id=secrets.token_hex(8),
            meeting_id=meeting.id,
            epoch=epoch,
            name=meeting.name,
            moderator=meeting.moderator,
            tools=list(meeting.tools),
            record=meeting.record,
            history=history,
            files=await self.files_of(meeting, epoch),
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

    def _drop_link(self, server: LiveServer) -> None:
        server.link = None
        for request_id, (name, future) in list(self._waiting.items()):
            if name == server.name and not future.done():
                future.set_exception(CommandFailed(f"room server {name} went offline"))
                self._waiting.pop(request_id, None)

    async def _link_lost(self, server: LiveServer) -> None:
        """The connection dropped: SUSPECT until it reconnects or the grace runs out."""
        self._drop_link(server)
        server.disconnected_at = time.monotonic()
        why = "the EMS is stopping" if self._stopping else "control connection closed"
        await self._set_state(server, ServerState.SUSPECT, why)

    async def _shutting_down(self, server: LiveServer) -> None:
        """A server that says it is leaving: its meetings move at once."""
        link = server.link
        self._drop_link(server)
        await self._set_state(server, ServerState.OFFLINE, "it announced its shutdown")
        await self._move_meetings_off(server)
        if link is not None:
            await link.close("shutdown acknowledged")

    async def _set_state(self, server: LiveServer, state: ServerState, why: str) -> None:
        """Every change of state: in memory, in the log, and stored for reports."""
        if server.state is state:
            return
        before, server.state = server.state, state
        if state is not ServerState.ONLINE:
            server.meetings = {}
        self.registry.refresh(server)
        quiet = state is ServerState.ONLINE or why in (
            "it announced its shutdown",
            "the EMS is stopping",
        )
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "room server %s: %s -> %s (%s)",
            server.name,
            before.value,
            state.value,
            why,
        )
        async with self._sessions() as session:
            row = await server_store.get_server(session, server.name)
            if row is not None:
                row.status = state.value
                await server_store.record_event(
                    session, server_name=server.name, at=utcnow(), state=state.value, reason=why
                )
                await session.commit()

    # -- failure detection and failover ---------------------------------

    async def run(self) -> None:
        """The manager's background work: the failure detector and the journal writer."""
        await asyncio.gather(self.watch(), self.journal.run())

    async def watch(self, period: float = 0.1) -> None:
        """Run the failure detector over every server, for as long as the EMS runs."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.check_once()
            except Exception:  # the detector must outlive any one bad tick
                log.exception("failure detector tick failed")

    async def check_once(self) -> None:
        now = time.monotonic()
        for server in self.registry.all():
            seen = Observation(
                state=server.state,
                connected=server.link is not None,
                since_report=None if server.last_heard_at is None else now - server.last_heard_at,
                since_disconnect=(
                    None if server.disconnected_at is None else now - server.disconnected_at
                ),
            )
            verdict = assess(seen, self._timing)
            failing = server.state is ServerState.FAILED or server.name in self._failing
            if verdict is ServerState.FAILED and not failing:
                why = (
                    f"no report for {self._timing.failure_after:g}s"
                    if seen.connected
                    else f"did not reconnect within {self._timing.reconnect_grace:g}s"
                )
                # In the background: a slow move must not hold up detecting the others.
                self._failing.add(server.name)
                self._in_background(self._fail(server, why))
        if self._orphans and now >= self._next_orphan_retry and not self._retrying:
            self._next_orphan_retry = now + ORPHAN_RETRY
            self._retrying = True
            self._in_background(self._retry_orphans())
        if self._drain_deadlines:
            self._check_drain_deadlines(now)
        metrics.DETECTOR_RUNS.inc()

    async def _fail(self, server: LiveServer, why: str) -> None:
        """FAILED: fence it (close its link, if any) and move its meetings elsewhere."""
        metrics.FAILOVERS.inc()  # counted as decided, before the first await
        try:
            link = server.link
            self._drop_link(server)
            await self._set_state(server, ServerState.FAILED, why)
            if link is not None:
                await link.close(f"failed: {why}")
            await self._move_meetings_off(server)
        finally:
            self._failing.discard(server.name)

    async def _retry_orphans(self) -> None:
        try:
            await asyncio.gather(*(self._move(m) for m in list(self._orphans)))
        finally:
            self._retrying = False

    async def _move_meetings_off(self, server: LiveServer) -> None:
        async with self._sessions() as session:
            hosted = await meeting_store.meetings_on_server(session, server.name)
        server.meetings = {}
        self.registry.unhost_all(server)
        started = time.monotonic()
        await asyncio.gather(*(self._move(m.id) for m in hosted))
        if hosted:
            log.info(
                "moved %d meeting(s) off %s in %.0f ms",
                len(hosted),
                server.name,
                (time.monotonic() - started) * 1000,
            )

    async def _move(self, meeting_id: str, *, force: bool = False) -> bool:
        """Place one meeting again, with a new epoch, unless its host is fine after all.

        With `force` (a drain's evacuation), it moves even off a host that is online.
        True if it moved.
        """
        async with self._sessions() as session:
            meeting = await meeting_store.get_meeting(session, meeting_id)
        host = self.registry.get(meeting.server_name or "") if meeting else None
        if (
            meeting is None
            or meeting.status != MeetingStatus.IN_PROGRESS
            or (not force and host is not None and host.state is ServerState.ONLINE)
        ):
            self._orphans.discard(meeting_id)
            return False
        # No session is held while the room server answers: a failover moves many meetings
        # at once and opening each reads its journal, so held sessions would use up the
        # pool and wait on each other.
        try:
            server, epoch = await self.open_meeting(meeting)
        except (NoRoomServer, CommandFailed) as exc:
            if meeting_id not in self._orphans:
                log.warning("meeting %s cannot move yet: %s", meeting_id, exc)
            if not force:  # an evacuation retries on its own, at the drain deadline
                self._orphans.add(meeting_id)
            return False
        async with self._sessions() as session:
            moved = await meeting_store.record_host(
                session,
                meeting_id,
                status=MeetingStatus.IN_PROGRESS,
                epoch=meeting.epoch,
                server_name=server.name,
                new_epoch=epoch,
            )
            if moved:
                left = f"moved off {meeting.server_name}" + (
                    " (evacuated)" if force else f" ({host.state.value if host else 'removed'})"
                )
                await record_segment(
                    session,
                    meeting,
                    server.name,
                    epoch,
                    previous_ended=left,
                    allowed=self.recording_allowed(server.name),
                )
            await session.commit()
        self._orphans.discard(meeting_id)
        if not moved:  # it ended or moved while it opened there
            await self._send_close(server, meeting_id, "the meeting ended while it moved")
            return False
        self.on_meeting_changed(meeting_id)
        metrics.count_move(forced=force, host=host)
        return True

    # -- drain -----------------------------------------------------------

    def set_drain_deadline(self, name: str, deadline: datetime | None) -> None:
        """From `deadline` on, the meetings still running on the draining server move.

        None: no deadline (the drain ended, or the server is gone).
        """
        self._next_drain_try.pop(name, None)
        if deadline is None:
            self._drain_deadlines.pop(name, None)
        else:
            self._drain_deadlines[name] = deadline

    def _check_drain_deadlines(self, now: float) -> None:
        """Start evacuating each draining server whose deadline has passed."""
        wall = utcnow()
        for name, deadline in list(self._drain_deadlines.items()):
            if deadline > wall or now < self._next_drain_try.get(name, 0.0):
                continue
            server = self.registry.get(name)
            if server is None or not server.draining:
                self.set_drain_deadline(name, None)
                continue
            if server.state is ServerState.SUSPECT:  # failure detection decides first
                continue
            self._next_drain_try[name] = float("inf")  # until this attempt is over
            self._in_background(self._drain_deadline_passed(name, deadline))

    async def _drain_deadline_passed(self, name: str, deadline: datetime) -> None:
        left: int | None = None
        try:
            left = await self.evacuate(name, why="its drain deadline passed")
        except Exception:  # tried again shortly
            log.exception("could not evacuate room server %s at its drain deadline", name)
        if self._drain_deadlines.get(name) is not deadline:
            return  # the drain ended or got another deadline meanwhile
        if left == 0:  # done: nothing more can come, a draining server gets no meeting
            self._drain_deadlines.pop(name, None)
            self._next_drain_try.pop(name, None)
        else:
            self._next_drain_try[name] = time.monotonic() + DRAIN_RETRY

    async def evacuate(self, name: str, why: str = "evacuated") -> int:
        """Move every meeting in progress off a draining server, even an online one.

        They move the way failover moves them (new host, epoch + 1, journal replayed);
        the old host then closes them with `moved`, so their clients rejoin. A meeting
        no other server can take now stays where it is. Returns how many stayed.
        """
        server = self.registry.get(name)
        if server is not None and not server.draining:
            # Placement could pick it again: the "moved" meeting would then be closed.
            raise ValueError(f"room server {name} must be draining to be evacuated")
        async with self._evacuations.setdefault(name, asyncio.Lock()):
            async with self._sessions() as session:
                hosted = await meeting_store.meetings_on_server(session, name)
            if not hosted:
                return 0
            started = time.monotonic()
            slots = asyncio.Semaphore(EVACUATION_CONCURRENCY)

            async def move(meeting_id: str) -> bool:
                async with slots:
                    if not await self._move(meeting_id, force=True):
                        return False
                if server is not None:
                    await self._moved_away(server, meeting_id)
                return True

            gone = sum(await asyncio.gather(*(move(m.id) for m in hosted)))
            async with self._sessions() as session:  # not moved: ended meanwhile, or stayed
                left = await server_store.count_active_meetings(session, name)
            log.log(
                logging.WARNING if left else logging.INFO,
                "moved %d meeting(s) off %s (%s) in %.0f ms%s",
                gone,
                name,
                why,
                (time.monotonic() - started) * 1000,
                f"; {left} could not move yet: no other room server can take them" if left else "",
            )
            return left

    async def _moved_away(self, server: LiveServer, meeting_id: str) -> None:
        """The meeting runs elsewhere now: its old host closes it, telling clients to rejoin."""
        async with self._sessions() as session:
            meeting = await meeting_store.get_meeting(session, meeting_id)
        if meeting is not None and meeting.server_name == server.name:
            return  # it runs here again: never close a meeting on its host
        if server.link is not None:
            await self._send_close(server, meeting_id, "this meeting moved", moved=True)
        else:  # told when it reconnects (fencing)
            server.meetings.pop(meeting_id, None)
            self.registry.unhost(server, meeting_id)

    # -- messages up -----------------------------------------------------

    async def _dispatch(self, server: LiveServer, message: object) -> None:
        if isinstance(message, Status):
            self.registry.report(server, message)
            self.capacity.check_report(server)
        elif isinstance(message, CommandResult):
            waiting = self._waiting.pop(message.request_id, None)
            if waiting is not None and not waiting[1].done():
                waiting[1].set_result(message)
        elif isinstance(message, JournalAppend):
            self.journal.submit(server, message)
        elif isinstance(message, ParticipantJoined | ParticipantLeft | MeetingEnded):
            await self._meeting_event(server, message)
        elif isinstance(message, ShuttingDown):
            await self._shutting_down(server)
        else:
            log.warning("room server %s sent an unexpected %s", server.name, type(message))

    async def _meeting_event(
        self, server: LiveServer, event: ParticipantJoined | ParticipantLeft | MeetingEnded
    ) -> None:
        async with self._sessions() as session:
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
                await meeting_store.end_meeting(session, meeting, event.at)
                server.meetings.pop(meeting.id, None)
                self.registry.unhost(server, meeting.id)
                log.info("meeting %s ended by %s on %s", meeting.id, event.ended_by, server.name)
            await session.commit()
        if isinstance(event, MeetingEnded):
            self.on_meeting_changed(event.meeting_id)

    # -- commands down ---------------------------------------------------

    async def _command(
        self,
        server: LiveServer,
        message: OpenMeeting | CloseMeeting | Notice | ApplyConfig | MeetingFiles,
    ) -> None:
        if server.link is None:
            raise CommandFailed(f"room server {server.name} is not connected")
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[message.request_id] = (server.name, future)
        try:
            await server.link.send(message)
            result = await asyncio.wait_for(future, self._command_timeout)
        except (LinkClosed, TimeoutError) as exc:
            raise CommandFailed(f"room server {server.name} did not answer {message.type}") from exc
        finally:
            self._waiting.pop(message.request_id, None)
        if not result.ok:
            refusal = result.error or "no reason given"
            raise CommandFailed(
                f"room server {server.name} refused {message.type}: {refusal}", refusal
            )

    # -- bookings of scheduled meetings (resource booking) ------------------

    @staticmethod
    def _booking(meeting: MeetingRow) -> Booking:
        return Booking(
            server=meeting.booked_server or "",
            hours=hour_span(meeting.start_at, meeting.end_at),
            participants=meeting.expected_participants,
        )

    def _now_hour(self, now: datetime) -> int:
        hour = int(now.timestamp()) // HOUR
        if hour != self._past_hour:  # once an hour: the past weighs on no decision
            self._past_hour = hour
            self.registry.forget_before(hour)
        return hour

    def book(self, meeting: MeetingRow, now: datetime) -> Placement | None:
        """Book a scheduled meeting's expected participants on a server for its hours.

        Sets `meeting.booked_server` for the caller to store, replacing an earlier booking.
        No room anywhere still books it (the least overloaded server, with a capacity
        warning); only when no server may take it at all is it left unbooked, to be
        placed when it starts. None for a meeting that is not scheduled ahead.
        """
        self.registry.unbook(meeting.id)
        meeting.booked_server = None
        if meeting.status != MeetingStatus.SCHEDULED or meeting.instant or meeting.end_at <= now:
            return None
        hours = hour_span(meeting.start_at, meeting.end_at)
        choice = place(
            self.registry.loads(),
            MeetingRequest(
                expected_participants=meeting.expected_participants,
                location=meeting.location,
                location_required=meeting.location_required,
                hours=hours,
                live=hours[0] <= self._now_hour(now),  # it starts within this hour
            ),
        )
        if choice.server is None:
            log.info("meeting %s is not booked on any server: %s", meeting.id, choice.reason)
            self._unbooked = True
            return choice
        meeting.booked_server = choice.server
        self.registry.book(meeting.id, self._booking(meeting))
        if choice.warning:
            when = f"{meeting.start_at:%Y-%m-%d %H:%M}-{meeting.end_at:%H:%M} UTC"
            self.capacity.warn(
                choice.warning_kind,
                f"booking {when}: {choice.warning}",
                meeting_id=meeting.id,
                server_name=choice.server,
            )
        return choice

    async def _book_unbooked(self) -> None:
        """Book the scheduled meetings that no server could take when they were booked."""
        async with self._sessions() as session:
            now = utcnow()
            rows = await meeting_store.unbooked_scheduled(session, now)
            for row in rows:
                self.book(row, now)
            await session.commit()
        booked = sum(1 for row in rows if row.booked_server)
        if booked:
            log.info("booked %d scheduled meeting(s) that had no server", booked)

    async def rebook_from(self, server_name: str) -> int:
        """Book elsewhere the scheduled meetings booked on a server that was removed."""
        async with self._sessions() as session:
            rows = await meeting_store.booked_on(session, server_name)
            now = utcnow()
            for row in rows:
                self.book(row, now)
            await session.commit()
        if rows:
            log.info("booked %d scheduled meeting(s) of %s elsewhere", len(rows), server_name)
        return len(rows)

    def capacity_plan(
        self, hours: range
    ) -> tuple[list[ServerCapacity], list[HourPlan], list[PlanWarning]]:
        """Booked against available capacity over `hours` (`moot.core.capacity_plan`)."""
        servers = [
            ServerCapacity(
                name=s.name,
                participants=s.limits.max_active_meetings * s.limits.max_users_per_meeting,
                meetings=s.limits.max_active_meetings,
                takes_meetings=not s.draining
                and s.state in (ServerState.ONLINE, ServerState.SUSPECT),
            )
            for s in self.registry.all()
        ]
        self._now_hour(utcnow())
        hour_plans, warnings = plan(servers, self.registry.booked, hours)
        return servers, hour_plans, warnings

    def answering(self, server: LiveServer) -> bool:
        """Heard from within two heartbeats. A page is not sent to a server gone silent:
        it may hang (SIGSTOP, a cut network), which closes no connection, and the page
        would wait on it until the failure detector moves the meeting anyway."""
        last = server.last_heard_at
        return last is not None and time.monotonic() - last <= 2 * self._heartbeat

    def unbook(self, meeting_id: str) -> None:
        """Take a scheduled meeting's booking back (it was deleted or ended)."""
        self.registry.unbook(meeting_id)

    async def open_meeting(self, meeting: MeetingRow) -> tuple[LiveServer, int]:
        """Place the meeting and open it there; returns the host and the new epoch."""
        epoch = meeting.epoch + 1
        command = await self._open_command(meeting, epoch)
        # From here to booking, no await: decisions in a burst see each other's bookings.
        # Instant-meeting limits apply to starting one; a running one that moves is placed
        # like a scheduled meeting (limits never stop a meeting), but still counts as instant.
        # Its own booking gives way to what it weighs now; the others' weigh over its hours.
        now = utcnow()
        booking = self.registry.unbook(meeting.id)
        hour = self._now_hour(now)
        choice = place(
            self.registry.loads(),
            MeetingRequest(
                expected_participants=meeting.expected_participants,
                instant=meeting.instant and meeting.status == MeetingStatus.SCHEDULED,
                location=meeting.location,
                location_required=meeting.location_required,
                hours=(hour, max(hour + 1, hour_span(now, meeting.end_at)[1])),
            ),
        )
        metrics.count_placement(choice)
        if choice.server is None:
            if booking is not None:
                self.registry.book(meeting.id, booking)
            raise NoRoomServer(choice.reason)
        server = self.registry.get(choice.server)
        assert server is not None
        self.registry.host(
            server, meeting.id, meeting.expected_participants, instant=meeting.instant
        )
        try:
            await self._command(server, command)
        except CommandFailed as exc:
            self.registry.unhost(server, meeting.id)
            if booking is not None:
                self.registry.book(meeting.id, booking)
            if exc.refusal is None:
                await self._close_unanswered(server, meeting.id)
            why = "it did not answer in time" if exc.refusal is None else exc.refusal
            raise CommandFailed(
                f"room server {server.name} could not open the meeting ({why}); try again shortly",
                exc.refusal,
            ) from exc
        meeting.booked_server = None
        log.info("meeting %s opened on %s (epoch %d)", meeting.id, server.name, epoch)
        if choice.warning:
            self.capacity.warn(
                choice.warning_kind, choice.warning, meeting_id=meeting.id, server_name=server.name
            )
        return server, epoch

    async def _close_unanswered(self, server: LiveServer, meeting_id: str) -> None:
        """An open_meeting went unanswered: a slow server may still open the meeting, with
        nobody ever sent there. A close queued behind the open, on the same link, undoes it
        in order; its answer is not awaited (a hung server would not give one)."""
        link = server.link
        if link is None:
            return
        close = CloseMeeting(
            request_id=secrets.token_hex(8),
            meeting_id=meeting_id,
            reason="not opened: the Meeting Center stopped waiting for it",
        )
        with contextlib.suppress(LinkClosed):
            await link.send(close)

    def resize(self, server_name: str, meeting_id: str, expected: int) -> None:
        """A running meeting now expects another number of participants."""
        server = self.registry.get(server_name)
        if server is not None and meeting_id in server.booked:
            self.registry.host(server, meeting_id, expected)

    async def close_meeting(self, meeting_id: str, server_name: str, reason: str) -> None:
        """Ask the hosting server to close a meeting; a no-op if it is not connected."""
        server = self.registry.get(server_name)
        if server is None or server.link is None:
            return
        await self._send_close(server, meeting_id, reason)

    async def _send_close(
        self, server: LiveServer, meeting_id: str, reason: str, *, moved: bool = False
    ) -> None:
        try:
            await self._command(
                server,
                CloseMeeting(
                    request_id=secrets.token_hex(8),
                    meeting_id=meeting_id,
                    reason=reason,
                    moved=moved,
                ),
            )
        except CommandFailed as exc:
            log.warning("could not close meeting %s on %s: %s", meeting_id, server.name, exc)
        server.meetings.pop(meeting_id, None)
        self.registry.unhost(server, meeting_id)

    def participants_in(self, server_name: str, meeting_id: str) -> int:
        """People in a meeting now, as its room server last reported."""
        server = self.registry.get(server_name)
        status = server.meetings.get(meeting_id) if server is not None else None
        return len(status.participants) if status is not None else 0

    def files_changed(self, meeting_id: str) -> None:
        """A meeting's files changed: if it runs, its room server gets the new list.

        In the background, one meeting at a time, each send reading the list afresh: the
        last list a room server gets is the one stored, however quickly files change.
        """
        self._in_background(self._send_files(meeting_id))

    async def _send_files(self, meeting_id: str) -> None:
        lock, waiting = self._files_sends.get(meeting_id, (asyncio.Lock(), 0))
        self._files_sends[meeting_id] = (lock, waiting + 1)
        try:
            async with lock:
                async with self._sessions() as session:
                    meeting = await meeting_store.get_meeting(session, meeting_id)
                if (
                    meeting is None
                    or meeting.status != MeetingStatus.IN_PROGRESS
                    or not meeting.server_name
                ):
                    return  # not running: the list goes with open_meeting when it starts
                server = self.registry.get(meeting.server_name)
                if server is None or server.link is None:
                    return
                command = MeetingFiles(
                    request_id=secrets.token_hex(8),
                    meeting_id=meeting_id,
                    epoch=meeting.epoch,
                    files=await self.files_of(meeting, meeting.epoch),
                )
                try:
                    await self._command(server, command)
                except CommandFailed as exc:
                    log.warning("could not send the files of meeting %s: %s", meeting_id, exc)
        finally:
            lock, waiting = self._files_sends[meeting_id]
            if waiting == 1:
                del self._files_sends[meeting_id]
            else:
                self._files_sends[meeting_id] = (lock, waiting - 1)

    async def notify(
        self,
        server_name: str,
        meeting_id: str | None,
        text: str,
        *,
        to: str = "moderators",
        broadcast_id: int | None = None,
        expires_at: datetime | None = None,
        withdrawn: bool = False,
    ) -> None:
        """Show a notice in a meeting's pages (None: in every meeting on that server).

        With `broadcast_id`, a message to all users (moot.ems.broadcasts): the room server
        keeps it for pages opened later, until `expires_at`, or takes it away (`withdrawn`)."""
        server = self.registry.get(server_name)
        if server is None or server.link is None:
            return
        try:
            await self._command(
                server,
                Notice(
                    request_id=secrets.token_hex(8),
                    meeting_id=meeting_id,
                    text=text,
                    to="moderators" if to == "moderators" else "everyone",
                    broadcast_id=broadcast_id,
                    expires_at=expires_at,
                    withdrawn=withdrawn,
                ),
            )
        except CommandFailed as exc:
            log.warning("could not notify meeting %s on %s: %s", meeting_id, server_name, exc)

    async def apply_config(self, server: LiveServer, version: int, values: dict[str, Any]) -> None:
        """Send a room server its configuration; CommandFailed if it did not apply it."""
        await self._command(
            server, ApplyConfig(request_id=secrets.token_hex(8), version=version, values=values)
        )

    async def disconnect(self, name: str, reason: str) -> None:
        """Send a removed server away; it stops instead of reconnecting."""
        server = self.registry.remove(name)
        if server is not None and server.link is not None:
            link, server.link = server.link, None
            with contextlib.suppress(LinkClosed):
                await link.send(Refused(reason=reason))
            await link.close(reason, refused=True)


async def _no_files(meeting: MeetingRow, epoch: int) -> list[MeetingFile]:
    return []


async def record_segment(
    session: AsyncSession,
    meeting: MeetingRow,
    server_name: str,
    epoch: int,
    previous_ended: str,
    *,
    allowed: bool = True,
) -> None:
    """A recorded meeting that opens (again) records its new epoch as a new segment.

    allowed: the cluster configuration lets `server_name` record (recording_allowed). Where
    it does not, the room server records nothing and says so, so no segment begins there:
    a segment is the recording. The one before still ends.
    """
    if not meeting.record:
        return
    if not allowed:
        await recording_store.end_segments(
            session, meeting.id, utcnow(), previous_ended or "recording not allowed"
        )
        return
    await recording_store.begin_segment(
        session,
        meeting_id=meeting.id,
        epoch=epoch,
        server_name=server_name,
        at=utcnow(),
        previous_ended=previous_ended,
    )
