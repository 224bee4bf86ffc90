"""What a change of a meeting touches: the fields only its moderator may change (who
moderates or may enter), the fields that book it again, and new meetings' ids."""

from __future__ import annotations

import secrets
from typing import Any

from moot.ems.store.models import MeetingRow

ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
# A change to any of these books a scheduled meeting again (its hours, size or place).
BOOKING_FIELDS = frozenset(
    {"start", "duration_minutes", "expected_participants", "location", "location_required"}
)


def new_meeting_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(10))


ACCESS_FIELDS = ("moderator", "password", "restricted_to")


def changes_access(row: MeetingRow, changes: dict[str, Any]) -> list[str]:
    """The fields of `changes` that would change who moderates or may enter the meeting
    (a password given counts: it cannot be compared)."""
    changed = []
    if "moderator" in changes and changes["moderator"] != row.moderator:
        changed.append("moderator")
    if "password" in changes and (changes["password"] or row.password_hash is not None):
        changed.append("password")
    if "restricted_to" in changes and sorted(
        e.casefold() for e in changes["restricted_to"] or []
    ) != sorted(e.casefold() for e in row.restricted_to):
        changed.append("restricted_to")
    return changed
