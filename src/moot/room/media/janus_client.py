"""A small asyncio client of Janus's WebSocket API: one session, its handles, transactions.

Only the room server talks to Janus (browsers signal through the meeting WebSocket), so
this is the one place that speaks Janus: every request carries the api_secret, the
session is kept alive, and each handle's asynchronous events (webrtcup, hangup, the
videoroom's own) go to the callback the handle was attached with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

log = logging.getLogger("moot.room.media.janus")

JANUS_PROTOCOL = Subprotocol("janus-protocol")
JANUS_ADMIN_PROTOCOL = Subprotocol("janus-admin-protocol")
REQUEST_TIMEOUT = 10.0  # seconds Janus may take to answer one request
# Seconds between keepalives: Janus drops a session silent for session_timeout (60 s), and
# a Janus that does not answer one (hung: its socket stays open) is given up on.
KEEPALIVE_EVERY = 10.0
KEEPALIVE_TIMEOUT = 5.0

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


class JanusError(Exception):
    """Janus refused a request, did not answer it, or is gone."""


class JanusClient:
    """One WebSocket to Janus with one session on it; or, `admin`, to its admin API (no
    session: requests name the session and handle they ask about)."""

    def __init__(self, url: str, api_secret: str = "", *, admin: bool = False) -> None:
        self.url = url
        self.api_secret = api_secret  # the admin_secret for the admin API
        self.admin = admin
        self.session_id = 0
        self._ws: ClientConnection | None = None
        self._waiting: dict[str, asyncio.Future[Event]] = {}
        # Transactions of plugin messages: Janus may `ack` them first and answer in an event.
        # Any other request's `ack` is its answer (a keepalive's).
        self._plugin_messages: set[str] = set()
        self._handles: dict[int, OnEvent] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self._closing = False  # we close it: no warning

    async def open(self) -> None:
        """Connect and create the session; JanusError (or OSError) if Janus is not there."""
        protocol = JANUS_ADMIN_PROTOCOL if self.admin else JANUS_PROTOCOL
        self._ws = await connect(self.url, subprotocols=[protocol], open_timeout=5, max_size=2**22)
        self._tasks = [asyncio.create_task(self._read())]
        if self.admin:
            return
        answer = await self.request({"janus": "create"})
        self.session_id = int(answer["data"]["id"])
        self._tasks.append(asyncio.create_task(self._keepalive()))

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
        self._gone()

    def _gone(self) -> None:
        self.closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(JanusError("the connection to Janus closed"))
        self._waiting.clear()

    async def request(
        self, body: dict[str, Any], *, handle: int | None = None, within: float = REQUEST_TIMEOUT
    ) -> Event:
        """Send one request and return Janus's answer (for an asynchronous plugin request,
        the event that follows its `ack`); JanusError for an `error` answer."""
        if self._ws is None or self.closed.is_set():
            raise JanusError("not connected to Janus")
        transaction = secrets.token_hex(8)
        message = {**body, "transaction": transaction}
        if self.api_secret:
            message["admin_secret" if self.admin else "apisecret"] = self.api_secret
        if self.session_id and body.get("janus") != "create":
            message["session_id"] = self.session_id
        if handle is not None:
            message["handle_id"] = handle
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        if body.get("janus") == "message":
            self._plugin_messages.add(transaction)
        try:
            await self._ws.send(json.dumps(message))
            answer = await asyncio.wait_for(future, within)
        except TimeoutError as exc:
            raise JanusError(f"Janus did not answer {body.get('janus')} in time") from exc
        except ConnectionClosed as exc:
            raise JanusError("the connection to Janus closed") from exc
        finally:
            self._waiting.pop(transaction, None)
            self._plugin_messages.discard(transaction)
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            raise JanusError(f"Janus refused: {error.get('reason', 'no reason')}")
        return answer

    @property
    def handles(self) -> list[int]:
        """The handles attached on this session now."""
        return list(self._handles)

    async def attach(self, plugin: str, on_event: OnEvent) -> int:
        """A new handle on `plugin`; its later events go to `on_event`."""
        answer = await self.request({"janus": "attach", "plugin": plugin})
        handle = int(answer["data"]["id"])
        self._handles[handle] = on_event
        return handle

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A plugin request: (the plugin's data, the JSEP it came with, if any).

        A plugin's error (the videoroom's `error_code`) is a JanusError too."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        answer = await self.request(request, handle=handle)
        data = answer.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(str(data["error"]))
        return data, answer.get("jsep")

    async def detach(self, handle: int) -> None:
        """Drop a handle (its PeerConnection with it); a handle already gone is fine."""
        self._handles.pop(handle, None)
        with contextlib.suppress(JanusError):
            await self.request({"janus": "detach"}, handle=handle)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_EVERY)
            try:
                await self.request({"janus": "keepalive"}, within=KEEPALIVE_TIMEOUT)
            except JanusError as exc:
                # Hung, or the session is gone: closing makes the supervisor start it again.
                log.error("Janus did not answer a keepalive (%s): giving up on it", exc)
                self._gone()
                if self._ws is not None:  # no closing handshake: a hung Janus never answers
                    self._ws.transport.abort()
                return

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                self._dispatch(event)
        except ConnectionClosed:
            pass
        finally:
            if not self._closing:
                log.warning("the connection to Janus at %s closed", self.url)
            self._gone()

    def _dispatch(self, event: Event) -> None:
        kind = event.get("janus")
        transaction = event.get("transaction")
        future = self._waiting.get(transaction) if transaction else None
        if future is not None and not future.done():
            if kind == "ack" and transaction in self._plugin_messages:
                return  # an asynchronous plugin request: its answer comes as an event
            future.set_result(event)
            return
        sender = event.get("sender")
        if sender is None:
            return
        on_event = self._handles.get(int(sender))
        if on_event is not None:
            try:
                on_event(event)
            except Exception:  # one handle's bug must not stop the reader
                log.exception("a Janus event handler failed")
