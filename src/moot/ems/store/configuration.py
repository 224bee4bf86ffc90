"""Queries on the versioned cluster configuration (config_versions, config_applied)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import ConfigAppliedRow, ConfigVersionRow

CLUSTER = "cluster"


async def latest_version(session: AsyncSession) -> int:
    """The newest version of any scope; 0 before the first change."""
    return int((await session.scalar(select(func.max(ConfigVersionRow.version)))) or 0)


async def current(session: AsyncSession) -> dict[str, ConfigVersionRow]:
    """The newest row of every scope, by scope."""
    newest = (
        select(ConfigVersionRow.scope, func.max(ConfigVersionRow.version).label("version"))
        .group_by(ConfigVersionRow.scope)
        .subquery()
    )
    stmt = select(ConfigVersionRow).join(newest, ConfigVersionRow.version == newest.c.version)
    return {row.scope: row for row in (await session.scalars(stmt)).all()}


async def add_version(
    session: AsyncSession,
    *,
    version: int,
    scope: str,
    settings: dict[str, Any],
    changed_by: str,
    changed_at: datetime,
    comment: str,
) -> ConfigVersionRow:
    """A new version of a scope: `version` is one after the newest the caller based its
    change on (never re-read here, or a change based on a stale read would be stored).

    Two EMS nodes adding at once pick the same number: the second insert breaks the
    primary key (IntegrityError at this flush, or at commit), and its change is refused.
    """
    row = ConfigVersionRow(
        version=version,
        scope=scope,
        settings=settings,
        changed_by=changed_by[:200],
        changed_at=changed_at,
        comment=comment[:500],
    )
    session.add(row)
    await session.flush()
    return row


async def history(session: AsyncSession, scope: str | None = None) -> list[ConfigVersionRow]:
    """Every version, oldest first (of one scope, or of all): a few per change, never many."""
    stmt = select(ConfigVersionRow).order_by(ConfigVersionRow.version)
    if scope is not None:
        stmt = stmt.where(ConfigVersionRow.scope == scope)
    return list((await session.scalars(stmt)).all())


async def record_applied(
    session: AsyncSession, server_name: str, version: int, at: datetime
) -> None:
    row = await session.get(ConfigAppliedRow, server_name)
    if row is None:
        session.add(ConfigAppliedRow(server_name=server_name, version=version, applied_at=at))
    elif version >= row.version:  # an answer that arrives late never goes back
        row.version = version
        row.applied_at = at


async def applied(session: AsyncSession) -> dict[str, ConfigAppliedRow]:
    rows = (await session.scalars(select(ConfigAppliedRow))).all()
    return {row.server_name: row for row in rows}
