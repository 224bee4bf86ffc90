"""HTTPS for the EMS under uvicorn, with what the cluster manager needs from the handshake.

uvicorn can serve HTTPS by itself (its `ssl` context), but then two things are out of
Moot's reach:

1. A client certificate from another CA fails the handshake inside asyncio, which logs
   nothing about it unless the event loop runs in debug mode. Refusing a room server
   silently breaks the rule that every refusal is logged (who, from where, why).
2. uvicorn (0.54) does not fill the ASGI TLS extension (`scope["extensions"]["tls"]`), so
   the control endpoint cannot see the certificate a room server proved its name with.

So the EMS gives uvicorn no SSL context. `tls_http_protocol` makes an HTTP protocol class
that runs the handshake itself with `loop.start_tls` (public asyncio API): it knows the
peer's address, so it can log a refused certificate, and once the handshake is done it
hands the TLS transport to uvicorn's own HTTP protocol, which works on it exactly as on
one uvicorn made. `TlsWebSocketsProtocol` is uvicorn's default WebSocket protocol plus
the standard ASGI TLS extension, read from the transport's `ssl_object`; if a later
uvicorn fills the extension itself, nothing else has to change.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, cast

from cryptography import x509
from uvicorn.config import Config
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

log = logging.getLogger("moot.tls")

# A client that has not finished its handshake by then is not a room server at work.
HANDSHAKE_TIMEOUT = 10.0
# Numbers the ASGI TLS extension uses for tls_version (the TLS wire values).
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


class _TlsFront(asyncio.Protocol):
    """One connection: TLS handshake first, then uvicorn's HTTP protocol takes over."""

    context: ssl.SSLContext
    handshakes: set[asyncio.Task[None]]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop or asyncio.get_event_loop()
        # What the TLS layer delivers between the handshake and the hand-over.
        self._early: list[bytes] = []
        self._eof = False
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        # Before asyncio starts reading: the ClientHello must reach the TLS layer, not us.
        raw.pause_reading()
        task = self._loop.create_task(self._handshake(raw))
        self.handshakes.add(task)  # a reference, or the task could vanish mid-handshake
        task.add_done_callback(self.handshakes.discard)

    async def _handshake(self, raw: asyncio.Transport) -> None:
        peer = _peer(raw)
        try:
            tls = await self._loop.start_tls(
                raw,
                self,
                self.context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except ssl.SSLCertVerificationError as exc:
            # Only a client certificate is verified on this side: one the cluster CA
            # did not sign (or expired, or not for client use). Security-relevant.
            # The room server has not named itself yet: the address is what is known.
            log.warning(
                "refused a connection from %s in the TLS handshake: its client certificate "
                "is not signed by the cluster CA (tls_client_ca) or not valid (%s)",
                peer,
                exc.verify_message or exc.reason or exc,
            )
            raw.close()
            return
        except (OSError, TimeoutError) as exc:
            # Scanners, plain HTTP on the HTTPS port, browsers that do not trust our CA.
            log.debug("TLS handshake with %s failed: %s", peer, exc)
            raw.close()
            return
        if tls is None or self._lost:
            return  # the client left during the handshake
        inner = AutoHTTPProtocol(  # type: ignore[call-arg]
            config=self._config,
            server_state=self._server_state,
            app_state=self._app_state,
            _loop=self._loop,
        )
        tls.set_protocol(inner)
        inner.connection_made(tls)
        if self._early:
            inner.data_received(b"".join(self._early))
        if self._eof:
            inner.eof_received()

    # Until the hand-over the TLS layer talks to this object.
    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return True  # keep the transport open: uvicorn's protocol decides

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True


def tls_http_protocol(context: ssl.SSLContext) -> type[asyncio.Protocol]:
    """An HTTP protocol class for uvicorn (its `http=`) that serves HTTPS with context."""
    return type("TlsHttpProtocol", (_TlsFront,), {"context": context, "handshakes": set()})


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, object] | None:
    """The ASGI TLS extension of a connection, None for plain TCP.

    client_cert_chain holds the client's certificate (PEM) only when the handshake
    verified it: with CERT_OPTIONAL and the cluster CA, that means the CA signed it.
    """
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    chain: list[str] = []
    name = None
    verified = ssl_object.getpeercert()  # empty unless the certificate was verified
    der = ssl_object.getpeercert(binary_form=True) if verified else None
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    version = ssl_object.version()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": None,
    }


class TlsWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol, plus scope["extensions"]["tls"]."""

    async def run_asgi(self) -> None:
        # run_asgi starts the app with self.scope, built from the upgrade request just now.
        tls = tls_extension(self.transport)
        if tls is not None:
            extensions = self.scope.setdefault("extensions", {})
            extensions["tls"] = cast(dict[object, object], tls)
        await super().run_asgi()


class HttpsStartupLine(logging.Filter):
    """uvicorn says "running on http://" when it does no TLS itself; here it is https."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Uvicorn running on %s://"):
            args = record.args
            if isinstance(args, tuple) and args and args[0] == "http":
                record.args = ("https", *args[1:])
        return True
