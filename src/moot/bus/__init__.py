"""Control-channel transports. Callers see only `Link`, a `Listener` (the EMS's end) and a
`Dialer` (the room server's end); a second transport is a new module here, chosen by
`bus_url`, not an edit of the cluster manager or the agent."""

from moot.bus.base import Dialer, Link, LinkClosed, Listener, Serve
from moot.bus.direct import DirectListener

__all__ = ["Dialer", "Link", "LinkClosed", "Listener", "Serve", "UnknownTransport", "listener_for"]


class UnknownTransport(ValueError):
    """A bus_url no transport of this release carries."""


def listener_for(bus_url: str) -> Listener:
    """The EMS's end of the transport `bus_url` names."""
    if bus_url == "direct":
        return DirectListener()
    raise UnknownTransport("only MOOT_BUS_URL=direct is available in this release")
