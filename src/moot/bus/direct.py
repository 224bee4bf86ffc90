"""The `direct` transport: the room server dials the EMS over a WebSocket."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from typing import Any

import websockets
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage

from moot.bus.base import Dialer, Link, LinkClosed, Listener, Serve, TlsRefused
from moot.infra.certs import peer_name

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


def verified_certificate_name(scope: Mapping[str, Any]) -> str | None:
    """The CN of the client certificate in the ASGI TLS extension, None without one.

    The server lists a certificate there only once its handshake verified it against the
    CA it was given (moot.infra.asgi_tls fills the extension on the EMS; uvicorn alone does not).
    """
    extensions = scope.get("extensions") or {}
    tls = extensions.get("tls") if isinstance(extensions, Mapping) else None
    if not isinstance(tls, Mapping) or tls.get("client_cert_error") is not None:
        return None
    chain = tls.get("client_cert_chain") or []
    if not chain or not isinstance(chain[0], str):
        return None
    try:
        der = ssl.PEM_cert_to_DER_cert(chain[0])
    except ValueError:
        return None
    return peer_name(der)


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind exc, which websockets may wrap (InvalidMessage from an alert)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# Alerts an EMS sends when it does not accept the client certificate this room server sent.
_CLIENT_CERT_ALERTS = (
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
)


class ServerSideLink(Link):
    """The EMS's end: a Starlette WebSocket the room server opened."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        client = websocket.client
        self.peer = f"{client.host}:{client.port}" if client else "?"
        self.certificate_name = verified_certificate_name(websocket.scope)

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


def _closed_after_handshake(exc: BaseException) -> bool:
    """The EMS closed the connection in or right after the TLS handshake, without a word.

    That is what an EMS does to a client certificate it refuses: asyncio drops its alert
    (see moot.infra.asgi_tls), so the room server sees only the end of the stream.
    """
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
        return True
    return isinstance(_ssl_error(exc), ssl.SSLEOFError)


async def dial(
    ems_url: str, ssl_context: ssl.SSLContext | None = None, *, client_certificate: bool = False
) -> Link:
    """Open a control link to the EMS; ConnectionError when it cannot be reached now.

    TlsRefused (a ConnectionError too) when a TLS setting is the likely cause: the EMS's
    certificate does not verify, or (client_certificate: ssl_context carries one) the EMS
    cut the connection at the handshake.
    """
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
        tls = _ssl_error(exc)
        if isinstance(tls, ssl.SSLCertVerificationError):
            raise TlsRefused(
                f"{url}: the EMS's certificate is not trusted "
                f"({tls.verify_message or tls.reason}): "
                "tls_ca (MOOT_TLS_CA) must name the CA that signed it (the cluster's ca.pem)"
            ) from exc
        if (tls is not None and tls.reason in _CLIENT_CERT_ALERTS) or (
            client_certificate and url.startswith("wss://") and _closed_after_handshake(exc)
        ):
            why = tls.reason if tls is not None and tls.reason else "closed at the handshake"
            raise TlsRefused(
                f"{url}: the EMS refused this room server's client certificate ({why}): "
                "room_client_cert (MOOT_ROOM_CLIENT_CERT) must be signed by the cluster CA "
                "the EMS trusts (its tls_client_ca); the EMS's log names the reason"
            ) from exc
        # A proxy's 502 during an EMS restart is as passing as a refused connection.
        raise ConnectionError(f"{url}: {exc}") from exc
    return ClientSideLink(connection, url)


class DirectListener(Listener):
    """The EMS's end: a WebSocket route, CONTROL_PATH, on the EMS's own HTTP server."""

    def routes(self, serve: Serve) -> list[BaseRoute]:
        async def control(websocket: WebSocket) -> None:
            await websocket.accept()
            await serve(ServerSideLink(websocket))

        return [WebSocketRoute(CONTROL_PATH, control)]


def dialer(
    ems_url: str, ssl_context: ssl.SSLContext | None = None, *, client_certificate: bool = False
) -> Dialer:
    """The room server's end: dials the EMS at `ems_url` each time it is called."""

    async def dial_ems() -> Link:
        return await dial(ems_url, ssl_context, client_certificate=client_certificate)

    return dial_ems
