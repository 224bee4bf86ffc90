"""The seam between the control channel's users and its transports.

A `Link` is one room server's bidirectional channel to the EMS: ordered text
messages both ways. The `direct` transport carries it over a WebSocket; a NATS
transport carries the same messages over subjects. Neither the cluster
manager nor the room agent knows which one it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from starlette.routing import BaseRoute


class LinkClosed(Exception):
    """The other side went away (or we closed the link)."""


class TlsRefused(ConnectionError):
    """The TLS handshake with the EMS failed for a reason an administrator must fix (a CA
    or certificate setting), not a passing outage; the message says which setting."""


class Link(ABC):
    """One ordered, bidirectional control channel."""

    peer: str = "?"
    certificate_name: str | None = None
    """The name (CN) a client certificate the cluster CA signed proves; None without one.

    Set by a transport that checked the certificate in its TLS handshake; the cluster
    manager lets a room server join under this name without the cluster secret."""

    @abstractmethod
    async def send_text(self, text: str) -> None:
        """Send one message; LinkClosed when the channel is gone."""

    @abstractmethod
    async def receive_text(self) -> str:
        """Wait for the next message; LinkClosed when the channel is gone."""

    @abstractmethod
    async def close(self, reason: str = "", *, refused: bool = False) -> None:
        """Close the channel; safe to call twice. `refused`: the peer must not come back."""

    async def send(self, message: BaseModel) -> None:
        await self.send_text(message.model_dump_json())


# What the EMS does with a link a room server opened: ClusterManager.serve_link, which
# returns when the link is done.
Serve = Callable[[Link], Awaitable[None]]
# How a room server opens its link to the EMS (again, after each loss).
Dialer = Callable[[], Awaitable[Link]]


class Listener:
    """The EMS's end of a transport: takes the room servers' links and hands each to
    `serve`. A transport carried by the EMS's own HTTP server gives `routes` to mount; one
    with connections of its own (a message bus) starts and stops them."""

    def routes(self, serve: Serve) -> list[BaseRoute]:
        return []

    async def start(self, serve: Serve) -> None:
        """Begin taking links (after the cluster manager is ready)."""

    async def stop(self) -> None:
        """Take no more links; the cluster manager closes the open ones."""
