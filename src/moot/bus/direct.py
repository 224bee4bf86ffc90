"""The `direct` transport: the room server dials the EMS over a WebSocket."""

from __future__ import annotations

import contextlib
import ssl

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from moot.bus.base import Link, LinkClosed

CONTROL_PATH = "/cluster/ws"
# Close code for a refused registration (the 4000-4999 range is ours).
REFUSED_CLOSE_CODE = 4003
# An open_meeting carries the meeting's journal; 64 MiB holds tens of thousands of lines.
MAX_MESSAGE = 2**26


def control_url(ems_url: str) -> str:
    """ws(s):// address of the EMS's control endpoint."""
    base = ems_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + CONTROL_PATH
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + CONTROL_PATH
    raise ValueError(f"ems_url must start with http:// or https://, not {ems_url!r}")


class ServerSideLink(Link):
    """The EMS's end: a Starlette WebSocket the room server opened."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        client = websocket.client
        self.peer = f"{client.host}:{client.port}" if client else "?"

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise LinkClosed(str(exc)) from exc

    async def receive_text(self) -> str:
        try:
            return await self._ws.receive_text()
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise LinkClosed(str(exc)) from exc

    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        if self._ws.application_state is WebSocketState.CONNECTED:
            code = REFUSED_CLOSE_CODE if refused else 1000
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._ws.close(code=code, reason=reason[:120])


class ClientSideLink(Link):
    """The room server's end: a `websockets` client connection."""

    def __init__(self, connection: ClientConnection, peer: str) -> None:
        self._conn = connection
        self.peer = peer

    async def send_text(self, text: str) -> None:
        try:
            await self._conn.send(text)
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from exc

    async def receive_text(self) -> str:
        try:
            data = await self._conn.recv()
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from exc
        return data if isinstance(data, str) else data.decode()

    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        await self._conn.close(code=1000, reason=reason[:120])


async def dial(ems_url: str, ssl_context: ssl.SSLContext | None = None) -> Link:
    """Open a control link to the EMS; ConnectionError when it cannot be reached now."""
    url = control_url(ems_url)
    try:
        connection = await websockets.connect(
            url,
            ssl=ssl_context,
            open_timeout=5,
            ping_interval=5,
            ping_timeout=5,
            max_size=MAX_MESSAGE,
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        # A proxy's 502 during an EMS restart is as passing as a refused connection.
        raise ConnectionError(f"{url}: {exc}") from exc
    return ClientSideLink(connection, url)
