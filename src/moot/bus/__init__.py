"""Control-channel transports. Callers see only `Link`, a `Listener` (the EMS's end) and a
`Dialer` (the room server's end); a second transport is a new module here, chosen by
`bus_url`, not an edit of the cluster manager or the agent."""

from moot.bus.base import Dialer, Link, LinkClosed, Listener, Serve
from moot.bus.direct import DirectListener

__all__ = [
    "Dialer",
    "Link",
    "LinkClosed",
    "Listener",
    "Serve",
    "UnknownTransport",
    "is_nats",
    "listener_for",
]


class UnknownTransport(ValueError):
    """A bus_url no transport of this release carries."""


def is_nats(bus_url: str) -> bool:
    return bus_url.startswith(("nats://", "tls://"))


def listener_for(bus_url: str) -> Listener:
    """The EMS's end of the `direct` transport. The `nats` one needs the node's NATS
    connection and is built with it (moot.ems.cluster.node); here it mounts nothing."""
    if bus_url == "direct" or is_nats(bus_url):
        return DirectListener() if bus_url == "direct" else Listener()
    raise UnknownTransport(f"unknown bus_url {bus_url!r}: use `direct` or nats://host:port")
