"""The `nats` transport: room servers talk to NATS, not to one EMS process.

A room server's link is a pair of subjects named by a link id it draws at random:
- it dials with a request on `<prefix>.dial` (payload: the link id); only the EMS node
  that holds the leader's lease listens there, and answers with its node name;
- its messages go up on `<prefix>.up.<link>`, the leader's come down on
  `<prefix>.down.<link>`.
Core NATS keeps the order of one publisher's messages to one subscriber, which is all a
Link promises. Nothing here is stored by NATS: a journal append is acknowledged by the
leader once the store has it (moot.ems.cluster.journal), and the room server keeps every
unacknowledged line and sends it again on its next link, so a lost NATS message is never
an acknowledged one.

Both ends send a ping every PING seconds and call the link closed after SILENCE without a
word; a new leader announces itself on `<prefix>.leader`, and a room server whose link
belongs to another node closes it and dials again (the new leader answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from moot.bus.base import Link, LinkClosed, Listener, Serve

log = logging.getLogger("moot.bus.nats")

PING = 1.0  # seconds between pings on an idle link
SILENCE = 3.5  # seconds without a word after which a link is closed
DIAL_TIMEOUT = 1.0  # seconds the leader has to answer a dial
# NATS refuses messages over its max_payload (1 MiB by default): larger ones (an
# open_meeting carries the journal) go in parts of this many bytes.
PART = 512 * 1024
CLOSE = "Moot-Close"  # header: the sender closed the link (value: why)
REFUSED = "Moot-Refused"  # header with CLOSE: the room server must not come back
PING_HEADER = "Moot-Ping"
PARTS = "Moot-Part"  # header: "i/n" of a message sent in parts


class Subjects:
    """The control channel's subjects under one cluster's prefix."""

    def __init__(self, prefix: str) -> None:
        base = f"moot.{prefix}"
        self.dial = f"{base}.dial"
        self.up_all = f"{base}.up.*"
        self.leader = f"{base}.leader"
        self._base = base

    def up(self, link_id: str) -> str:
        return f"{self._base}.up.{link_id}"

    def down(self, link_id: str) -> str:
        return f"{self._base}.down.{link_id}"

    def link_of(self, up_subject: str) -> str:
        return up_subject.rsplit(".", 1)[-1]


async def connect(url: str, who: str) -> NatsClient:
    """A NATS connection that reconnects for ever, saying once per kind what goes wrong
    (not nats-py's traceback every 0.2 s); ConnectionError naming the URL when NATS cannot
    be reached now."""
    said: set[str] = set()

    async def down() -> None:
        log.warning("%s: disconnected from NATS at %s", who, url)

    async def up() -> None:
        said.clear()
        log.info("%s: connected to NATS at %s again", who, url)

    async def error(exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        if text not in said:
            said.add(text)
            log.warning("%s: NATS at %s: %s; retrying", who, url, text)

    try:
        return await nats.connect(
            servers=[url],
            name=who,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            connect_timeout=2,
            disconnected_cb=down,
            reconnected_cb=up,
            error_cb=error,
        )
    except (OSError, TimeoutError, NatsError) as exc:
        raise ConnectionError(
            f"NATS at {url} cannot be reached: {exc or type(exc).__name__}"
        ) from exc


def _parts(text: str) -> list[bytes]:
    data = text.encode()
    return [data[i : i + PART] for i in range(0, len(data), PART)] or [b""]


class _SubjectLink(Link):
    """What both ends share: a queue of what came in, pings, messages in parts, close."""

    def __init__(self, nc: NatsClient, send_to: str, peer: str) -> None:
        self._nc = nc
        self._send_to = send_to
        self.peer = peer
        self._inbox: asyncio.Queue[str | LinkClosed | None] = asyncio.Queue()
        self._assembling: list[bytes] = []
        self._closed: str | None = None
        self._pinger: asyncio.Task[None] | None = None

    def begin(self) -> None:
        """The other end knows the link: keep it alive from now on."""
        self._pinger = asyncio.create_task(self._ping())

    def received(self, msg: Msg) -> None:
        """A message on this link's incoming subject (called by the subscription)."""
        headers = msg.headers or {}
        if CLOSE in headers:
            self._inbox.put_nowait(LinkClosed(headers[CLOSE] or "closed by the other side"))
        elif PING_HEADER in headers:
            self._inbox.put_nowait(None)
        elif PARTS in headers:
            index, _, count = headers[PARTS].partition("/")
            self._assembling.append(msg.data)
            if index == count:
                text = b"".join(self._assembling).decode()
                self._assembling = []
                self._inbox.put_nowait(text)
        else:
            self._inbox.put_nowait(msg.data.decode())

    async def _publish(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        if self._closed is not None:
            raise LinkClosed(self._closed)
        try:
            await self._nc.publish(self._send_to, data, headers=headers)
        except (NatsError, OSError) as exc:
            raise LinkClosed(f"NATS: {exc or type(exc).__name__}") from exc

    async def send_text(self, text: str) -> None:
        parts = _parts(text)
        if len(parts) == 1:
            await self._publish(parts[0])
            return
        for number, part in enumerate(parts, 1):
            await self._publish(part, {PARTS: f"{number}/{len(parts)}"})

    async def receive_text(self) -> str:
        while True:
            if self._closed is not None and self._inbox.empty():
                raise LinkClosed(self._closed)
            try:
                item = await asyncio.wait_for(self._inbox.get(), SILENCE)
            except TimeoutError:
                await self._end(f"nothing heard for {SILENCE:.1f}s")
                raise LinkClosed(self._closed) from None
            if isinstance(item, LinkClosed):
                await self._end(str(item))
                raise item
            if item is not None:
                return item

    async def _ping(self) -> None:
        with contextlib.suppress(LinkClosed):
            while self._closed is None:
                await asyncio.sleep(PING)
                await self._publish(b"", {PING_HEADER: "1"})

    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        if self._closed is not None:
            return
        headers = {CLOSE: reason or "closed"}
        if refused:
            headers[REFUSED] = "1"
        with contextlib.suppress(LinkClosed):
            await self._publish(b"", headers)
        await self._end(reason or "closed")

    async def _end(self, reason: str) -> None:
        """Closed on this side: no more sends, no more pings; what is queued may be read."""
        if self._closed is None:
            self._closed = reason
            if self._pinger is not None:
                self._pinger.cancel()
            self._inbox.put_nowait(LinkClosed(reason))
            await self._stopped()

    async def _stopped(self) -> None:
        """What the end does when its link is done (unsubscribe, forget it)."""


class ServerSideLink(_SubjectLink):
    """The EMS leader's end of one room server's link."""

    def __init__(
        self, nc: NatsClient, subjects: Subjects, link_id: str, forget: Callable[[str], None]
    ) -> None:
        super().__init__(nc, subjects.down(link_id), f"nats link {link_id}")
        self.link_id = link_id
        self._forget = forget

    async def _stopped(self) -> None:
        self._forget(self.link_id)


class ClientSideLink(_SubjectLink):
    """A room server's end: closed when another EMS node announces itself leader."""

    def __init__(self, nc: NatsClient, subjects: Subjects, link_id: str) -> None:
        super().__init__(nc, subjects.up(link_id), "the EMS over NATS")
        self.leader = ""
        self._subs: list[Subscription] = []

    async def subscribe(self, subjects: Subjects, link_id: str) -> None:
        async def down(msg: Msg) -> None:
            self.received(msg)

        async def announced(msg: Msg) -> None:
            node = msg.data.decode()
            if self.leader and node != self.leader:
                self._inbox.put_nowait(LinkClosed(f"EMS node {node} is the leader now"))

        self._subs = [
            await self._nc.subscribe(subjects.down(link_id), cb=down),
            await self._nc.subscribe(subjects.leader, cb=announced),
        ]

    def led_by(self, node: str) -> None:
        self.leader = node
        self.peer = f"EMS node {node} over NATS"
        self.begin()

    async def _stopped(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(NatsError, OSError):
                await sub.unsubscribe()


class NatsListener(Listener):
    """The EMS leader's end: answers dials and routes each link's messages to it.

    Only the node that holds the lease starts it (moot.ems.cluster.leadership); `stop`
    closes every link it opened."""

    def __init__(self, connection: Callable[[], Awaitable[NatsClient]], prefix: str, node: str):
        self._connection = connection
        self.subjects = Subjects(prefix)
        self.node = node
        self._links: dict[str, ServerSideLink] = {}
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, serve: Serve) -> None:
        nc = await self._connection()

        async def dialed(msg: Msg) -> None:
            link_id = msg.data.decode()
            if not link_id.isalnum() or link_id in self._links:
                return
            link = ServerSideLink(nc, self.subjects, link_id, self._forget)
            link.begin()
            self._links[link_id] = link
            task = asyncio.create_task(self._serve(serve, link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await msg.respond(self.node.encode())

        async def up(msg: Msg) -> None:
            link_id = self.subjects.link_of(msg.subject)
            link = self._links.get(link_id)
            if link is not None:
                link.received(msg)
            elif not (msg.headers or {}).get(CLOSE):
                # A link of a node that is no longer the leader: the room server dials again.
                with contextlib.suppress(NatsError, OSError):
                    await nc.publish(
                        self.subjects.down(link_id),
                        b"",
                        headers={CLOSE: f"EMS node {self.node} does not know this link"},
                    )

        self._subs = [
            await nc.subscribe(self.subjects.up_all, cb=up),
            await nc.subscribe(self.subjects.dial, cb=dialed),
        ]
        await nc.publish(self.subjects.leader, self.node.encode())
        await nc.flush()

    async def _serve(self, serve: Serve, link: ServerSideLink) -> None:
        try:
            await serve(link)
        finally:
            await link.close("done")

    def _forget(self, link_id: str) -> None:
        self._links.pop(link_id, None)

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(NatsError, OSError):
                await sub.unsubscribe()
        self._subs = []
        for link in list(self._links.values()):
            await link.close("the EMS node is stopping")


class NatsDialer:
    """The room server's end (a Dialer): one NATS connection, a new link id at each dial;
    the EMS leader answers (ConnectionError while NATS or every EMS node is down)."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._subjects = Subjects(prefix)
        self._nc: NatsClient | None = None

    async def __call__(self) -> Link:
        if self._nc is None:
            self._nc = await connect(self._url, "moot-room-control")
        link_id = secrets.token_hex(8)
        link = ClientSideLink(self._nc, self._subjects, link_id)
        try:
            await link.subscribe(self._subjects, link_id)
            answer = await self._nc.request(
                self._subjects.dial, link_id.encode(), timeout=DIAL_TIMEOUT
            )
        except (NatsError, TimeoutError, OSError) as exc:
            await link._end("not answered")
            why = str(exc) or "no EMS node leads now"
            raise ConnectionError(f"NATS at {self._url} (prefix {self._prefix}): {why}") from exc
        link.led_by(answer.data.decode())
        return link

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(NatsError, OSError):
                await nc.close()


def dialer(url: str, prefix: str) -> NatsDialer:
    """The room server's end of the `nats` transport (see NatsDialer)."""
    return NatsDialer(url, prefix)
