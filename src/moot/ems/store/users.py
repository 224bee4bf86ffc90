"""Queries on local users, signing keys, revoked tokens, logins, their failures, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import (
    AuditRow,
    LoginFailureRow,
    LoginRow,
    RevokedTokenRow,
    SigningKeyRow,
    UserRow,
)


async def get_user(session: AsyncSession, username: str) -> UserRow | None:
    stmt = select(UserRow).where(func.lower(UserRow.username) == username.strip().lower())
    return (await session.scalars(stmt)).first()


async def list_users(session: AsyncSession) -> list[UserRow]:
    return list(await session.scalars(select(UserRow).order_by(func.lower(UserRow.username))))


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(UserRow)) or 0)


async def signing_keys(session: AsyncSession) -> list[SigningKeyRow]:
    return list(await session.scalars(select(SigningKeyRow).order_by(SigningKeyRow.created_at)))


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    return await session.get(RevokedTokenRow, jti) is not None


async def revoke(session: AsyncSession, jti: str, expires_at: datetime) -> None:
    if await session.get(RevokedTokenRow, jti) is None:
        session.add(RevokedTokenRow(jti=jti, expires_at=expires_at))


async def forget_expired_revocations(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at <= now))


def record_failure(
    session: AsyncSession, *, at: datetime, username: str, address: str, reason: str
) -> None:
    session.add(
        LoginFailureRow(at=at, username=username[:200], address=address[:64], reason=reason[:200])
    )


def record_login(
    session: AsyncSession,
    *,
    at: datetime,
    username: str,
    source: str,
    partition: str | None,
    address: str,
) -> None:
    session.add(
        LoginRow(at=at, username=username, source=source, partition=partition, address=address)
    )


def audit(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            at=at,
            actor=actor,
            action=action,
            target=target[:200],
            address=address[:64],
            detail=detail or {},
        )
    )


async def audit_log(session: AsyncSession, limit: int = 100) -> list[AuditRow]:
    stmt = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
    return list(await session.scalars(stmt))


async def login_failures(session: AsyncSession, limit: int = 100) -> list[LoginFailureRow]:
    stmt = (
        select(LoginFailureRow)
        .order_by(LoginFailureRow.at.desc(), LoginFailureRow.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(stmt))
