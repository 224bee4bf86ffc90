"""A cap on every request body, counted as it streams: ASGI middleware for the EMS and rooms.

`Content-Length` alone is not enough: a chunked body gives none, and a client may send more
than it announced. So the bytes are counted as the application reads them; past the cap the
read fails, the application's own answer (whatever it made of the failure) is dropped, and
the client gets 413 with a sentence that says how much is allowed. A request that announces
too much is refused before a byte of it is read.

Each request gets its cap from a function of its scope: the EMS lets multipart requests to
its upload routes carry a meeting's files, and every other body far less.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class Cap:
    """The most a request may carry, in bytes, and how to say it ("the uploads allowed (4 MB)")."""

    limit: int
    words: str


CapOf = Callable[[Scope], Cap]


class BodyTooLarge(Exception):
    """Raised from `receive` once a body grows past its cap."""


class BodyLimit:
    """Refuse (413) a request body larger than its cap, before or while it is read."""

    def __init__(self, app: ASGIApp, *, cap: CapOf) -> None:
        self.app = app
        self.cap = cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap(scope)
        length = header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > cap.limit:
            await refuse(scope, send, cap)
            return
        seen = 0
        too_large = False
        started = False

        async def counting() -> Message:
            nonlocal seen, too_large
            if too_large:  # the application asks again after the failure: nothing more
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap.limit:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            if too_large:
                # Whatever the application answered to the failed read (a 400, a 500),
                # the client hears why: its body was too large.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await refuse(scope, send, cap)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except Exception:
            if not too_large:
                raise
            # Whatever the application made of the failed read, it is the cut: answered below.
        if too_large and not started:
            await refuse(scope, send, cap)


async def refuse(scope: Scope, send: Send, cap: Cap) -> None:
    """413 with the reason: JSON under /api/, a sentence elsewhere."""
    text = f"this request is larger than {cap.words}"
    if str(scope.get("path", "")).startswith("/api/"):
        body = ('{"detail": "' + text + '"}').encode()
        kind = b"application/json"
    else:
        body = f"Not sent: {text}. Go back and send less.".encode()
        kind = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the rest of the body is not read
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def is_multipart(scope: Scope) -> bool:
    return (header(scope, b"content-type") or "").lower().startswith("multipart/")


def fixed(limit: int, size_in_words: str) -> CapOf:
    """The same cap for every request ("64 KB")."""
    cap = Cap(limit, f"{size_in_words}, the most a request may carry here")
    return lambda _scope: cap
