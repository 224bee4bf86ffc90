"""Recorded media arriving from room servers: parts put together, stored, acknowledged.

A room server sends each media file its Janus recorded in parts, in order, on its control
link (room/agent.py); the whole file is stored once its last part is in, and the room
server is told (recorded_media_ack) so it deletes its copy. Parts of a file whose link
dropped are forgotten: the room server sends the whole file again on its next link.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.bus import LinkClosed
from moot.ems.cluster.registry import LiveServer
from moot.ems.store.recording_media import store_media
from moot.protocol.control import RecordedMedia, RecordedMediaAck

log = logging.getLogger("moot.ems.cluster")

# A file larger than this is refused (its parts are held in memory until the last).
MAX_MEDIA_BYTES = 1024 * 1024 * 1024


class MediaReceiver:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._parts: dict[tuple[str, str], list[bytes]] = {}  # (server, file) -> parts

    def forget(self, server: LiveServer) -> None:
        """The server's link is gone: what it was sending comes again whole."""
        for key in [k for k in self._parts if k[0] == server.name]:
            del self._parts[key]

    async def receive(self, server: LiveServer, message: RecordedMedia) -> None:
        key = (server.name, message.name)
        parts = self._parts.setdefault(key, [])
        if message.part != len(parts):  # a part missing: start again from the first
            parts.clear()
            if message.part != 0:
                self._parts.pop(key, None)
                return
        try:
            parts.append(base64.b64decode(message.data, validate=True))
        except binascii.Error:
            self._parts.pop(key, None)
            await self._ack(server, message.name, "a part was not base64")
            return
        if sum(len(p) for p in parts) > MAX_MEDIA_BYTES:
            self._parts.pop(key, None)
            await self._ack(server, message.name, "the file is larger than the EMS keeps")
            return
        if not message.last:
            return
        data = b"".join(self._parts.pop(key))
        async with self._sessions() as session:
            error = await store_media(
                session,
                server_name=server.name,
                meeting_id=message.meeting_id,
                epoch=message.epoch,
                name=message.name,
                user=message.user,
                kind=message.kind,
                track=message.track,
                content_type=message.content_type,
                started_at=message.started_at,
                data=data,
            )
            await session.commit()
        if error:
            log.warning("refused recorded media %s from %s: %s", message.name, server.name, error)
        else:
            log.info(
                "stored recorded media %s (%d bytes) from %s", message.name, len(data), server.name
            )
        await self._ack(server, message.name, error)

    @staticmethod
    async def _ack(server: LiveServer, name: str, error: str) -> None:
        link = server.link
        if link is None:
            return
        with contextlib.suppress(LinkClosed):
            await link.send(RecordedMediaAck(name=name, ok=not error, error=error))
