"""Community services on one room server: its connected clients, and what they see.

Each browser tab is a `Member` (a person's device). The hub keeps every device's presence
record of the whole cluster (watched on the bus) and tells each local member about the
people it watches when their combined presence changes; it stores messages on the bus and
hands each new stored message to the local members of its conversation. Two tabs of one
person are two members with one presence; both get every message.

The rules (limits, presence, who may write to whom) are moot.core.community's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from moot.core.community import (
    CHOSEN_STATES,
    DEVICE_STALE,
    HEARTBEAT,
    MAX_CONTACTS,
    MAX_STATUS_LINE,
    OFFLINE,
    Device,
    Presence,
    Refusal,
    State,
    combine,
    key_of,
    partition_of,
    pid_of_key,
    seen,
)
from moot.core.configuration import ClusterConfig
from moot.room.community.bus import BusDown, CommunityBus
from moot.room.community.chats import Chats, public
from moot.room.community.member import Member

log = logging.getLogger("moot.room.community")


class CommunityHub:
    """Every community member of this room server, and the cluster's presence."""

    def __init__(
        self, bus: CommunityBus, config: Callable[[], ClusterConfig], server: str = "room"
    ) -> None:
        self.bus = bus
        self._config = config
        # This run of this server: a restarted server is another, so records of its
        # previous run's devices (which came back elsewhere, or not) never revive.
        self.server = f"{server}.{secrets.token_hex(4)}"
        # Every server run's last "alive" (wall clock), and the people with devices on it.
        self._server_seen: dict[str, float] = {}
        self._on_server: dict[str, set[str]] = defaultdict(set)
        self._dead: set[str] = set()
        self.members: dict[str, list[Member]] = defaultdict(list)  # by person id
        # Every device's record in the cluster: person id -> device -> record.
        self._devices: dict[str, dict[str, Device]] = defaultdict(dict)
        self._presence: dict[str, Presence] = {}  # the combined, as last told
        self._watchers: dict[str, set[Member]] = defaultdict(set)  # person -> local members
        # Told of every change of a person's presence (the meetings' rosters, roster.py).
        self.listeners: list[Callable[[str, Presence], None]] = []
        self.chats = Chats(bus, config, self.members)
        self._tasks: list[asyncio.Task[None]] = []
        self._connections = 0
        # For reports: sign-ins and messages since start; the agent reports the increase.
        self.signins = 0
        self._retention: int | None = None
        self._stopping = False
        self.ready = False  # connected to the bus and following it: clients may come
        self._handlers: dict[str, Callable[[Member, dict[str, Any]], Any]] = {
            "set_presence": self._set_presence,
            "idle": self._idle,
            "restore": self._restore,
            "watch": self._watch,
            "ping": self._ping,
            **self.chats.handlers(),
        }

    @property
    def messages(self) -> int:
        """Messages stored since start (reports)."""
        return self.chats.messages

    async def run(self) -> None:
        """start(), retried until the bus answers; then serve until cancelled."""
        delay = 0.5
        while True:
            try:
                await self.start()
                break
            except Exception as exc:
                log.warning(
                    "community services could not start: NATS at %s: %s; trying again in %.1f s",
                    self.bus.url,
                    str(exc) or type(exc).__name__,
                    delay,
                )
                await self.bus.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        log.info("community services ready (bus %s, prefix %s)", self.bus.url, self.bus.prefix)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self._config().instant_message_retention_days)
        self._retention = self._config().instant_message_retention_days
        assert self.bus.presence is not None and self.bus.conversations is not None
        assert self.bus.servers is not None
        await self._alive()
        self.bus.watch(self.bus.servers, self._on_server_key)
        self.bus.watch(self.bus.presence, self._on_presence_key)
        self.bus.watch(self.bus.conversations, self.chats.on_conversation_key)
        await self.bus.follow_messages(self.chats.on_message)
        await self.bus.follow_typing(self.chats.on_typing)
        self._tasks.append(asyncio.create_task(self._heartbeat()))
        self.ready = True

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.stop()

    @property
    def connections(self) -> int:
        """Connected devices (read by the agent's thread: a plain int, kept as they come)."""
        return self._connections

    @property
    def offered(self) -> bool:
        config = self._config()
        return config.presence_enabled or config.instant_messages_enabled

    def settings(self) -> dict[str, Any]:
        config = self._config()
        return {
            "type": "settings",
            "presence_enabled": config.presence_enabled,
            "instant_messages_enabled": config.instant_messages_enabled,
        }

    def config_changed(self) -> None:
        """The cluster configuration changed: tell every client, apply the retention."""
        message = self.settings()
        for member in self._all_members():
            member.send(message)
        if not self._config().presence_enabled:
            for member in self._all_members():
                for pid in member.watching:
                    member.send({"type": "presence", "pid": pid, **OFFLINE.to_json()})
            for pid in self._presence:
                for listener in self.listeners:
                    listener(pid, OFFLINE)
        days = self._config().instant_message_retention_days
        if days != self._retention:
            self._retention = days
            self._tasks.append(asyncio.create_task(self._apply_retention(days)))

    async def _apply_retention(self, days: int) -> None:
        try:
            await self.bus.set_retention(days)
        except Exception as exc:  # the next change or restart applies it
            log.warning("could not apply the chat history retention: %s", exc)

    def notice(self, text: str) -> None:
        """The administrators' message to all users: every connected client shows it."""
        for member in self._all_members():
            member.send({"type": "notice", "text": text})

    def _all_members(self) -> list[Member]:
        return [m for devices in self.members.values() for m in devices]

    # -- members ---------------------------------------------------------------------------

    async def join(self, member: Member) -> None:
        """A device signed in: its presence goes out, it gets its contacts and chats."""
        first = not self.members[member.pid]
        self.members[member.pid].append(member)
        self._connections += 1
        self.signins += 1
        assert self.bus.people is not None
        mine, _ = await self.bus.read_json(self.bus.people, f"c.{key_of(member.pid)}")
        member.blocked = {str(b) for b in mine.get("blocked", [])}
        # A device coming back (failover) keeps what it had chosen; a new one takes the
        # person's current choice from their other devices.
        current = self._presence.get(member.pid)
        if member.chosen_at == 0 and current is not None and current.state is not State.OFFLINE:
            member.state = current.state if current.state is not State.AWAY else State.AVAILABLE
            member.status = current.status
        conversations = []
        for conv_id, read in dict(mine.get("convs", {})).items():
            conv = await self.chats.conversation(conv_id)
            if conv is None:
                continue
            unread = await self.bus.unread(conv_id, int(read), member.pid)
            conversations.append({**public(conv), "read": int(read), "unread": unread})
        member.send(
            {
                "type": "welcome",
                "me": member.pid,
                "name": member.name,
                "state": member.state.value,
                "status": member.status,
                "contacts": mine.get("contacts", {}),
                "names": mine.get("names", {}),
                "blocked": mine.get("blocked", []),
                "conversations": conversations,
                **{k: v for k, v in self.settings().items() if k != "type"},
            }
        )
        if member.device:  # an observer (a Meeting Center page) is no device
            await self._put_device(member)  # after the welcome: the page knows itself first
        if first:
            log.debug("%s signed in to community services", member.pid)

    async def leave(self, member: Member) -> None:
        devices = self.members.get(member.pid, [])
        if member in devices:
            devices.remove(member)
            self._connections -= 1
        if not devices:
            self.members.pop(member.pid, None)
        for pid in member.watching:
            self._watchers[pid].discard(member)
            if not self._watchers[pid]:
                del self._watchers[pid]
        if self._stopping or not member.device:
            return  # stopping: its clients come back elsewhere, presence kept
        assert self.bus.presence is not None
        self._devices.get(member.pid, {}).pop(member.device, None)
        self._recombine(member.pid, time.time())
        with contextlib.suppress(Exception):  # gone now for every server, not in DEVICE_STALE
            await self.bus.presence.delete(self._device_key(member))

    def _device_key(self, member: Member) -> str:
        return f"{key_of(member.pid)}.{member.device}"

    async def _put_device(self, member: Member) -> None:
        """Write the device's record: at sign-in and when it changes (never to refresh)."""
        assert self.bus.presence is not None
        record = member.record(time.time(), self.server)
        # Seen here at once (the watch brings it back too): the person's own other tabs
        # and watchers on this server need not wait for the round trip.
        self._on_device(member.pid, member.device, record)
        await self.bus.presence.put(self._device_key(member), json.dumps(record.to_json()).encode())

    async def _alive(self) -> None:
        """Say that this server, and so every device on it, is alive (one key, not one per
        device: 10,000 devices cost what one does)."""
        assert self.bus.servers is not None
        now = time.time()
        self._server_seen[self.server] = now
        await self.bus.servers.put(self.server, json.dumps({"at": now}).encode())

    async def _heartbeat(self) -> None:
        """Say we are alive; the devices of servers silent for DEVICE_STALE go offline."""
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._alive()
            except Exception as exc:
                log.warning("community bus: could not say this server is alive (%s)", exc)
            now = time.time()
            for server, at in list(self._server_seen.items()):
                if now - at > DEVICE_STALE and server not in self._dead:
                    self._dead.add(server)
                    for pid in list(self._on_server.pop(server, ())):
                        self._recombine(pid, now)
                    await self._forget_server(server)

    async def _forget_server(self, server: str) -> None:
        """Delete the records of a dead server's devices that did not come back elsewhere
        (the first live server by name does it; others skip the same deletes)."""
        live = sorted(s for s in self._server_seen if s not in self._dead)
        if not live or live[0] != self.server:
            return
        assert self.bus.presence is not None and self.bus.servers is not None
        for pid, devices in list(self._devices.items()):
            for device, record in list(devices.items()):
                if record.server == server:
                    with contextlib.suppress(Exception):
                        await self.bus.presence.delete(f"{key_of(pid)}.{device}")
        with contextlib.suppress(Exception):
            await self.bus.servers.delete(server)

    def _on_server_key(self, key: str, value: bytes | None) -> None:
        if value is None:
            return
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            at = float(json.loads(value)["at"])
            self._server_seen[key] = max(at, self._server_seen.get(key, 0.0))
            if key in self._dead and time.time() - at <= DEVICE_STALE:
                self._dead.discard(key)

    # -- presence --------------------------------------------------------------------------

    def _on_presence_key(self, key: str, value: bytes | None) -> None:
        person_key, _, device = key.partition(".")
        try:
            pid = pid_of_key(person_key)
        except ValueError:
            return
        if value is None:
            self._devices[pid].pop(device, None)
            self._recombine(pid, time.time())
            return
        try:
            record = Device.from_json(json.loads(value))
        except (ValueError, TypeError):
            return
        self._on_device(pid, device, record)

    def _on_device(self, pid: str, device: str, record: Device) -> None:
        known = self._devices[pid].get(device)
        if known is None or known.seen_at <= record.seen_at:
            self._devices[pid][device] = record
            self._on_server[record.server].add(pid)
        self._recombine(pid, time.time())

    def _recombine(self, pid: str, now: float) -> None:
        devices = self._devices.get(pid, {})
        presence = combine((seen(d, self._server_seen) for d in devices.values()), now)
        if presence is OFFLINE or presence.state is State.OFFLINE:
            self._devices.pop(pid, None)
        if self._presence.get(pid, OFFLINE) == presence:
            return
        self._presence[pid] = presence
        if presence.state is State.OFFLINE:
            self._presence.pop(pid, None)
        if not self._config().presence_enabled:
            return
        for listener in self.listeners:
            listener(pid, presence)
        message = {"type": "presence", "pid": pid, **presence.to_json()}
        for watcher in self._watchers.get(pid, ()):
            watcher.send(message)
        # The person's own devices follow a choice made on another one.
        for own in self.members.get(pid, ()):
            own.send({"type": "my_presence", **presence.to_json()})

    def presence_of(self, pid: str) -> Presence:
        """As shown to others: offline for everyone while presence is switched off."""
        if not self._config().presence_enabled:
            return OFFLINE
        return self._presence.get(pid, OFFLINE)

    # -- what a client asks ------------------------------------------------------------------

    async def handle(self, member: Member, message: dict[str, Any]) -> None:
        """One message from a client; a Refusal's text goes back as an `error`."""
        kind = message.get("type")
        if not member.device and kind not in ("watch", "ping"):
            raise Refusal("this connection only watches presence")
        handler = self._handlers.get(str(kind))
        if handler is None:
            raise Refusal(f"unknown message type {kind!r}")
        await handler(member, message)

    async def _set_presence(self, member: Member, message: dict[str, Any]) -> None:
        try:
            state = State(str(message.get("state", "")))
        except ValueError:
            raise Refusal("choose available, away, in_meeting or dnd") from None
        if state not in CHOSEN_STATES:
            raise Refusal("choose available, away, in_meeting or dnd")
        status = str(message.get("status", ""))
        if len(status) > MAX_STATUS_LINE:
            raise Refusal(f"the status line is too long: at most {MAX_STATUS_LINE} characters")
        now = time.time()
        for device in self.members.get(member.pid, [member]):
            device.state, device.status, device.chosen_at = state, status, now
        await self._put_device(member)

    async def _idle(self, member: Member, message: dict[str, Any]) -> None:
        member.idle = bool(message.get("idle"))
        await self._put_device(member)

    async def _restore(self, member: Member, message: dict[str, Any]) -> None:
        """After a reconnect the page says what it had chosen: its presence comes back."""
        with contextlib.suppress(ValueError):
            state = State(str(message.get("state", "")))
            if state in CHOSEN_STATES:
                member.state = state
                member.status = str(message.get("status", ""))[:MAX_STATUS_LINE]
                member.chosen_at = float(message.get("chosen_at", time.time()))
                member.idle = bool(message.get("idle"))
                await self._put_device(member)

    async def _watch(self, member: Member, message: dict[str, Any]) -> None:
        people = message.get("people")
        if not isinstance(people, list) or len(people) > MAX_CONTACTS:
            raise Refusal(f"watch at most {MAX_CONTACTS} people")
        wanted = {str(p) for p in people if partition_of(str(p)) == member.partition}
        for pid in member.watching - wanted:
            self._watchers[pid].discard(member)
        member.watching = wanted
        for pid in wanted:
            self._watchers[pid].add(member)
            presence = self.presence_of(pid)
            member.send({"type": "presence", "pid": pid, **presence.to_json()})

    async def _ping(self, member: Member, message: dict[str, Any]) -> None:
        member.send({"type": "pong"})


__all__ = ["BusDown", "CommunityHub", "Member", "Refusal"]
