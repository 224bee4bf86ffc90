"""Moderator keys: how the creator of a meeting, signed in or not, proves it later.

A meeting made by someone who is not signed in (or by the cluster administrator, from the
command line) comes with a key: random, shown once (in the API's 201 and on the page that
says the meeting was created, as the moderator link `/m/{id}?key=…`), stored only as its
SHA-256. Whoever presents it moderates the meeting (moot.core.permissions, `moderator_of`):
browsers keep it in a cookie of their own per meeting, API clients send it in the
`X-Moderator-Key` header. Issuing a new key ends the old one. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "x-moderator-key"
COOKIE_PREFIX = "moot_key_"


def new_key() -> str:
    return secrets.token_urlsafe(24)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def opens(key: str, stored_hash: str | None) -> bool:
    """Whether `key` is the one whose hash is stored (in constant time)."""
    if not key or not stored_hash:
        return False
    return hmac.compare_digest(key_hash(key), stored_hash)


def cookie_name(meeting_id: str) -> str:
    return COOKIE_PREFIX + meeting_id


def fingerprint(value: str | None) -> str:
    """A short, one-way mark of a stored secret (a password's or a key's hash) for a join
    token: renewing the token checks the secret has not changed since. "" for none."""
    if not value:
        return ""
    return hashlib.sha256(b"moot-fingerprint:" + value.encode()).hexdigest()[:16]
