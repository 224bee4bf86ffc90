"""Join tokens: valid, expired, forged, for another meeting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from moot.infra.tokens import (
    InvalidToken,
    generate_private_key,
    load_or_create_private_key,
    load_public_key,
    public_key_pem,
    sign_join_token,
    verify_join_token,
)

KEY = generate_private_key()
PUBLIC = load_public_key(public_key_pem(KEY))


def token(**kwargs: object) -> str:
    args: dict[str, object] = {
        "meeting_id": "m1",
        "user": "Alice",
        "role": "moderator",
        "epoch": 3,
        "ttl_seconds": 60,
    }
    args.update(kwargs)
    return sign_join_token(KEY, **args)  # type: ignore[arg-type]


def test_valid_token_names_meeting_user_role_and_epoch() -> None:
    claims = verify_join_token(PUBLIC, token(), meeting_id="m1")
    assert (claims.meeting_id, claims.user, claims.role, claims.epoch) == (
        "m1",
        "Alice",
        "moderator",
        3,
    )
    assert claims.expires_at - time.time() == pytest.approx(60, abs=2)


def test_expired_token_is_refused() -> None:
    old = token(now=time.time() - 120, ttl_seconds=60)
    with pytest.raises(InvalidToken, match="expired"):
        verify_join_token(PUBLIC, old, meeting_id="m1")


def test_token_signed_by_another_key_is_refused() -> None:
    forged = sign_join_token(
        generate_private_key(),
        meeting_id="m1",
        user="Mallory",
        role="moderator",
        epoch=1,
        ttl_seconds=60,
    )
    with pytest.raises(InvalidToken, match="not valid"):
        verify_join_token(PUBLIC, forged, meeting_id="m1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims_segment() -> str:
    claims = {
        "sub": "Mallory",
        "mid": "m1",
        "role": "moderator",
        "aud": "moot-room",
        "exp": int(time.time()) + 60,
    }
    return _b64(json.dumps(claims).encode())


def test_tampered_claims_are_refused() -> None:
    header, _payload, signature = token().split(".")
    with pytest.raises(InvalidToken):
        verify_join_token(PUBLIC, f"{header}.{_claims_segment()}.{signature}", meeting_id="m1")


def test_symmetric_algorithm_confusion_is_refused() -> None:
    # HS256 "signed" with the public key as the secret: the classic confusion attack.
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _claims_segment()
    mac = hmac.new(public_key_pem(KEY).encode(), signing_input.encode(), hashlib.sha256)
    with pytest.raises(InvalidToken):
        verify_join_token(PUBLIC, signing_input + "." + _b64(mac.digest()), meeting_id="m1")


def test_token_for_another_meeting_is_refused() -> None:
    with pytest.raises(InvalidToken, match="another meeting"):
        verify_join_token(PUBLIC, token(meeting_id="m2"), meeting_id="m1")


@pytest.mark.parametrize("missing", [None, "", "not-a-jwt"])
def test_missing_or_garbage_token_is_refused(missing: str | None) -> None:
    with pytest.raises(InvalidToken):
        verify_join_token(PUBLIC, missing, meeting_id="m1")


def test_signing_key_is_created_once_with_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    first = load_or_create_private_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    second = load_or_create_private_key(path)
    assert public_key_pem(first) == public_key_pem(second)
