"""Community services' shared state on NATS JetStream, as every room server sees it.

- `{prefix}_presence` (KV): one key per device, `<person>.<device>`, the device's record
  (moot.core.community.Device), written when it changes; it names the room server (run)
  the device is on. Every room server watches the whole bucket.
- `{prefix}_servers` (KV, with a TTL): one key per room server run, rewritten every
  HEARTBEAT seconds: its devices count as seen when it last was. A device whose server
  has been silent for DEVICE_STALE seconds is offline (unless it came back elsewhere),
  and its record is deleted.
- `{prefix}_people` (KV): per person, `c.<person>`: contacts with groups, blocked people,
  conversations with the last message read. Updated with compare-and-set: two devices on
  two servers never lose each other's change.
- `{prefix}_conv` (KV): per conversation, its members and title.
- `{prefix}_im` (stream, subjects `{prefix}.im.<conversation>`): the messages, on file,
  kept for the retention setting (max_age; 0 = for ever), deduplicated by the sender's
  own id (`Nats-Msg-Id`) within DUPLICATE_WINDOW. A message is acknowledged to its sender
  only once the stream has acknowledged it.
- `{prefix}.typing.<conversation>` (plain NATS): typing indicators, never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.errors import NotFoundError as JsNotFoundError
from nats.js.kv import KeyValue

from moot.core.community import DEVICE_STALE

log = logging.getLogger("moot.room.community")

DUPLICATE_WINDOW = 120.0  # seconds: a client resends within seconds of a reconnect
SERVER_TTL = DEVICE_STALE * 3  # the bucket drops the keys of servers long dead
HISTORY_LIMIT = 200  # messages of a conversation a client gets when it opens it
DAY = 86_400.0


class BusDown(Exception):
    """NATS could not be reached or did not answer: the client should try again."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A message as the stream keeps it, with its sequence number."""

    seq: int
    body: dict[str, Any]

    def to_client(self) -> dict[str, Any]:
        return {"type": "message", "seq": self.seq, **self.body}


def stream_of(prefix: str) -> str:
    return f"{prefix}_im"


class CommunityBus:
    """One room server's connection to the shared state above."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self.presence: KeyValue | None = None
        self.servers: KeyValue | None = None
        self.people: KeyValue | None = None
        self.conversations: KeyValue | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusDown("not connected to the message bus")
        return self._js

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise BusDown("not connected to the message bus")
        return self._nc

    async def start(self, retention_days: int) -> None:
        async def down(*_: object) -> None:
            self.connected.clear()
            log.warning("community bus: disconnected from NATS")

        async def up(*_: object) -> None:
            self.connected.set()
            said.clear()
            log.info("community bus: connected to NATS again")

        said: set[str] = set()  # what went wrong since the bus was last up, said once each

        async def error(exc: Exception) -> None:
            # One line, not nats-py's traceback for every retry (0.2 s apart while it is down).
            text = str(exc) or type(exc).__name__
            if text not in said:
                said.add(text)
                log.warning("community bus: %s (%s); retrying", text, self.url)

        self._nc = await nats.connect(
            servers=[self.url],
            name="moot-room-community",
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            disconnected_cb=down,
            reconnected_cb=up,
            error_cb=error,
        )
        self._js = self._nc.jetstream(timeout=5)
        self.presence = await self._bucket("presence", ttl=0)
        self.servers = await self._bucket("servers", ttl=SERVER_TTL)
        self.people = await self._bucket("people", ttl=0)
        self.conversations = await self._bucket("conv", ttl=0)
        await self.set_retention(retention_days)
        self.connected.set()

    async def _bucket(self, name: str, *, ttl: float) -> KeyValue:
        bucket = f"{self.prefix}_{name}"
        # Not `direct` (reads answered by the stream, $JS.API.DIRECT.GET): tried for the
        # reconnect storm, the one 10,000-user run with it (NATS 2.9.10, a loaded machine)
        # had sign-ins' reads time out by the hundred; not isolated further.
        config = KeyValueConfig(bucket=bucket, history=1, ttl=ttl or None, storage=StorageType.FILE)
        try:
            return await self.js.create_key_value(config)
        except BadRequestError:  # another room server made it first, the same way
            return await self.js.key_value(bucket)

    async def set_retention(self, days: int) -> None:
        """Keep messages `days` days (0: for ever); older ones are deleted from the stream."""
        config = StreamConfig(
            name=stream_of(self.prefix),
            subjects=[f"{self.prefix}.im.*"],
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
            max_age=days * DAY if days else None,
        )
        try:
            await self.js.add_stream(config)
        except BadRequestError:  # exists with another retention: take the new one
            await self.js.update_stream(config)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    # -- watching --------------------------------------------------------------------------

    def watch(self, bucket: KeyValue, on_change: Callable[[str, bytes | None], None]) -> None:
        """Call on_change(key, value or None for deleted) for every key now and later."""

        async def follow() -> None:
            while True:
                try:
                    watcher = await bucket.watchall()
                    async for entry in watcher:
                        if entry is None:
                            continue  # the end of the values there were
                        deleted = entry.operation in ("DEL", "PURGE")
                        on_change(entry.key, None if deleted else entry.value)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS went away: watch again once it is back
                    log.warning("community bus: watch of %s broke (%s)", bucket._name, exc)
                    await asyncio.sleep(0.5)

        self._tasks.append(asyncio.create_task(follow()))

    async def follow_messages(self, on_message: Callable[[Stored], None]) -> None:
        """Every new message of the stream, as it is stored (an ordered push consumer)."""

        async def received(msg: Msg) -> None:
            try:
                body = json.loads(msg.data)
            except ValueError:
                return
            on_message(Stored(msg.metadata.sequence.stream, body))

        await self.js.subscribe(
            f"{self.prefix}.im.*",
            cb=received,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )

    async def follow_typing(self, on_typing: Callable[[dict[str, Any]], None]) -> None:
        async def received(msg: Msg) -> None:
            with contextlib.suppress(ValueError):
                on_typing(json.loads(msg.data))

        await self.nc.subscribe(f"{self.prefix}.typing.*", cb=received)

    # -- writing ---------------------------------------------------------------------------

    async def publish_message(self, conversation: str, body: dict[str, Any], dedupe: str) -> int:
        """Store a message; its sequence number (the first one's for a resent duplicate)."""
        try:
            ack = await self.js.publish(
                f"{self.prefix}.im.{conversation}",
                json.dumps(body).encode(),
                headers={"Nats-Msg-Id": dedupe},
                stream=stream_of(self.prefix),
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusDown(str(exc) or type(exc).__name__) from exc
        return int(ack.seq)

    async def typing(self, conversation: str, body: dict[str, Any]) -> None:
        await self.nc.publish(f"{self.prefix}.typing.{conversation}", json.dumps(body).encode())

    async def last_seq(self, conversation: str) -> int:
        """The sequence number of the conversation's last stored message (0: none)."""
        try:
            last = await self.js.get_last_msg(
                stream_of(self.prefix), f"{self.prefix}.im.{conversation}"
            )
        except JsNotFoundError:
            return 0
        return int(last.seq or 0)

    async def history(self, conversation: str, after: int = 0) -> list[Stored]:
        """The conversation's stored messages after seq `after` (the last HISTORY_LIMIT)."""
        subject = f"{self.prefix}.im.{conversation}"
        if await self.last_seq(conversation) <= after:
            return []  # nothing new: no consumer made (a sign-in asks this per conversation)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
            filter_subject=subject,
        )
        sub = await self.js.pull_subscribe(subject, stream=stream_of(self.prefix), config=config)
        try:
            pending = (await sub.consumer_info()).num_pending or 0
            found: list[Stored] = []
            while pending > 0:
                batch = await sub.fetch(min(pending, 256), timeout=5)
                for msg in batch:
                    with contextlib.suppress(ValueError):
                        found.append(Stored(msg.metadata.sequence.stream, json.loads(msg.data)))
                    pending = msg.metadata.num_pending or 0
                found = found[-HISTORY_LIMIT:]
            return found
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def unread(self, conversation: str, after: int, me: str) -> int:
        """Messages of others stored after seq `after` (at most HISTORY_LIMIT counted)."""
        return sum(1 for m in await self.history(conversation, after) if m.body.get("from") != me)

    async def read_json(self, bucket: KeyValue, key: str) -> tuple[dict[str, Any], int]:
        """(value, revision); ({}, 0) when there is none."""
        try:
            entry = await bucket.get(key)
        except KeyNotFoundError:
            return {}, 0
        try:
            value = json.loads(entry.value or b"{}")
        except ValueError:
            value = {}
        return (value if isinstance(value, dict) else {}), int(entry.revision or 0)

    async def change_json(
        self,
        bucket: KeyValue,
        key: str,
        change: Callable[[dict[str, Any]], Awaitable[None] | None],
    ) -> dict[str, Any]:
        """Read, change and write back a JSON record with compare-and-set (retried)."""
        for _ in range(20):
            value, revision = await self.read_json(bucket, key)
            outcome = change(value)
            if outcome is not None:
                await outcome
            data = json.dumps(value).encode()
            try:
                if revision:
                    await bucket.update(key, data, last=revision)
                else:
                    await bucket.create(key, data)
            except (KeyWrongLastSequenceError, BadRequestError):
                continue  # someone else wrote between: read again
            return value
        raise BusDown(f"could not update {key}: too many concurrent changes")
