"""Sign-in tokens: EdDSA (Ed25519) JWTs from a ring of keys that every EMS node shares.

One sign-in yields one token: the browser keeps it in a cookie, API clients send it as a
bearer token. It names the user, their groups and partition, and expires. The ring lives
in the database (`signing_keys`), so a token one EMS node signed is honoured by every
other; the header's `kid` says which key signed it. Rotating adds a key that signs from
then on; a retired key verifies nothing, so retiring one cuts off every token it signed.
Signing out adds the token's `jti` to `revoked_tokens`; a token also ends when its user is
removed, disabled or changes groups (the service checks the user at every use: a token
names the groups it was issued with and when). Pure: no I/O here.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "EdDSA"
AUDIENCE = "moot-session"
ISSUER = "moot"


class BadToken(Exception):
    """The token is forged, expired, revoked or signed by a retired key; the message says which."""


@dataclass(frozen=True, slots=True)
class SessionClaims:
    username: str
    display_name: str
    groups: frozenset[str]
    partition: str | None
    source: str  # "local" or "ldap"
    jti: str
    expires_at: int
    issued_at: int = 0


@dataclass(frozen=True, slots=True)
class RingKey:
    kid: str
    key: Ed25519PrivateKey
    retired: bool


def new_kid() -> str:
    return secrets.token_hex(8)


def sign_session(
    signer: RingKey,
    *,
    username: str,
    display_name: str,
    groups: frozenset[str],
    partition: str | None,
    source: str,
    ttl_seconds: int,
    now: float | None = None,
) -> tuple[str, SessionClaims]:
    if signer.retired:
        raise ValueError("a retired key signs nothing")
    issued = int(time.time() if now is None else now)
    claims = SessionClaims(
        username=username,
        display_name=display_name,
        groups=groups,
        partition=partition,
        source=source,
        jti=secrets.token_urlsafe(16),
        expires_at=issued + ttl_seconds,
        issued_at=issued,
    )
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": username,
        "name": display_name,
        "groups": sorted(groups),
        "part": partition,
        "src": source,
        "iat": issued,
        "exp": claims.expires_at,
        "jti": claims.jti,
    }
    token = jwt.encode(payload, signer.key, algorithm=ALGORITHM, headers={"kid": signer.kid})
    return token, claims


def verify_session(
    ring: Mapping[str, RingKey], token: str, *, now: float | None = None
) -> SessionClaims:
    """Check the key, signature, audience and expiry; BadToken says what failed.

    Revocation is the caller's check (it needs the store): see `SessionClaims.jti`.
    """
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise BadToken("not a sign-in token") from exc
    ring_key = ring.get(str(kid)) if kid is not None else None
    if ring_key is None:
        raise BadToken("signed by an unknown key")
    if ring_key.retired:
        raise BadToken("signed by a retired key: sign in again")
    try:
        payload = jwt.decode(
            token,
            ring_key.key.public_key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as exc:
        raise BadToken("the sign-in has expired: sign in again") from exc
    except jwt.PyJWTError as exc:
        raise BadToken(f"not a valid sign-in token ({exc})") from exc
    if now is not None and payload["exp"] <= now:
        raise BadToken("the sign-in has expired: sign in again")
    groups = payload.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise BadToken("not a valid sign-in token (groups)")
    return SessionClaims(
        username=str(payload["sub"]),
        display_name=str(payload.get("name") or payload["sub"]),
        groups=frozenset(groups),
        partition=payload.get("part"),
        source=str(payload.get("src", "local")),
        jti=str(payload["jti"]),
        expires_at=int(payload["exp"]),
        issued_at=int(payload["iat"]),
    )
