"""Local users, managed from the command line (`moot users`) straight in the database.

The embedded directory for a Moot without LDAP. Straight in the database, not through the
API: the first administrator has to exist before anyone can sign in to create one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from moot.ems.auth.passwords import hash_password
from moot.ems.hashing import off_loop
from moot.ems.store import users as store
from moot.ems.store.change_feed import tell_once
from moot.ems.store.db import create_engine, session_factory, utcnow
from moot.ems.store.migrate import upgrade_async
from moot.ems.store.models import UserRow

MAX_USERNAME = 200


class UserError(Exception):
    """What went wrong, and what to do instead."""


@dataclass(frozen=True, slots=True)
class LocalUser:
    username: str
    display_name: str
    groups: list[str]
    disabled: bool
    created_at: datetime


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _check_name(username: str) -> str:
    name = username.strip()
    if (
        not name
        or len(name) > MAX_USERNAME
        or any(c.isspace() or not c.isprintable() for c in name)
    ):
        raise UserError(
            f"{username!r} is not a user name: 1 to {MAX_USERNAME} characters, no spaces"
        )
    return name


async def add_user(
    database_url: str,
    username: str,
    password: str,
    *,
    display_name: str = "",
    groups: list[str] | None = None,
) -> LocalUser:
    name = _check_name(username)
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            if await store.get_user(session, name) is not None:
                raise UserError(f"user {name} exists already; remove it first to replace it")
            row = UserRow(
                username=name,
                display_name=display_name.strip() or name,
                password_hash=await off_loop(hash_password, password),
                groups=sorted(set(groups or [])),
                created_at=utcnow(),
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise UserError(f"user {name} exists already") from exc
            return _out(row)
    finally:
        await engine.dispose()


async def list_users(database_url: str) -> list[LocalUser]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return [_out(r) for r in await store.list_users(session)]
    finally:
        await engine.dispose()


async def remove_user(database_url: str, username: str) -> None:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            row = await store.get_user(session, username)
            if row is None:
                raise UserError(f"there is no user {username.strip()!r} (see `moot users list`)")
            await session.delete(row)
            await session.commit()
    finally:
        await engine.dispose()


async def change_groups(
    database_url: str, username: str, *, add: list[str], remove: list[str]
) -> LocalUser:
    """Join and leave groups. The user's sign-in tokens name their old groups: every EMS
    refuses them from now on (AuthService.verify), so they sign in again."""
    wanted = [g.strip() for g in add if g.strip()]
    leaving = {g.strip().casefold() for g in remove if g.strip()}
    if not wanted and not leaving:
        raise UserError("say which groups to join (--add GROUP) or to leave (--remove GROUP)")
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            row = await store.get_user(session, username)
            if row is None:
                raise UserError(f"there is no user {username.strip()!r} (see `moot users list`)")
            kept = [g for g in row.groups if g.casefold() not in leaving]
            known = {g.casefold() for g in kept}
            row.groups = sorted(
                kept + [g for g in dict.fromkeys(wanted) if g.casefold() not in known]
            )
            await session.commit()
            return _out(row)
    finally:
        await engine.dispose()


async def ensure_first_admin(database_url: str, admin_group: str) -> str | None:
    """With no user at all yet, an `admin` in the admin group; its password, shown once."""
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            if await store.count_users(session):
                return None
    finally:
        await engine.dispose()
    password = new_password()
    await add_user(
        database_url, "admin", password, display_name="Administrator", groups=[admin_group]
    )
    return password


def _out(row: UserRow) -> LocalUser:
    return LocalUser(
        username=row.username,
        display_name=row.display_name,
        groups=list(row.groups),
        disabled=row.disabled,
        created_at=row.created_at,
    )


async def rotate_keys(database_url: str, *, retire_old: bool) -> tuple[str, int]:
    """A new signing key for sign-in tokens; with `retire_old`, tokens of the old keys die.

    Returns the new key's id and how many keys were retired. Every EMS node picks the new key
    up when it first sees a token it signed (or at its next start).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from moot.ems.auth.tokens import new_kid
    from moot.ems.store.models import SigningKeyRow

    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            retired = 0
            if retire_old:
                for row in await store.signing_keys(session):
                    if row.retired_at is None:
                        row.retired_at = utcnow()
                        retired += 1
            kid = new_kid()
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            session.add(SigningKeyRow(kid=kid, private_pem=pem.decode(), created_at=utcnow()))
            await session.commit()
    finally:
        await engine.dispose()
    await tell_once(database_url, "keys")  # running EMS nodes read the keys again at once
    return kid, retired
