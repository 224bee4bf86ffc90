"""Security headers for every page the EMS and the room servers serve.

Pages load scripts and styles from their own server only; they open WebSockets to room
servers (other origins) and the meeting page calls the EMS back to rejoin, so `connect-src`
allows those. No form-action: attending is a form whose answer redirects to a room server,
and browsers apply form-action to that redirect too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss: http: https:; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(self), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The meeting page frames the web pages presenters send (any http or https site; the
# frame itself is sandboxed): the room server's pages only, never the EMS's.
FRAMES_POLICY = CONTENT_SECURITY_POLICY + "; frame-src http: https:"
FRAMES_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", FRAMES_POLICY.encode()),
    *HEADERS[1:],
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
# The interactive API docs load their scripts from a CDN: they keep FastAPI's defaults.
DOCS_PATHS = ("/docs", "/redoc")


def with_security_headers(
    headers: list[tuple[bytes, bytes]], path: str, *, https: bool, frames: bool = False
) -> list[tuple[bytes, bytes]]:
    extra = [] if path.startswith(DOCS_PATHS) else FRAMES_HEADERS if frames else HEADERS
    return [*headers, *extra, *([HSTS] if https else [])]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP answer."""

    def __init__(self, app: ASGIApp, *, https: bool, frames: bool = False) -> None:
        self.app = app
        self.https = https
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(
                    list(message.get("headers", [])), path, https=self.https, frames=self.frames
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)
