"""Audio, video and screen sharing of the meetings here, through this room server's Janus.

Browsers never talk to Janus: they send `media` requests on the meeting WebSocket, and
this hub, which knows each page's role from its join token, checks every request against
`moot.core.media_rights`, then drives Janus's videoroom for it: one Janus room per
meeting (created here, with a secret and a pin only this process knows), one publisher
handle per page and kind (camera, screen), one subscriber handle per page and feed it
receives. Media itself (ICE, RTP) flows between the browser and Janus directly.

Janus may go away (it died, it is restarting): the pages are told media is unavailable,
and when Janus is back they are told it is available again, and publish and subscribe
again by themselves, as they do on a new room server after a failover.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from moot.core.media_rights import MediaRights, media_rights, needs_media
from moot.protocol.client import MediaRequest, MediaSignal, MediaState
from moot.room.connection import Connection
from moot.room.hosted_meeting import HostedMeeting
from moot.room.media.feeds import (
    MAX_PUBLISHERS,
    VIDEOROOM,
    Feed,
    MediaLoad,
    MediaRoom,
    many_screens,
    muted_people,
)
from moot.room.media.janus_client import JanusClient, JanusError
from moot.room.media.recorder import MediaRecorder

log = logging.getLogger("moot.room.media")


class MediaHub:
    def __init__(
        self,
        meetings: Callable[[], Iterable[HostedMeeting]],
        ice_servers: Callable[[], list[dict[str, Any]]],
        max_video_kbps: Callable[[], int],
        max_streams: int = 0,
    ) -> None:
        self.max_streams = max_streams  # moot room sets it from max_media_streams
        self.max_bitrate_kbps = 0  # moot room sets it from max_media_bitrate_mbps
        self.bitrate_kbps = 0  # measured through Janus's admin API (janus_admin.py)
        # Where recorded meetings' media goes (moot room sets it); None: not recorded.
        self.recorder: MediaRecorder | None = None
        self.enabled = True
        self._meetings = meetings
        self._ice_servers = ice_servers
        self._max_video_kbps = max_video_kbps
        self.client: JanusClient | None = None
        self.admin_key = ""
        self.reason = "the media server is starting"
        self._rooms: dict[str, MediaRoom] = {}
        self._room_numbers = 0
        self._creating: dict[str, asyncio.Lock] = {}
        self._published: dict[tuple[Connection, str], Feed] = {}
        self._subscribed: dict[tuple[Connection, int], int] = {}
        self._locks: dict[Connection, asyncio.Lock] = {}
        # Read by the agent's thread for the heartbeat: replaced whole, never changed.
        self.load = MediaLoad(False, self.reason, 0, 0, max_streams)

    # -- Janus coming and going --------------------------------------------------------

    @property
    def available(self) -> bool:
        return self.client is not None and not self.client.closed.is_set()

    def connected(self, client: JanusClient, admin_key: str) -> None:
        """Janus is (back) up: pages may publish and subscribe (they are told so)."""
        self.client, self.admin_key, self.reason = client, admin_key, ""
        self._forget_rooms()
        self._published.clear()
        self._subscribed.clear()
        log.info("audio and video available through Janus at %s", client.url)
        self._everyone_changed()

    def turned_off(self, reason: str) -> None:
        """Audio/video is off on this server on purpose: no media, and nothing to report
        (the monitor raises no alarm for it)."""
        self.enabled = False
        self.unavailable(reason)

    def unavailable(self, reason: str) -> None:
        """Janus is gone (or was never there): every page is told, with the reason."""
        self.client, self.reason, self.bitrate_kbps = None, reason, 0
        self._forget_rooms()
        self._published.clear()
        self._subscribed.clear()
        self._everyone_changed()

    def _forget_rooms(self) -> None:
        """Janus went (its rooms with it): what it recorded of them is processed."""
        for room in self._rooms.values():
            if room.rec_dir is not None and self.recorder is not None:
                self.recorder.closed(room.rec_dir)
        self._rooms.clear()

    def _everyone_changed(self) -> None:
        for meeting in self._meetings():
            self.announce(meeting)
        self.recount()

    def recount(self) -> None:
        """The load the heartbeat reports, after a change of streams or bitrate."""
        self.load = MediaLoad(
            self.available,
            self.reason,
            sum(1 for f in self._published.values() if f.up),
            len(self._subscribed),
            self.max_streams,
            self.enabled,
            self.bitrate_kbps,
            self.max_bitrate_kbps,
        )

    # -- what pages see ----------------------------------------------------------------

    def rights(self, meeting: HostedMeeting, conn: Connection) -> MediaRights:
        return media_rights(meeting.kind, meeting.tools, meeting.actor_of(conn).standing)

    def state_for(self, meeting: HostedMeeting, conn: Connection) -> MediaState:
        rights = self.rights(meeting, conn)
        room = self._rooms.get(meeting.id)
        feeds = [f.wire() for f in room.feeds.values() if f.up] if room and rights.receive else []
        return MediaState(
            available=self.available,
            reason=self.reason,
            rights={"camera": rights.camera, "screen": rights.screen, "receive": rights.receive},
            feeds=feeds,
            ice_servers=self._ice_servers(),
        )

    def welcome(self, meeting: HostedMeeting, conn: Connection) -> None:
        """A page joined: it gets the media of the meeting (if it has any)."""
        if needs_media(meeting.tools):
            conn.send(self.state_for(meeting, conn))

    def announce(self, meeting: HostedMeeting) -> None:
        """The feeds (or Janus) changed: every page of the meeting gets its view."""
        if not needs_media(meeting.tools):
            return
        for conn in list(meeting.connections):
            conn.send(self.state_for(meeting, conn))

    async def role_changed(self, meeting: HostedMeeting, conn: Connection) -> None:
        """A moderator granted or took back a role: the page gets its new rights, and what
        it sends and may no longer send stops."""
        if not needs_media(meeting.tools):
            return
        rights = self.rights(meeting, conn)
        for kind, allowed in (("camera", rights.camera), ("screen", rights.screen)):
            if not allowed and (conn, kind) in self._published:
                await self._unpublish(meeting, conn, kind)
                conn.send(
                    MediaSignal(
                        action="refused", kind=kind, message="your role no longer allows it"
                    )
                )
        conn.send(self.state_for(meeting, conn))

    # -- requests ----------------------------------------------------------------------

    async def handle(self, meeting: HostedMeeting, conn: Connection, request: MediaRequest) -> None:
        """One page's request, after its earlier ones (a lock per page keeps the order)."""
        lock = self._locks.setdefault(conn, asyncio.Lock())
        async with lock:
            if conn not in meeting.connections:
                return  # the page left meanwhile (leave() has cleaned up, or will)
            try:
                await self._handle(meeting, conn, request)
            except JanusError as exc:
                log.warning("media request %s of %s failed: %s", request.action, conn.user, exc)
                conn.send(
                    MediaSignal(
                        action="failed",
                        kind=request.kind,
                        feed=request.feed,
                        message=f"the media server could not do it ({exc})",
                    )
                )

    def _refuse(self, conn: Connection, request: MediaRequest, message: str) -> None:
        conn.send(
            MediaSignal(action="refused", kind=request.kind, feed=request.feed, message=message)
        )

    async def _handle(
        self, meeting: HostedMeeting, conn: Connection, request: MediaRequest
    ) -> None:
        if request.action in ("unpublish", "unsubscribe"):
            if request.action == "unpublish":
                await self._unpublish(meeting, conn, request.kind)
            elif request.feed is not None:
                await self._unsubscribe(conn, request.feed)
            return
        client = self.client
        if client is None or not self.available:
            self._refuse(conn, request, f"audio and video are unavailable: {self.reason}")
            return
        rights = self.rights(meeting, conn)
        if request.action == "candidate":
            handle = (
                self._subscribed.get((conn, request.feed))
                if request.feed is not None
                else getattr(self._published.get((conn, request.kind)), "handle", None)
            )
            if handle is None:
                return  # that stream ended meanwhile: its candidates do not matter
            found = request.candidate
            candidate = found.model_dump() if found is not None else {"completed": True}
            await client.request({"janus": "trickle", "candidate": candidate}, handle=handle)
            return
        if request.action == "state":
            feed = self._published.get((conn, "camera"))
            if feed is not None and (feed.audio, feed.video) != (request.audio, request.video):
                feed.audio, feed.video = request.audio, request.video
                self.announce(meeting)
            return
        if request.action == "publish":
            allowed = rights.screen if request.kind == "screen" else rights.camera
            if not allowed:
                what = "share a screen" if request.kind == "screen" else "send audio or video"
                self._refuse(conn, request, f"your role in this meeting may not {what}")
                return
            if request.jsep is None or request.jsep.type != "offer":
                self._refuse(conn, request, "a publish request carries the page's offer")
                return
            await self._publish(client, meeting, conn, request)
        elif request.action == "subscribe":
            if not rights.receive or request.feed is None:
                self._refuse(conn, request, "you may not receive this meeting's media")
                return
            await self._subscribe(client, meeting, conn, request.feed)
        elif request.action == "start":
            handle = self._subscribed.get((conn, request.feed or 0))
            if handle is None or request.jsep is None or request.jsep.type != "answer":
                self._refuse(conn, request, "nothing to start: subscribe first")
                return
            await client.message(handle, {"request": "start"}, request.jsep.model_dump())

    async def _room(self, client: JanusClient, meeting: HostedMeeting) -> MediaRoom:
        """The meeting's Janus room, created on first use."""
        lock = self._creating.setdefault(meeting.id, asyncio.Lock())
        async with lock:
            room = self._rooms.get(meeting.id)
            if room is not None:
                return room
            self._room_numbers += 1
            room = MediaRoom(
                number=self._room_numbers,
                secret=secrets.token_urlsafe(24),
                pin=secrets.token_urlsafe(24),
            )
            create: dict[str, Any] = {
                "request": "create",
                "room": room.number,
                "admin_key": self.admin_key,
                "secret": room.secret,
                "pin": room.pin,
                "is_private": True,
                "publishers": MAX_PUBLISHERS,
                "bitrate": self._max_video_kbps() * 1000,
                "audiocodec": "opus",
                "videocodec": "vp8",
                "notify_joining": False,
            }
            if meeting.recording and self.recorder is not None:
                # Each publisher's streams are recorded (configure says so, and names
                # the files); pages cannot turn it off: they never talk to Janus.
                room.rec_dir = self.recorder.folder(meeting.id, meeting.epoch)
                create.update(rec_dir=str(room.rec_dir))
            handle = await client.attach(VIDEOROOM, lambda _event: None)
            try:
                await client.message(handle, create)
            finally:
                await client.detach(handle)
            self._rooms[meeting.id] = room
            return room

    async def _publish(
        self, client: JanusClient, meeting: HostedMeeting, conn: Connection, request: MediaRequest
    ) -> None:
        kind = request.kind
        await self._unpublish(meeting, conn, kind)  # a new offer replaces the old stream
        room = await self._room(client, meeting)
        if kind == "screen" and not many_screens(meeting):
            sharing = [f for f in room.feeds.values() if f.kind == "screen" and f.conn is not conn]
            if sharing:
                self._refuse(
                    conn,
                    request,
                    f"{sharing[0].user} is sharing a screen: one at a time"
                    " (a moderator may let several share at once)",
                )
                return
        feed_id = room.next_feed
        room.next_feed += 1
        feed: Feed | None = None

        def on_event(event: dict[str, Any]) -> None:
            if feed is None:
                return
            kind_of = event.get("janus")
            if kind_of == "webrtcup" and not feed.up:
                feed.up = True
                self.recount()
                self.announce(meeting)
            elif kind_of in ("hangup", "detached") and room.feeds.get(feed.id) is feed:
                del room.feeds[feed.id]
                self._published.pop((feed.conn, feed.kind), None)
                self._recorded(room, feed)
                self.recount()
                self.announce(meeting)

        handle = await client.attach(VIDEOROOM, on_event)
        room.handles.add(handle)
        feed = Feed(feed_id, conn.user, kind, conn, handle, request.audio, request.video)
        feed.person = conn.person or conn.user
        try:
            await client.message(
                handle,
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room.number,
                    "pin": room.pin,
                    "id": feed_id,
                    "display": conn.user,
                },
            )
            assert request.jsep is not None
            configure: dict[str, Any] = {"request": "configure"}
            if room.rec_dir is not None and self.recorder is not None:
                feed.recorded = f"{room.number}-{feed_id}-{kind}"  # unique in the folder
                configure.update(record=True, filename=feed.recorded)
                self.recorder.started(room.rec_dir, feed.recorded, conn.user, kind)
            configured, answer = await client.message(handle, configure, request.jsep.model_dump())
            feed.audio_mids = tuple(
                str(s["mid"])
                for s in configured.get("streams", [])
                if isinstance(s, dict) and s.get("type") == "audio" and "mid" in s
            )
        except JanusError:
            await client.detach(handle)
            raise
        if answer is None:
            await client.detach(handle)
            raise JanusError("Janus gave no answer to the offer")
        room.feeds[feed_id] = feed
        self._published[(conn, kind)] = feed
        conn.send(MediaSignal(action="answer", kind=kind, feed=feed_id, jsep=answer))
        await self._silence(client, meeting, room, feed)

    def _recorded(self, room: MediaRoom, feed: Feed) -> None:
        """A recorded stream ended: its files are processed (once)."""
        if feed.recorded and room.rec_dir is not None and self.recorder is not None:
            self.recorder.ended(room.rec_dir, feed.recorded)
            feed.recorded = ""

    async def mutes_changed(self, meeting: HostedMeeting) -> None:
        """The moderation tool's mutes changed: Janus stops (or resumes) forwarding the
        audio of whoever a moderator muted, whatever their page does."""
        room, client = self._rooms.get(meeting.id), self.client
        if room is None or client is None:
            return
        for feed in list(room.feeds.values()):
            try:
                await self._silence(client, meeting, room, feed)
            except JanusError as exc:
                log.warning("could not apply a mute to %s: %s", feed.user, exc)

    async def _silence(
        self, client: JanusClient, meeting: HostedMeeting, room: MediaRoom, feed: Feed
    ) -> None:
        muted = feed.kind == "camera" and feed.person in muted_people(meeting)
        if muted == feed.silenced or not feed.audio_mids:
            return
        for mid in feed.audio_mids:
            await client.message(
                feed.handle,
                {
                    "request": "moderate",
                    "secret": room.secret,
                    "room": room.number,
                    "id": feed.id,
                    "mid": mid,
                    "mute": muted,
                },
            )
        feed.silenced = muted

    async def _unpublish(self, meeting: HostedMeeting, conn: Connection, kind: str) -> None:
        feed = self._published.pop((conn, kind), None)
        if feed is None:
            return
        room = self._rooms.get(meeting.id)
        if room is not None:
            room.feeds.pop(feed.id, None)
        if self.client is not None:
            await self.client.detach(feed.handle)
        if room is not None:
            self._recorded(room, feed)
        self.recount()
        self.announce(meeting)

    async def _subscribe(
        self, client: JanusClient, meeting: HostedMeeting, conn: Connection, feed_id: int
    ) -> None:
        room = self._rooms.get(meeting.id)
        feed = room.feeds.get(feed_id) if room is not None else None
        if room is None or feed is None or not feed.up:
            conn.send(MediaSignal(action="stopped", feed=feed_id, message="that stream has ended"))
            return
        await self._unsubscribe(conn, feed_id)

        def on_event(event: dict[str, Any]) -> None:
            if event.get("janus") == "hangup":
                self._subscribed.pop((conn, feed_id), None)
                self.recount()

        handle = await client.attach(VIDEOROOM, on_event)
        room.handles.add(handle)
        try:
            _, offer = await client.message(
                handle,
                {
                    "request": "join",
                    "ptype": "subscriber",
                    "room": room.number,
                    "pin": room.pin,
                    "streams": [{"feed": feed_id}],
                },
            )
        except JanusError:
            await client.detach(handle)
            raise
        if offer is None:
            await client.detach(handle)
            raise JanusError("Janus made no offer for the stream")
        self._subscribed[(conn, feed_id)] = handle
        self.recount()
        conn.send(MediaSignal(action="offer", feed=feed_id, kind=feed.wire().kind, jsep=offer))

    async def _unsubscribe(self, conn: Connection, feed_id: int) -> None:
        handle = self._subscribed.pop((conn, feed_id), None)
        if handle is not None and self.client is not None:
            await self.client.detach(handle)
        self.recount()

    # -- pages and meetings ending -----------------------------------------------------

    async def leave(self, meeting: HostedMeeting | None, conn: Connection) -> None:
        """A page closed: its streams end, its subscriptions too."""
        lock = self._locks.pop(conn, None)
        if lock is not None:
            async with lock:
                pass
        for kind in ("camera", "screen"):
            if (conn, kind) in self._published and meeting is not None:
                await self._unpublish(meeting, conn, kind)
            else:
                self._published.pop((conn, kind), None)
        for key in [k for k in self._subscribed if k[0] is conn]:
            await self._unsubscribe(conn, key[1])

    async def close(self, meeting_id: str) -> None:
        """The meeting closed here: its Janus room goes, and every stream in it."""
        room = self._rooms.pop(meeting_id, None)
        self._creating.pop(meeting_id, None)
        if room is None:
            return
        for feed in room.feeds.values():
            self._published.pop((feed.conn, feed.kind), None)
        for key in [k for k in self._subscribed if k[0].closing]:
            self._subscribed.pop(key, None)
        self.recount()
        client = self.client
        try:
            if client is None or not self.available:
                return
            handle = await client.attach(VIDEOROOM, lambda _event: None)
            await client.message(
                handle, {"request": "destroy", "room": room.number, "secret": room.secret}
            )
            for attached in (handle, *room.handles):  # detaching one already gone is fine
                await client.detach(attached)
        except JanusError as exc:
            log.info("could not destroy the Janus room of meeting %s: %s", meeting_id, exc)
        finally:
            if room.rec_dir is not None and self.recorder is not None:
                self.recorder.closed(room.rec_dir)  # Janus closed its files (or died)
