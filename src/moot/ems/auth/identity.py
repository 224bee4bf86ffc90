"""Who is asking (Identity), what permissions read of a meeting, and the refusal.

Below the sign-in service: the services that take an identity (and audit what it does)
import this module, not the service that makes identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from moot.core.permissions import Subject, Target
from moot.ems.auth.tokens import SessionClaims
from moot.ems.errors import Code, DomainError


class Audit(Protocol):
    """Writes one line of the audit log: who did what to which, with details."""

    async def __call__(
        self, identity: Identity, action: str, target: str, detail: dict[str, Any] | None = None
    ) -> None: ...


async def no_audit(
    identity: Identity, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """For a service built without an audit log (tests of the service alone)."""


class NotPermitted(DomainError):
    """`decide` refused; `str()` says why, `signed_in` tells 401 from 403."""

    code = Code.NOT_PERMITTED

    def __init__(self, reason: str, *, signed_in: bool) -> None:
        super().__init__(reason)
        self.signed_in = signed_in


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking: a verified sign-in, or nobody; with the moderator keys presented
    ((meeting id, key) from cookies; ("*", key) from the X-Moderator-Key header)."""

    claims: SessionClaims | None
    address: str = ""
    moderator_keys: tuple[tuple[str, str], ...] = ()

    def needs_moderator_key(self) -> bool:
        """A creator who will not be recognised by sign-in: anonymous, or the cluster secret."""
        return self.claims is None or self.claims.source == "cluster-secret"

    def keys_for(self, meeting_id: str) -> list[str]:
        return [key for where, key in self.moderator_keys if where in (meeting_id, "*")]

    @property
    def subject(self) -> Subject:
        if self.claims is None:
            return Subject(name=None)
        return Subject(
            name=self.claims.username,
            groups=self.claims.groups,
            partition=self.claims.partition,
        )

    @property
    def name(self) -> str:
        return self.claims.username if self.claims else "anonymous"

    @property
    def display_name(self) -> str:
        return self.claims.display_name if self.claims else ""


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    display_name: str
    partition: str | None


ANONYMOUS = Identity(claims=None)
CLUSTER_ADMINISTRATOR = "cluster-administrator"


def cluster_administrator(admin_group: str, address: str) -> Identity:
    """Who presents the cluster secret (the CLI on a machine of the cluster)."""
    claims = SessionClaims(
        username=CLUSTER_ADMINISTRATOR,
        display_name="the cluster administrator",
        groups=frozenset({admin_group}),
        partition=None,
        source="cluster-secret",
        jti="",
        expires_at=0,
    )
    return Identity(claims=claims, address=address)


ALL_PARTITIONS = "*"


class MeetingLike(Protocol):
    """What permissions read of a meeting (a MeetingRow, or the cached AttendInfo)."""

    @property
    def id(self) -> str: ...
    @property
    def moderator(self) -> str: ...
    @property
    def partition(self) -> str | None: ...
    @property
    def restricted_to(self) -> Sequence[str]: ...
    @property
    def unlisted(self) -> bool: ...
    @property
    def moderator_key_hash(self) -> str | None: ...


def target_of(meeting: MeetingLike) -> Target:
    """A meeting as the permission check sees it."""
    return Target(
        moderator=meeting.moderator,
        partition=meeting.partition,
        restricted_to=frozenset(meeting.restricted_to),
        unlisted=meeting.unlisted,
        id=meeting.id,
    )
