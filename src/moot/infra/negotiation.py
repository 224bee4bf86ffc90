"""Whether an answer goes to a browser page (HTML) or to a program (JSON).

A browser asks for `text/html` when it follows a link or types an address; programs ask
for JSON or for anything (`*/*`, curl's default). API paths always answer JSON.
"""

from __future__ import annotations

from starlette.requests import Request

API_PREFIX = "/api/"


def wants_html(request: Request) -> bool:
    """True for a browser asking for a page: not an API path, `text/html` preferred to
    JSON (or asked for without JSON)."""
    if request.url.path.startswith(API_PREFIX):
        return False
    accept = request.headers.get("accept", "").lower()
    html = _quality(accept, "text/html")
    return html > 0 and html >= _quality(accept, "application/json")


def _quality(accept: str, media_type: str) -> float:
    """The q value `accept` gives `media_type` itself (0 when not named; wildcards do not
    count, so `*/*` alone never asks for HTML)."""
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if name != media_type:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    return float(value)
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0
