"""Typed, versioned messages shared by the EMS and the room servers.

`control` holds the control channel (room server <-> EMS); `client` holds the
meeting WebSocket (browser <-> room server). docs/protocol.md documents both.
"""

from moot.protocol.version import PROTOCOL_VERSION, is_compatible

__all__ = ["PROTOCOL_VERSION", "is_compatible"]
