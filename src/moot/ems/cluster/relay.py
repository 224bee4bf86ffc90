"""What EMS nodes say to each other over NATS, beside the room servers' links.

- `<prefix>.servers`: the leader publishes every HEARTBEAT the live state of every room
  server and the bookings; each follower mirrors it in its own registry, so its monitor,
  API and attend see what the leader sees (a follower holds no link: a connected server
  gets `MIRRORED` as its link, which carries nothing).
- `<prefix>.ask`: a follower's request for an action only the leader may take (open a
  meeting: placement has one writer; close, notify, push the configuration, evacuate...):
  request/reply, the leader's answer or its error.
- `<prefix>.tell`: the same for actions that return nothing (a booking, a resize, a drain
  deadline, files changed): published, not awaited.
- `<prefix>.events`: meeting_changed and moderated, from whichever node emitted them, so
  every node's caches of that meeting are read afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from sqlalchemy import DateTime
from sqlalchemy import inspect as sa_inspect

from moot.bus import Link, LinkClosed
from moot.core.placement import ServerState
from moot.ems.cluster.events import ClusterEvents
from moot.ems.cluster.registry import Booking, LiveServer, Registry
from moot.ems.store.models import MeetingRow
from moot.protocol.control import MediaReport, MeetingStatus, ServerLimits

log = logging.getLogger("moot.ems.cluster")


class LeaderAway(ConnectionError):
    """No EMS node answers as the leader now (an election is under way, or NATS is down)."""


class _Mirrored(Link):
    """The link of a server connected to the leader, as a follower sees it: there is one,
    but commands go through the leader (`ask`), never through this."""

    peer = "the EMS leader"

    async def send_text(self, text: str) -> None:
        raise LinkClosed("a follower sends no commands: the leader does")

    async def receive_text(self) -> str:
        raise LinkClosed("a follower reads no link")

    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        return None


MIRRORED: Link = _Mirrored()


def server_view(server: LiveServer, answering: bool) -> dict[str, Any]:
    """What followers need of one live server (the monitor's, attend's and the API's view)."""
    return {
        "name": server.name,
        "url": server.url,
        "limits": server.limits.model_dump(),
        "draining": server.draining,
        "state": server.state.value,
        "connected": server.link is not None,
        "answering": answering,
        "report_age": None
        if server.last_report_at is None
        else max(0.0, time.monotonic() - server.last_report_at),
        "last_seen_at": server.last_seen_at.isoformat() if server.last_seen_at else None,
        "meetings": [m.model_dump(mode="json") for m in server.meetings.values()],
        "booked": server.booked,
        "instant": sorted(server.instant),
        "logins": server.logins,
        "community": [
            server.community_offered,
            server.community_connections,
            server.community_signins,
            server.community_messages,
        ],
        "cpu": server.cpu_percent,
        "memory": server.memory_percent,
        "media": server.media.model_dump() if server.media is not None else None,
    }


def apply_view(registry: Registry, view: dict[str, Any], heartbeat: float = 1.0) -> None:
    server = registry.get(view["name"]) or LiveServer(
        name=view["name"], url=view["url"], limits=ServerLimits(**view["limits"])
    )
    server.url = view["url"]
    server.limits = ServerLimits(**view["limits"])
    server.draining = view["draining"]
    server.state = ServerState(view["state"])
    server.link = MIRRORED if view["connected"] else None
    now = time.monotonic()
    age = view["report_age"]
    server.last_report_at = now - age if age is not None else None  # the monitor's figure
    # Answering on the leader: heard from now, as the follower's `answering` reads it,
    # with a heartbeat more for the next state to arrive (a leader's late publication
    # is no silence of the server).
    server.last_message_at = now + heartbeat if view["answering"] else None
    seen = view["last_seen_at"]
    server.last_seen_at = datetime.fromisoformat(seen) if seen else None
    server.meetings = {m["meeting_id"]: MeetingStatus.model_validate(m) for m in view["meetings"]}
    server.booked = dict(view["booked"])
    server.instant = set(view["instant"])
    server.logins = view["logins"]
    (
        server.community_offered,
        server.community_connections,
        server.community_signins,
        server.community_messages,
    ) = view["community"]
    server.cpu_percent = view["cpu"]
    server.memory_percent = view["memory"]
    server.media = MediaReport.model_validate(view["media"]) if view["media"] else None
    if view["name"] in registry:
        registry.refresh(server)
    else:
        registry.put(server)


def meeting_to_wire(meeting: MeetingRow) -> dict[str, Any]:
    """A meeting's columns as JSON: a follower's meeting may not be stored yet (an instant
    meeting opens before its row is saved)."""
    return {
        column.key: getattr(meeting, column.key)
        for column in sa_inspect(MeetingRow).mapper.column_attrs
    }


def meeting_from_wire(data: dict[str, Any]) -> MeetingRow:
    """The meeting a follower sent, as a row of no session (only read)."""
    meeting = MeetingRow()
    for column in sa_inspect(MeetingRow).mapper.column_attrs:
        value = data.get(column.key)
        kind = column.columns[0].type
        if isinstance(value, str) and isinstance(getattr(kind, "impl", kind), DateTime):
            value = datetime.fromisoformat(value)
        setattr(meeting, column.key, value)
    return meeting


# What the leader does for a follower: verb -> handler(arguments) -> JSON-able result.
Handler = Callable[[dict[str, Any]], Awaitable[Any]]
Told = Callable[[dict[str, Any]], None]


class Relay:
    """One EMS node's side of the talk between nodes (see the module's docstring)."""

    def __init__(
        self,
        nc: NatsClient,
        prefix: str,
        node: str,
        registry: Registry,
        events: ClusterEvents,
        *,
        heartbeat: float,
        ask_timeout: float,
    ) -> None:
        self._nc = nc
        base = f"moot.{prefix}"
        self._servers, self._ask, self._tell, self._events = (
            f"{base}.servers",
            f"{base}.ask",
            f"{base}.tell",
            f"{base}.events",
        )
        self.node = node
        self._registry = registry
        self._cluster_events = events
        self._heartbeat = heartbeat
        self._ask_timeout = ask_timeout
        self._subs: list[Subscription] = []
        self._leading_subs: list[Subscription] = []
        self._relaying = False  # applying an event another node sent: not sent back
        self.leader_heard_at: float | None = None  # when the leader's states last came
        self._tasks: set[asyncio.Task[None]] = set()

    # -- every node -------------------------------------------------------

    async def start(self) -> None:
        """Mirror the leader's servers and pass meeting events between nodes."""

        async def servers(msg: Msg) -> None:
            body = json.loads(msg.data)
            if body["node"] == self.node:
                return
            self.leader_heard_at = time.monotonic()  # /readyz: a follower that sees it
            names = set()
            for view in body["servers"]:
                names.add(view["name"])
                apply_view(self._registry, view, self._heartbeat)
            for server in self._registry.all():
                if server.name not in names:
                    self._registry.remove(server.name)
            for meeting_id, (server_name, start, end, people) in body["bookings"].items():
                booking = Booking(server=server_name, hours=(start, end), participants=people)
                if self._registry.booking_of(meeting_id) != booking:
                    self._registry.book(meeting_id, booking)
            for meeting_id in set(self._registry.bookings()) - set(body["bookings"]):
                self._registry.unbook(meeting_id)

        async def events(msg: Msg) -> None:
            body = json.loads(msg.data)
            if body["node"] == self.node:
                return
            signal = getattr(self._cluster_events, body["kind"])
            self._relaying = True
            try:
                signal.emit(body["meeting_id"])
            finally:
                self._relaying = False

        self._subs = [
            await self._nc.subscribe(self._servers, cb=servers),
            await self._nc.subscribe(self._events, cb=events),
        ]
        for kind in ("meeting_changed", "moderated"):
            getattr(self._cluster_events, kind).subscribe(self._sender(kind))

    def _sender(self, kind: str) -> Callable[[str], None]:
        def send(meeting_id: str) -> None:
            if not self._relaying:
                body = {"node": self.node, "kind": kind, "meeting_id": meeting_id}
                self._background(self._publish(self._events, body))

        return send

    async def _publish(self, subject: str, body: dict[str, Any]) -> None:
        try:
            await self._nc.publish(subject, json.dumps(body).encode())
        except (NatsError, OSError) as exc:
            log.warning("EMS node %s could not publish on %s: %s", self.node, subject, exc)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for sub in self._subs + self._leading_subs:
            with contextlib.suppress(NatsError, OSError):
                await sub.unsubscribe()
        self._subs, self._leading_subs = [], []
        for task in list(self._tasks):
            task.cancel()

    # -- a follower -------------------------------------------------------

    async def ask(self, verb: str, **arguments: Any) -> Any:
        """The leader's answer; LeaderAway when none answers; the leader's error as
        RemoteError (the caller maps it to its own exceptions)."""
        body = json.dumps({"verb": verb, "args": arguments}, default=_json_default).encode()
        try:
            reply = await self._nc.request(self._ask, body, timeout=self._ask_timeout)
        except (NatsError, TimeoutError, OSError) as exc:
            raise LeaderAway(
                f"no EMS leader answered ({exc or type(exc).__name__}); try again shortly"
            ) from exc
        answer = json.loads(reply.data)
        if "error" in answer:
            raise RemoteError(answer["error"], answer["message"], answer.get("refusal"))
        return answer["result"]

    def tell(self, verb: str, **arguments: Any) -> None:
        body = json.loads(json.dumps({"verb": verb, "args": arguments}, default=_json_default))
        self._background(self._publish(self._tell, body))

    # -- the leader -------------------------------------------------------

    async def lead(
        self,
        asked: dict[str, Handler],
        told: dict[str, Told],
        answering: Callable[[LiveServer], bool],
    ) -> None:
        """Answer the followers, and publish the servers' states every heartbeat."""

        async def ask(msg: Msg) -> None:
            body = json.loads(msg.data)
            try:
                result = await asked[body["verb"]](body["args"])
                answer: dict[str, Any] = {"result": result}
            except RemoteError as exc:
                answer = {"error": exc.kind, "message": exc.message, "refusal": exc.refusal}
            except Exception as exc:
                log.exception("EMS leader: %s asked by a follower failed", body.get("verb"))
                answer = {"error": type(exc).__name__, "message": str(exc)}
            with contextlib.suppress(NatsError, OSError):
                await msg.respond(json.dumps(answer).encode())

        async def tell(msg: Msg) -> None:
            body = json.loads(msg.data)
            try:
                told[body["verb"]](body["args"])
            except Exception:
                log.exception("EMS leader: %s told by a follower failed", body.get("verb"))

        async def publish_states() -> None:
            while True:
                body = {
                    "node": self.node,
                    "servers": [server_view(s, answering(s)) for s in self._registry.all()],
                    "bookings": {
                        meeting_id: [b.server, b.hours[0], b.hours[1], b.participants]
                        for meeting_id, b in self._registry.bookings().items()
                    },
                }
                await self._publish(self._servers, body)
                await asyncio.sleep(min(self._heartbeat, 1.0))

        # A handler awaits (open_meeting waits on a room server): several at once.
        self._leading_subs = [
            await self._nc.subscribe(self._ask, cb=_concurrently(ask)),
            await self._nc.subscribe(self._tell, cb=tell),
        ]
        self._background(publish_states())


class RemoteError(Exception):
    """The leader's refusal of what a follower asked: its kind and message."""

    def __init__(self, kind: str, message: str, refusal: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.refusal = refusal


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _concurrently(
    handler: Callable[[Msg], Coroutine[Any, Any, None]],
) -> Callable[[Msg], Awaitable[None]]:
    """nats-py runs a subscription's callbacks one after another: run each in a task."""
    running: set[asyncio.Task[None]] = set()

    async def start(msg: Msg) -> None:
        task = asyncio.create_task(handler(msg))
        running.add(task)
        task.add_done_callback(running.discard)

    return start
