"""Join tokens: short-lived EdDSA (Ed25519) JWTs the EMS signs.

The EMS alone holds the private key; room servers receive the public key when
they register and can verify, never mint. A token names the meeting, the user
(the name shown), the person behind it, the role, and the epoch of the assignment it was
issued for.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
AUDIENCE = "moot-room"
# The JWS header of every token, encoded once (PyJWT's own header).
_HEADER = base64.urlsafe_b64encode(b'{"alg":"EdDSA","typ":"JWT"}').rstrip(b"=") + b"."

Role = Literal["moderator", "participant"]


class InvalidToken(Exception):
    """The token is missing, expired, forged or for another meeting."""


@dataclass(frozen=True, slots=True)
class JoinClaims:
    meeting_id: str
    user: str  # the name shown in the meeting, unique in it
    role: Role
    epoch: int
    expires_at: int
    # Who the person is, whatever their name: two tabs of one person share it, two people
    # who typed one name do not ("user:…", "guest:…"; the name for tokens without one).
    person: str = ""
    # What the EMS checks again when the token is renewed (rejoin); room servers ignore it.
    proof: dict[str, Any] = field(default_factory=dict)


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the signing key, or create it (mode 0600) on first start."""
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return loaded
    key = generate_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))
    return key


def load_public_key(pem: str) -> Ed25519PublicKey:
    loaded = serialization.load_pem_public_key(pem.encode())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return loaded


def sign_join_token(
    key: Ed25519PrivateKey,
    *,
    meeting_id: str,
    user: str,
    role: Role,
    epoch: int,
    ttl_seconds: int,
    now: float | None = None,
    person: str = "",
    proof: Mapping[str, Any] | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": AUDIENCE,
        "sub": user,
        "mid": meeting_id,
        "role": role,
        "epoch": epoch,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_urlsafe(8),
    }
    if person:
        claims["pid"] = person
    if proof:
        claims["ems"] = dict(proof)
    return encode_jwt(key, claims)


def encode_jwt(key: Ed25519PrivateKey, claims: Mapping[str, Any]) -> str:
    """A compact EdDSA JWT, as `jwt.encode(claims, key, algorithm="EdDSA")` makes it.

    Attend signs one for every person who enters; PyJWT's encode, with its checks of the key
    and the header, cost a quarter more than the signature itself.
    """
    payload = json.dumps(claims, separators=(",", ":")).encode()
    signing_input = _HEADER + base64.urlsafe_b64encode(payload).rstrip(b"=")
    signature = base64.urlsafe_b64encode(key.sign(signing_input)).rstrip(b"=")
    return (signing_input + b"." + signature).decode("ascii")


def verify_join_token(
    public_key: Ed25519PublicKey,
    token: str | None,
    *,
    meeting_id: str,
    expired_for: float = 0,
) -> JoinClaims:
    """Check signature, expiry, audience and meeting; InvalidToken says what failed.

    `expired_for` accepts a token that expired at most that many seconds ago: the EMS
    uses it to let a meeting page that lost its room server back in without a refresh.
    """
    if not token:
        raise InvalidToken("no join token: open the meeting through the Meeting Center")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=expired_for,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the join token has expired: open the meeting again") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("the join token is not valid") from exc
    if claims.get("mid") != meeting_id:
        raise InvalidToken("the join token is for another meeting")
    role = claims.get("role")
    if role not in ("moderator", "participant"):
        raise InvalidToken("the join token names no valid role")
    proof = claims.get("ems")
    return JoinClaims(
        meeting_id=meeting_id,
        user=str(claims["sub"]),
        role=role,
        epoch=int(claims.get("epoch", 0)),
        expires_at=int(claims["exp"]),
        person=str(claims.get("pid") or claims["sub"]),
        proof=dict(proof) if isinstance(proof, dict) else {},
    )


# -- community tokens ------------------------------------------------------------------

COMMUNITY_AUDIENCE = "moot-community"


@dataclass(frozen=True, slots=True)
class CommunityClaims:
    """Who may use community services (presence, instant messages) on a room server."""

    username: str
    display_name: str
    partition: str | None
    expires_at: int


def sign_community_token(
    key: Ed25519PrivateKey,
    *,
    username: str,
    display_name: str,
    partition: str | None,
    ttl_seconds: int,
    now: float | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": COMMUNITY_AUDIENCE,
        "sub": username,
        "name": display_name,
        "part": partition,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_urlsafe(8),
    }
    return encode_jwt(key, claims)


def verify_community_token(public_key: Ed25519PublicKey, token: str | None) -> CommunityClaims:
    """Check signature, expiry and audience (a join token is not a community token)."""
    if not token:
        raise InvalidToken("no community token: open community services from the Meeting Center")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=COMMUNITY_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the community token has expired: connect again") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("the community token is not valid") from exc
    partition = claims.get("part")
    return CommunityClaims(
        username=str(claims["sub"]),
        display_name=str(claims.get("name") or claims["sub"]),
        partition=str(partition) if partition else None,
        expires_at=int(claims["exp"]),
    )
