"""Web protections of the Meeting Center: security headers and CSRF tokens on every form.

CSRF is the signed double-submit pattern: a random `moot_csrf` cookie (SameSite=Strict,
HttpOnly) and, in a hidden field of every form, an HMAC of that cookie and the browser's
sign-in cookie, keyed by a secret of the EMS; a POST whose field is not the HMAC of the
cookies it comes with is refused. So a token is bound to its session: one made for another
browser, or before signing in or out, opens nothing, even to someone who can plant cookies.
The JSON API needs no token: a browser sends JSON across sites only after a CORS preflight,
which the EMS refuses (bar the rejoin call, which carries its own credential).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moot.ems.container import Ems
from moot.ems.deps import SESSION_COOKIE
from moot.infra.security_headers import with_security_headers

CSRF_COOKIE = "moot_csrf"
CSRF_FIELD = "csrf"


class WebSecurity:
    """Adds the security headers (moot.infra.security_headers), and gives every browser a CSRF
    cookie."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _cookie(scope, CSRF_COOKIE)
        fresh = token is None or len(token) < 20
        if fresh:
            token = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf"] = token
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(
                    list(message.get("headers", [])), path, https=self.https
                )
                if fresh:
                    secure = "; Secure" if self.https else ""
                    cookie = f"{CSRF_COOKIE}={token}; Path=/; SameSite=Strict; HttpOnly{secure}"
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is no token
                return None
            if name in jar:
                return jar[name].value
    return None


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry: its CSRF cookie bound to its sign-in."""
    return bound_token(request, str(getattr(request.state, "csrf", "")))


def bound_token(request: Request, cookie: str) -> str:
    """HMAC(EMS secret, the CSRF cookie and the sign-in cookie): a token for this session."""
    ems: Ems = request.app.state.ems
    key = ems.csrf_key
    session = request.cookies.get(SESSION_COOKIE, "")
    mac = hmac.new(key, f"{cookie}\0{session}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


async def check_csrf(request: Request) -> None:
    """A dependency of every form POST: the form's token must be the one of its cookies."""
    form = await request.form()  # Starlette keeps it: the route reads the same form
    sent = str(form.get(CSRF_FIELD, ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent, bound_token(request, cookie)):
        raise CsrfRefused(
            "this form is out of date or was not sent from the Meeting Center: "
            "go back, reload the page and send it again"
        )


class CsrfRefused(Exception):
    """A form POST without the CSRF token of its cookie (answered 403 with a page)."""
