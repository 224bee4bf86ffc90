"""Whether a site lets the meeting page frame it: the room server asks the site itself.

A browser cannot tell a page why a cross-origin frame stayed blank, so the room server
fetches the address once, when a presenter sends it, and reads two headers of the answer:
`Content-Security-Policy: frame-ancestors` (which wins when present, as in browsers) and
`X-Frame-Options`. The verdict goes into the journaled event (`WebShare.frameable`,
`reason`): every page, a late joiner and the next room server after a failover show the
same thing without asking again.

The fetch is a server-side request a presenter chooses, so it is kept narrow (see
docs/protocol.md, "Send web page"): presenters only, http and https only (each redirect
checked again, at most MAX_REDIRECTS), no link-local, multicast or unspecified address
(cloud metadata services live at 169.254.169.254), no cookies or credentials, a short
timeout, the body never read, and nothing of the answer but the verdict given back.
Loopback and private addresses are allowed: an enterprise meeting shows intranet pages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

from moot.protocol.tools import WEB_SCHEMES, ToolEvent, WebShare
from moot.room.tools.base import Actor, only_presenters

log = logging.getLogger("moot.room.web")
TIMEOUT = 3.0  # seconds, for the whole check
MAX_REDIRECTS = 3
NOT_WEB = "this address sends browsers to one that is not a valid http or https address"
NOT_ASKED = "the meeting server does not check this address; open it in a new tab"
NOT_CHECKED = "the meeting server could not reach this address to check; open it in a new tab"


def verdict(headers: Mapping[str, str]) -> tuple[bool, str]:
    """(frameable, why not) from an answer's headers (names in lower case). Pure."""
    policy = headers.get("content-security-policy", "")
    for directive in policy.replace(",", ";").split(";"):
        parts = directive.split()
        if parts and parts[0].lower() == "frame-ancestors":
            sources = [p.lower() for p in parts[1:]]
            if "*" in sources or "https:" in sources or "http:" in sources:
                return True, ""
            return False, "this site does not let other sites show it in a frame (frame-ancestors)"
    options = headers.get("x-frame-options", "").strip().lower()
    if options in ("deny", "sameorigin"):
        return False, "this site does not let other sites show it in a frame (X-Frame-Options)"
    return True, ""


def refused_address(address: str) -> bool:
    """Addresses the room server never asks: link-local (cloud metadata), multicast,
    unspecified, reserved. Pure."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved


async def _addresses(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _ask(url: str) -> tuple[bool, str]:
    import httpx

    async with httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=True) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
                return False, NOT_WEB
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
            addresses = await _addresses(parts.hostname, port)
            if any(refused_address(a) for a in addresses):
                return False, NOT_ASKED
            try:
                async with client.stream("GET", url, headers={"accept": "text/html"}) as answer:
                    location = answer.headers.get("location")
                    if answer.is_redirect and location:
                        url = urljoin(url, location)
                        continue
                    return verdict({k.lower(): v for k, v in answer.headers.items()})
            except httpx.InvalidURL:  # httpx reads a redirect's Location even unfollowed
                return False, NOT_WEB
        return False, "this address redirects too often to check; open it in a new tab"


async def check(event: ToolEvent, actor: Actor) -> ToolEvent:
    """Before a `web.share` is journaled: who may send it, and the site's verdict."""
    if not isinstance(event, WebShare):
        return event
    only_presenters(actor, "send a web page")  # before the room server fetches anything
    # Imported at the first page sent, not at every room server's start (httpx and what it
    # brings, rich and click for its command line, are a tenth of the room server's imports).
    import httpx

    try:
        frameable, reason = await asyncio.wait_for(_ask(event.url), TIMEOUT)
    except (httpx.HTTPError, OSError, TimeoutError, ValueError):
        frameable, reason = False, NOT_CHECKED
    except Exception:  # a site's answer must never cost the meeting its event
        log.warning("could not check %s for framing", event.url, exc_info=True)
        frameable, reason = False, NOT_CHECKED
    return event.model_copy(update={"frameable": frameable, "reason": reason})
