"""What attending a meeting takes and gives: why it cannot be entered, the few facts about a
running meeting that attending needs (AttendInfo), who enters (Entrant), where they go
(AttendRedirect), and the meeting password."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moot.ems.errors import Code, DomainError
from moot.ems.store.models import MeetingRow
from moot.infra.tokens import Role


class CannotAttend(DomainError):
    """The meeting cannot be entered now; the message tells the person why."""

    code = Code.CANNOT_ATTEND


class NotAllowed(CannotAttend):
    """The request carries no valid proof of who is asking."""

    code = Code.NOT_ALLOWED


class NotRecorded(DomainError):
    """The meeting has no recording (not recorded, or not started yet)."""

    code = Code.NOT_RECORDED


class NotYetOpen(CannotAttend):
    """A scheduled meeting before its time: who comes early waits in its lobby."""

    def __init__(self, opens_at: datetime) -> None:
        super().__init__(f"this meeting opens at {opens_at:%Y-%m-%d %H:%M} UTC")
        self.opens_at = opens_at


class Unavailable(DomainError):
    """No room server can host the meeting now."""

    code = Code.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class AttendInfo:
    """The few facts about a meeting that attending it needs."""

    id: str
    name: str
    moderator: str
    status: str
    server_name: str | None
    epoch: int
    password_hash: str | None
    # Who may enter, and as what (moot.core.permissions reads these: auth.service.MeetingLike).
    partition: str | None = None
    restricted_to: tuple[str, ...] = ()
    unlisted: bool = False
    moderator_key_hash: str | None = None

    @classmethod
    def of(cls, row: MeetingRow) -> AttendInfo:
        return cls(
            id=row.id,
            name=row.name,
            moderator=row.moderator,
            status=row.status,
            server_name=row.server_name,
            epoch=row.epoch,
            password_hash=row.password_hash,
            partition=row.partition,
            restricted_to=tuple(row.restricted_to),
            unlisted=row.unlisted,
            moderator_key_hash=row.moderator_key_hash,
        )

    @property
    def needs_password(self) -> bool:
        return self.password_hash is not None


@dataclass(frozen=True, slots=True)
class Entrant:
    """Who enters a meeting: the name shown (unique in the meeting), the person behind it,
    the role, and what renewing their token checks again (moot.infra.tokens.JoinClaims.proof)."""

    name: str
    person: str
    role: Role
    proof: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttendRedirect:
    url: str
    role: Role
    socket_url: str
    token: str


def socket_base(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


# Changes that decide who moderates a meeting or may enter it (Action.CHANGE_ACCESS).
