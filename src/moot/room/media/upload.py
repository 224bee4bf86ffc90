"""Recorded media to the EMS: each file the recorder made ready goes up the control link
in parts (`recorded_media`), and is deleted once the EMS acknowledges it.

The agent runs it on its own loop, one per control link (room/agent.py). A file not
acknowledged (the link dropped, the EMS is slow) is sent again whole later; the EMS
stores a file once, whatever it is sent again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from moot.bus import Link
from moot.protocol.control import RecordedMedia, RecordedMediaAck
from moot.room.media.recorder import ReadyMedia, forget, ready_files

log = logging.getLogger("moot.room.media")

# Parts this large (a NATS message holds 1 MiB; base64 makes a part a third larger),
# looked for this often, each file acknowledged in this time.
PART_BYTES = 256 * 1024
SCAN_INTERVAL = 1.0
ACK_TIMEOUT = 60.0


def media_parts(path: Path) -> Iterator[tuple[bytes, bool]]:
    """A file in parts of PART_BYTES, each with whether it is the last."""
    size = path.stat().st_size
    with path.open("rb") as file:
        while True:
            data = file.read(PART_BYTES)
            last = file.tell() >= size
            yield data, last
            if last:
                return


class MediaUploader:
    def __init__(self, ready: Path) -> None:
        self.ready = ready
        self._acks: dict[str, asyncio.Future[RecordedMediaAck]] = {}

    def acknowledged(self, ack: RecordedMediaAck) -> None:
        waiting = self._acks.pop(ack.name, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(ack)

    async def run(self, link: Link) -> None:
        """Until cancelled (the link is gone): send what is ready, one file at a time."""
        while True:
            for media, path in await asyncio.to_thread(ready_files, self.ready):
                future = asyncio.get_running_loop().create_future()
                self._acks[media.name] = future
                try:
                    await self._send(link, media, path)
                    ack = await asyncio.wait_for(future, ACK_TIMEOUT)
                except (TimeoutError, OSError) as exc:
                    log.warning("recorded media %s not stored yet: %s", media.name, exc)
                    break
                finally:
                    self._acks.pop(media.name, None)
                if not ack.ok:
                    log.warning("the EMS refused recorded media %s: %s", media.name, ack.error)
                forget(self.ready, media.name)
            await asyncio.sleep(SCAN_INTERVAL)

    @staticmethod
    async def _send(link: Link, media: ReadyMedia, path: Path) -> None:
        for part, (data, last) in enumerate(media_parts(path)):
            await link.send(
                RecordedMedia(
                    meeting_id=media.meeting_id,
                    epoch=media.epoch,
                    name=media.name,
                    user=media.user,
                    kind=media.kind,
                    track=media.track,
                    content_type=media.content_type,
                    started_at=datetime.fromisoformat(media.started_at),
                    part=part,
                    last=last,
                    data=base64.b64encode(data).decode("ascii"),
                )
            )
