"""Conversations, messages and contact lists of community services (one room server's part).

A conversation is a record on the bus (members, title); its messages are in the stream.
Every new stored message reaches the local devices of its members; a sender's message is
acknowledged only once the stream stored it (moot.room.community.bus). Contact lists and
blocks are per person, with compare-and-set: two devices on two servers lose nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moot.core.community import (
    MAX_CONTACTS,
    MAX_GROUP_MEMBERS,
    Refusal,
    check_text,
    direct_conversation,
    is_conversation_id,
    key_of,
    may_message,
    new_group_conversation,
    partition_of,
)
from moot.core.configuration import ClusterConfig
from moot.room.community.bus import CommunityBus, Stored
from moot.room.community.member import Member


class Chats:
    """The conversations this server's members take part in, as the bus holds them."""

    def __init__(
        self,
        bus: CommunityBus,
        config: Callable[[], ClusterConfig],
        members: dict[str, list[Member]],
    ) -> None:
        self.bus = bus
        self._config = config
        self.members = members  # the hub's: person id -> connected devices
        self._conversations: dict[str, dict[str, Any]] = {}
        self._later: set[asyncio.Task[None]] = set()
        self.messages = 0  # stored since start (reports)

    def handlers(self) -> dict[str, Callable[[Member, dict[str, Any]], Any]]:
        return {
            "contacts": self._contacts,
            "block": self._block,
            "open_chat": self._open_chat,
            "create_group": self._create_group,
            "history": self._history,
            "send": self._send,
            "typing": self._typing,
            "read": self._read,
        }

    async def _contacts(self, member: Member, message: dict[str, Any]) -> None:
        """Save the contact list (groups of people of one's own partition)."""
        groups = message.get("contacts")
        names = message.get("names", {})
        if not isinstance(groups, dict) or not isinstance(names, dict):
            raise Refusal("contacts: give groups of people")
        cleaned: dict[str, list[str]] = {}
        for group, people in groups.items():
            if not isinstance(people, list):
                raise Refusal("contacts: give groups of people")
            name = str(group).strip()[:60] or "Contacts"
            cleaned[name] = [str(p) for p in people if partition_of(str(p)) == member.partition]
        if sum(len(p) for p in cleaned.values()) > MAX_CONTACTS:
            raise Refusal(f"at most {MAX_CONTACTS} contacts")
        kept = {
            str(k): str(v)[:200] for k, v in names.items() if any(k in p for p in cleaned.values())
        }

        def change(record: dict[str, Any]) -> None:
            record["contacts"] = cleaned
            record["names"] = kept

        await self._change_person(member.pid, change)
        self._to_person(member.pid, {"type": "contacts", "contacts": cleaned, "names": kept})

    async def _block(self, member: Member, message: dict[str, Any]) -> None:
        pid = str(message.get("pid", ""))
        blocked = bool(message.get("blocked", True))
        if not pid or pid == member.pid:
            raise Refusal("name someone else to block")

        def change(record: dict[str, Any]) -> None:
            current = set(record.get("blocked", []))
            if blocked:
                current.add(pid)
            else:
                current.discard(pid)
            record["blocked"] = sorted(current)

        record = await self._change_person(member.pid, change)
        for device in self.members.get(member.pid, ()):
            device.blocked = set(record["blocked"])
        self._to_person(member.pid, {"type": "blocked", "blocked": record["blocked"]})

    async def _open_chat(self, member: Member, message: dict[str, Any]) -> None:
        other = str(message.get("with", ""))
        if not other or other == member.pid:
            raise Refusal("name someone to chat with")
        why = may_message(member.pid, other, await self._blocked_by(other))
        if why:
            raise Refusal(why)
        conv_id = direct_conversation(member.pid, other)
        names = {member.pid: member.name, other: str(message.get("name", "") or other)}
        conv = await self._ensure_conversation(conv_id, [member.pid, other], names, "")
        await self._send_conversation(member, conv)

    async def _create_group(self, member: Member, message: dict[str, Any]) -> None:
        people = message.get("members")
        names = message.get("names", {})
        if not isinstance(people, list) or not isinstance(names, dict):
            raise Refusal("a group chat needs members")
        pids = list(dict.fromkeys([member.pid, *(str(p) for p in people)]))
        if len(pids) < 2:
            raise Refusal("a group chat needs at least one other person")
        if len(pids) > MAX_GROUP_MEMBERS:
            raise Refusal(f"a group chat has at most {MAX_GROUP_MEMBERS} people")
        for pid in pids:
            if partition_of(pid) != member.partition:
                raise Refusal("you can only message people of your own organisation")
        title = str(message.get("title", "")).strip()[:80] or "Group chat"
        names = {str(k): str(v)[:200] for k, v in names.items() if k in pids}
        names[member.pid] = member.name
        conv = await self._ensure_conversation(new_group_conversation(), pids, names, title)
        await self._send_conversation(member, conv)

    async def _history(self, member: Member, message: dict[str, Any]) -> None:
        conv = await self._member_conversation(member, message)
        after = int(message.get("after", 0) or 0)
        stored = await self.bus.history(conv["id"], after)
        member.send(
            {
                "type": "history",
                "conversation": conv["id"],
                "info": public(conv),
                "after": after,
                "messages": [s.to_client() for s in stored],
            }
        )

    async def _send(self, member: Member, message: dict[str, Any]) -> None:
        client_id = str(message.get("id", ""))
        if not 1 <= len(client_id) <= 64:
            raise Refusal("a message needs its id (1 to 64 characters)")
        if not self._config().instant_messages_enabled:
            raise Refusal("instant messages are switched off by the administrator")
        text = check_text(str(message.get("text", "")))
        conv = await self._member_conversation(member, message)
        if not conv.get("group"):
            other = next((p for p in conv["members"] if p != member.pid), "")
            why = may_message(member.pid, other, await self._blocked_by(other))
            if why:
                raise Refusal(why)
        member.rate.take(time.monotonic())
        body = {
            "conversation": conv["id"],
            "from": member.pid,
            "name": member.name,
            "id": client_id,
            "text": text,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # Durable before acknowledged; a resend of the same id is the same message.
        seq = await self.bus.publish_message(conv["id"], body, f"{member.pid}|{client_id}")
        self.messages += 1
        member.send({"type": "ack", "id": client_id, "conversation": conv["id"], "seq": seq})

    async def _typing(self, member: Member, message: dict[str, Any]) -> None:
        conv = await self._member_conversation(member, message)
        await self.bus.typing(
            conv["id"], {"conversation": conv["id"], "from": member.pid, "name": member.name}
        )

    async def _read(self, member: Member, message: dict[str, Any]) -> None:
        conv = await self._member_conversation(member, message)
        seq = int(message.get("seq", 0) or 0)

        def change(record: dict[str, Any]) -> None:
            convs = record.setdefault("convs", {})
            convs[conv["id"]] = max(int(convs.get(conv["id"], 0)), seq)

        await self._change_person(member.pid, change)
        self._to_person(member.pid, {"type": "read", "conversation": conv["id"], "seq": seq})

    # -- conversations -----------------------------------------------------------------------

    def on_conversation_key(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._conversations.pop(key, None)
            return
        with contextlib.suppress(ValueError):
            conv = json.loads(value)
            if not isinstance(conv, dict) or not isinstance(conv.get("members"), list):
                return
            known = self._conversations.get(key)
            self._conversations[key] = conv
            if known is None or known.get("members") != conv["members"]:
                # Made on another server: its members here learn of it now.
                message = {"type": "conversation", "focus": False, **public(conv)}
                for pid in conv["members"]:
                    self._to_person(pid, message)

    async def conversation(self, conv_id: str) -> dict[str, Any] | None:
        if not is_conversation_id(conv_id):
            return None
        conv = self._conversations.get(conv_id)
        if conv is None:
            assert self.bus.conversations is not None
            found, revision = await self.bus.read_json(self.bus.conversations, conv_id)
            if revision:
                conv = self._conversations[conv_id] = found
        return conv

    async def _member_conversation(self, member: Member, message: dict[str, Any]) -> dict[str, Any]:
        conv = await self.conversation(str(message.get("conversation", "")))
        if conv is None or member.pid not in conv.get("members", []):
            raise Refusal("no such conversation of yours")
        return conv

    async def _ensure_conversation(
        self, conv_id: str, members: list[str], names: dict[str, str], title: str
    ) -> dict[str, Any]:
        assert self.bus.conversations is not None
        group = conv_id.startswith("g")

        def change(record: dict[str, Any]) -> None:
            if not record:
                record.update(id=conv_id, members=members, group=group, title=title, names={})
            known = record.setdefault("names", {})
            for pid, name in names.items():
                if pid not in known or known[pid] == pid:
                    known[pid] = name

        conv = await self.bus.change_json(self.bus.conversations, conv_id, change)
        self._conversations[conv_id] = conv
        for pid in conv["members"]:

            def add(record: dict[str, Any]) -> None:
                record.setdefault("convs", {}).setdefault(conv_id, 0)

            await self._change_person(pid, add)
        return conv

    async def _send_conversation(self, member: Member, conv: dict[str, Any]) -> None:
        # Every device of every member learns of it (a new group shows for everyone in it).
        message = {"type": "conversation", **public(conv)}
        for pid in conv["members"]:
            self._to_person(pid, message)

    def on_message(self, stored: Stored) -> None:
        conv = self._conversations.get(str(stored.body.get("conversation", "")))
        if conv is None:  # made a moment ago on another server: its record comes first
            task = asyncio.create_task(self._deliver_later(stored))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return
        self._deliver(conv, stored)

    async def _deliver_later(self, stored: Stored) -> None:
        with contextlib.suppress(Exception):
            conv = await self.conversation(str(stored.body.get("conversation", "")))
            if conv is not None:
                self._deliver(conv, stored)

    def _deliver(self, conv: dict[str, Any], stored: Stored) -> None:
        sender = str(stored.body.get("from", ""))
        wire = json.dumps(stored.to_client())
        for pid in conv.get("members", []):
            for device in self.members.get(pid, ()):
                # A group member who blocked the sender does not see their lines.
                if sender != pid and sender in device.blocked:
                    continue
                device.conn.send_text(wire)

    def on_typing(self, body: dict[str, Any]) -> None:
        conv = self._conversations.get(str(body.get("conversation", "")))
        if conv is None:
            return
        message = {"type": "typing", **body}
        for pid in conv.get("members", []):
            if pid != body.get("from"):
                for device in self.members.get(pid, ()):
                    device.send(message)

    # -- people ------------------------------------------------------------------------------

    async def _change_person(
        self, pid: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        assert self.bus.people is not None
        return await self.bus.change_json(self.bus.people, f"c.{key_of(pid)}", change)

    async def _blocked_by(self, pid: str) -> list[str]:
        assert self.bus.people is not None
        record, _ = await self.bus.read_json(self.bus.people, f"c.{key_of(pid)}")
        blocked = record.get("blocked", [])
        return [str(b) for b in blocked] if isinstance(blocked, list) else []

    def _to_person(self, pid: str, message: dict[str, Any]) -> None:
        for device in self.members.get(pid, ()):
            device.send(message)


def public(conv: dict[str, Any]) -> dict[str, Any]:
    """A conversation as clients see it."""
    return {
        "id": conv["id"],
        "members": conv.get("members", []),
        "names": conv.get("names", {}),
        "title": conv.get("title", ""),
        "group": bool(conv.get("group")),
    }
