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
REQUEST_TIMEOUT = 10.0  # seconds Janus may take to answer one request
KEEPALIVE_EVERY = 20.0  # seconds; Janus drops a session silent for session_timeout (60 s)

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


class JanusError(Exception):
    """Janus refused a request, did not answer it, or is gone."""


class JanusClient:
    """One WebSocket to Janus with one session on it."""

    def __init__(self, url: str, api_secret: str = "") -> None:
        self.url = url
        self.api_secret = api_secret
        self.session_id = 0
        self._ws: ClientConnection | None = None
        self._waiting: dict[str, asyncio.Future[Event]] = {}
        self._handles: dict[int, OnEvent] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self._closing = False  # we close it: no warning

    async def open(self) -> None:
        """Connect and create the session; JanusError (or OSError) if Janus is not there."""
        self._ws = await connect(
            self.url, subprotocols=[JANUS_PROTOCOL], open_timeout=5, max_size=2**22
        )
        self._tasks = [asyncio.create_task(self._read())]
        answer = await self.request({"janus": "create"})
        self.session_id = int(answer["data"]["id"])
        self._tasks.append(asyncio.create_task(self._keepalive()))

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        self._gone()

    def _gone(self) -> None:
        self.closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(JanusError("the connection to Janus closed"))
        self._waiting.clear()

    async def request(self, body: dict[str, Any], *, handle: int | None = None) -> Event:
        """Send one request and return Janus's answer (for an asynchronous plugin request,
        the event that follows its `ack`); JanusError for an `error` answer."""
        if self._ws is None or self.closed.is_set():
            raise JanusError("not connected to Janus")
        transaction = secrets.token_hex(8)
        message = {**body, "transaction": transaction}
        if self.api_secret:
            message["apisecret"] = self.api_secret
        if self.session_id and body.get("janus") != "create":
            message["session_id"] = self.session_id
        if handle is not None:
            message["handle_id"] = handle
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        try:
            await self._ws.send(json.dumps(message))
            answer = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError as exc:
            raise JanusError(f"Janus did not answer {body.get('janus')} in time") from exc
        except ConnectionClosed as exc:
            raise JanusError("the connection to Janus closed") from exc
        finally:
            self._waiting.pop(transaction, None)
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            raise JanusError(f"Janus refused: {error.get('reason', 'no reason')}")
        return answer

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
                await self.request({"janus": "keepalive"})
            except JanusError:
                log.warning("Janus did not answer a keepalive")

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
            if kind == "ack":  # an asynchronous request: its answer comes as an event
                return
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
