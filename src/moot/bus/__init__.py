"""Control-channel transports. Callers see only `Link` (see base.py)."""

from moot.bus.base import Link, LinkClosed

__all__ = ["Link", "LinkClosed"]
