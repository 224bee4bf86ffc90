"""The bitrate of this room server's media, read from Janus's admin API.

Janus counts the bytes each handle received and sent in the last second (`handle_info`:
the `stats` of each of its streams). The room server asks about its own
handles every few seconds and reports the sum as its media bitrate (docs/protocol.md,
`status.media.bitrate_kbps`), which placement weighs. The admin API listens on
127.0.0.1 only and answers only with the admin_secret Moot generated (janus_config.py);
an operator's Janus (`janus_url`) is not asked: its bitrate is reported as 0.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from moot.room.media.hub import MediaHub
from moot.room.media.janus_client import JanusClient, JanusError

log = logging.getLogger("moot.room.media")

MEASURE_EVERY = 3.0  # seconds between two readings: one admin request per handle each


def bytes_last_second(info: dict[str, Any]) -> int:
    """The bytes a handle received and sent in the last second, from its `handle_info`:
    Janus 1.x counts them per stream, `webrtc.media.<mid>.stats.{in,out}.bytes_lastsec`."""
    media = info.get("webrtc", {}).get("media", {})
    streams = media.values() if isinstance(media, dict) else media
    return sum(
        _lastsec(stream.get("stats", {}).get(way)) for stream in streams for way in ("in", "out")
    )


def _lastsec(counts: Any) -> int:
    """A direction's `bytes_lastsec` (with any `*bytes_lastsec` of simulcast layers)."""
    if not isinstance(counts, dict):
        return 0
    return sum(v for k, v in counts.items() if k.endswith("bytes_lastsec") and isinstance(v, int))


async def measure(admin: JanusClient, session: JanusClient, hub: MediaHub) -> None:
    """Until cancelled or the admin connection closes: the hub's bitrate, in kbit/s."""
    while not admin.closed.is_set():
        total = 0
        for handle in session.handles:
            try:
                answer = await admin.request(
                    {"janus": "handle_info", "session_id": session.session_id}, handle=handle
                )
            except JanusError:
                continue  # detached meanwhile, or the admin connection went (checked above)
            total += bytes_last_second(answer.get("info", {}))
        hub.bitrate_kbps = total * 8 // 1000
        hub.recount()
        await asyncio.sleep(MEASURE_EVERY)
    log.warning("the connection to Janus's admin API closed: media bitrate not measured")
    hub.bitrate_kbps = 0
    hub.recount()
