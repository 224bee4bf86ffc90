"""Community services' rules, pure: presence, conversations, limits, where to connect.

No I/O and no clock of its own: every function takes `now` (seconds) when it needs one, so
the rules are table-tested (tests/unit/test_community.py) and the room server only moves
data between the browser, NATS and these functions.

Presence. Each device (a browser tab) of a person keeps a record: the state the person
chose (available, in a meeting, do not disturb), a status line, whether the device is idle,
when it last said so, and the room server (one run of it) it is connected to. A device's
record is written when it changes, not refreshed: its room server says every HEARTBEAT
seconds that it is alive, for all its devices at once, and a device counts as seen when
its server last did (`seen`). A person's presence is the record of their devices taken
together (`combine`): the most recent choice wins, so a change in one tab shows for the
person; "away" only when every device is idle; "offline" when no device is left (none
seen within DEVICE_STALE seconds: its server died and it did not come back elsewhere).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    IN_MEETING = "in_meeting"
    DND = "dnd"
    OFFLINE = "offline"


# What a person may choose; away comes by itself (idle), offline by leaving.
CHOSEN_STATES = frozenset({State.AVAILABLE, State.AWAY, State.IN_MEETING, State.DND})
MAX_STATUS_LINE = 120
# A room server says it is alive every HEARTBEAT seconds; a device not seen for DEVICE_STALE
# seconds is gone (its room server died and it did not come back elsewhere).
HEARTBEAT = 4.0
DEVICE_STALE = 20.0  # long enough for thousands of clients of a killed server to move


@dataclass(frozen=True, slots=True)
class Device:
    """One device's presence record, as it travels (JSON) between room servers."""

    state: State
    status: str
    idle: bool
    chosen_at: float  # when the person last chose the state or status line
    seen_at: float  # when the device's record was written
    server: str = ""  # the room server's run it is connected to ("" : always seen)

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "status": self.status,
            "idle": self.idle,
            "chosen_at": self.chosen_at,
            "seen_at": self.seen_at,
            "server": self.server,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Device:
        state = State(str(data.get("state", State.AVAILABLE)))
        return cls(
            state=state if state in CHOSEN_STATES else State.AVAILABLE,
            status=str(data.get("status", ""))[:MAX_STATUS_LINE],
            idle=bool(data.get("idle", False)),
            chosen_at=float(str(data.get("chosen_at", 0))),
            seen_at=float(str(data.get("seen_at", 0))),
            server=str(data.get("server", "")),
        )


@dataclass(frozen=True, slots=True)
class Presence:
    state: State
    status: str = ""

    def to_json(self) -> dict[str, str]:
        return {"state": self.state.value, "status": self.status}


OFFLINE = Presence(State.OFFLINE)


def seen(device: Device, servers: Mapping[str, float]) -> Device:
    """The device as last seen: when it was written, or when its server was last alive."""
    alive = servers.get(device.server, 0.0)
    if alive <= device.seen_at:
        return device
    return Device(device.state, device.status, device.idle, device.chosen_at, alive, device.server)


def combine(devices: Iterable[Device], now: float) -> Presence:
    """A person's presence from their devices' records (see the module's docstring)."""
    live = [d for d in devices if now - d.seen_at <= DEVICE_STALE]
    if not live:
        return OFFLINE
    latest = max(live, key=lambda d: (d.chosen_at, d.seen_at))
    state = latest.state
    if state is State.AVAILABLE and all(d.idle for d in live):
        state = State.AWAY  # away by itself: every device idle, nothing stronger chosen
    return Presence(state, latest.status)


# -- people and conversations --------------------------------------------------------


def person_id(username: str, partition: str | None) -> str:
    """A person, unique in the cluster: names are unique only within a partition."""
    return f"{partition or ''}/{username}"


def partition_of(pid: str) -> str:
    return pid.split("/", 1)[0]


def attendee_pid(person: str, name: str) -> str | None:
    """The person id of a meeting's attendee, from their join token's `person` and the
    name they are shown under; None for a guest or a tool (no community services).

    A signed-in user enters under their user name, and their `person` is
    "user:<partition>:<user name, case-folded>" (moot.ems.admission)."""
    suffix = f":{name.casefold()}"
    if not person.startswith("user:") or not person.endswith(suffix):
        return None
    return person_id(name, person[len("user:") : -len(suffix)] or None)


def key_of(pid: str) -> str:
    """A person id as a NATS key token (letters, digits, - and _ only)."""
    return base64.urlsafe_b64encode(pid.encode()).decode().rstrip("=")


def pid_of_key(key: str) -> str:
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()


def direct_conversation(a: str, b: str) -> str:
    """The one conversation of two people, whoever starts it."""
    first, second = sorted((a, b))
    digest = hashlib.sha256(f"{first}\n{second}".encode()).hexdigest()[:24]
    return f"d{digest}"


def new_group_conversation() -> str:
    return f"g{secrets.token_hex(12)}"


def is_conversation_id(value: str) -> bool:
    return len(value) == 25 and value[0] in "dg" and all(c in "0123456789abcdef" for c in value[1:])


# -- limits --------------------------------------------------------------------------

MAX_MESSAGE_CHARS = 4000
MAX_GROUP_MEMBERS = 50
MAX_CONTACTS = 500
# Messages a person may send: a burst of RATE_BURST, then RATE_PER_SECOND on average.
RATE_BURST = 10
RATE_PER_SECOND = 2.0


class Refusal(Exception):
    """A message or request the rules refuse; str() says why, for the person."""


def check_text(text: str) -> str:
    """The message as sent, or Refusal: empty, or longer than MAX_MESSAGE_CHARS."""
    if not text.strip():
        raise Refusal("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise Refusal(
            f"the message is too long: {len(text):,} characters, at most {MAX_MESSAGE_CHARS:,}"
        )
    return text


@dataclass(slots=True)
class RateLimit:
    """A token bucket per person: `take(now)` or Refusal, with when to try again."""

    burst: int = RATE_BURST
    per_second: float = RATE_PER_SECOND
    tokens: float = -1.0  # -1: a full bucket (the burst)
    at: float | None = None

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def take(self, now: float) -> None:
        if self.at is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens < 1:
            wait = (1 - self.tokens) / self.per_second
            raise Refusal(f"too many messages: wait {max(wait, 0.1):.1f} s before the next one")
        self.tokens -= 1


def may_message(sender: str, recipient: str, blocked_by_recipient: Iterable[str]) -> str:
    """ "" when `sender` may write to `recipient`, else why not (partition, blocking)."""
    if partition_of(sender) != partition_of(recipient):
        return "you can only message people of your own organisation"
    if sender in set(blocked_by_recipient):
        return "this person does not take your messages"
    return ""


# -- where a client connects -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommunityServer:
    """What the EMS knows of a room server for community services."""

    name: str
    url: str
    online: bool
    draining: bool
    offers: bool  # it has community services (a bus) and its configuration allows them
    connections: int


# Servers within this share of the least loaded one's connections count as equally good.
EVEN_SHARE = 0.1


def community_servers(servers: Iterable[CommunityServer], person: str) -> list[CommunityServer]:
    """Where `person` should connect, best first: online servers offering community
    services, the fewest connections first.

    The servers about as loaded as the least loaded one (within EVEN_SHARE) come first in
    an order of the person's own (rendezvous hashing: the same for them each time, another
    for the next person). The counts the EMS has are a heartbeat old: when a room server
    dies, its thousands of clients all ask within that time, and an order the same for
    everyone would send them all to one survivor while the others wait."""
    usable = [s for s in servers if s.online and s.offers and not s.draining]
    if not usable:
        return []
    even = min(s.connections for s in usable) * (1 + EVEN_SHARE)

    def rank(server: CommunityServer) -> tuple[int, int, str]:
        if server.connections <= even:
            digest = hashlib.sha256(f"{person}\n{server.name}".encode()).digest()
            return (0, int.from_bytes(digest[:8], "big"), server.name)
        return (1, server.connections, server.name)

    return sorted(usable, key=rank)
