"""Moot: an enterprise meeting server.

One Meeting Center (the EMS) in front of a cluster of room servers that host
the meetings. See docs/architecture.md for the map of the parts.
"""

__version__ = "0.1.0"
