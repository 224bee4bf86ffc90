"""The cluster configuration service: versions in the store, delivery to room servers.

Every change of a scope (the cluster, or one server's overrides) is a new version row;
the change names the version it was based on, and a stale one is refused (409), so two
administrators never overwrite each other unknowingly. After a change, each room server
it affects gets its effective values (`ApplyConfig`) at once; a room server that
registers gets them right after `registered`. Which version each one applied is stored.

Several EMS nodes: the versions live in the store; each node reads the newest version
number when another node tells it of a change (store/change_feed.py), and every
CONFIG_REFRESH seconds in any case; when it is newer, it reloads and delivers to the room
servers connected to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core import configuration as cluster_config
from moot.core.configuration import DEFAULTS, Effective, effective
from moot.core.placement import ServerState
from moot.ems.auth.identity import Audit, Identity, no_audit
from moot.ems.cluster.manager import CommandFailed
from moot.ems.cluster.needs import ConfigPush
from moot.ems.cluster.registry import LiveServer
from moot.ems.errors import InvalidChange
from moot.ems.store import configuration as store
from moot.ems.store import servers as server_store
from moot.ems.store.change_feed import ChangeFeed
from moot.ems.store.configuration import CLUSTER
from moot.ems.store.db import utcnow
from moot.ems.store.outage import StoreOutage

log = logging.getLogger("moot.ems.config")

CONFIG_REFRESH = 30.0
# How long a change waits for the room servers' answers before it reports "pending".
DELIVERY_WAIT = 3.0


# What no text may hold: PostgreSQL refuses NUL in text and JSON, and the other C0 controls
# and DEL are nothing a page can show. A text of lines keeps its line breaks and tabs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The keys whose values are lines of text (a textarea); every other string is one line.
TEXT_OF_LINES = frozenset({"welcome_message"})


def control_character(text: str, *, lines: bool = False) -> str | None:
    """Why `text` cannot be stored, if it holds a control character; else None."""
    found = (_CONTROL_IN_LINES if lines else _CONTROL).search(text)
    if found is None:
        return None
    return f"remove the control character U+{ord(found.group()):04X}: it cannot be stored"


def control_errors(values: dict[str, Any]) -> dict[str, str]:
    """The values' strings holding a control character, by key (or key.index.field)."""
    errors: dict[str, str] = {}

    def walk(where: str, value: Any, lines: bool) -> None:
        if isinstance(value, str):
            why = control_character(value, lines=lines)
            if why is not None:
                errors.setdefault(where, why)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{where}.{index}", item, lines)
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(f"{where}.{name}", item, lines)

    for key, value in values.items():
        walk(key, value, key in TEXT_OF_LINES)
    return errors


class ConfigConflict(Exception):
    """The change was based on a version that is no longer the newest of its scope."""


class UnknownServer(Exception):
    """Overrides for a room server the cluster does not know."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The newest version of one scope (version 0: never changed)."""

    version: int
    settings: dict[str, Any]
    changed_by: str | None = None
    changed_at: datetime | None = None
    comment: str = ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int
    scope: str
    changed_by: str
    changed_at: datetime
    comment: str
    changes: list[cluster_config.Change]


@dataclass(frozen=True, slots=True)
class ServerView:
    name: str
    overrides: Scope
    effective: Effective
    version: int  # the version of its effective values
    applied_version: int | None
    state: Literal["applied", "pending", "offline"]


class ConfigService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster: ConfigPush,
        audit: Audit = no_audit,
        changes: ChangeFeed | None = None,
    ) -> None:
        self._sessions = sessions
        self._cluster = cluster
        self._feed = changes
        # Set when another node changed the configuration: run() reads it now, not at its
        # next round.
        self._stale = asyncio.Event()
        if changes is not None:
            changes.on("configuration", lambda _key: self._stale.set())
            changes.on_missed(self._stale.set)
        self._audit = audit
        self._scopes: dict[str, Scope] = {}
        self.version = 0  # the newest version of any scope known here
        self._lock = asyncio.Lock()  # one change at a time on this node
        self._delivering: dict[str, asyncio.Lock] = {}
        self._applied: dict[str, int] = {}  # what servers connected here answered
        self._registered_url: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()
        cluster.events.server_registered.subscribe(self._registered)

    # -- reading -----------------------------------------------------------

    async def load(self) -> None:
        async with self._sessions() as session:
            await self._reload(session)

    async def _reload(self, session: AsyncSession) -> None:
        rows = await store.current(session)
        self._scopes = {
            scope: Scope(
                row.version, dict(row.settings), row.changed_by, row.changed_at, row.comment
            )
            for scope, row in rows.items()
        }
        self.version = max((s.version for s in self._scopes.values()), default=0)

    def scope(self, name: str) -> Scope:
        default = dict(DEFAULTS) if name == CLUSTER else {}
        return self._scopes.get(name) or Scope(0, default)

    def for_server(self, name: str) -> tuple[int, Effective]:
        """A room server's effective values, and their version."""
        cluster, own = self.scope(CLUSTER), self.scope(name)
        return max(cluster.version, own.version), effective(cluster.settings, own.settings)

    def recording_allowed(self, server_name: str) -> bool:
        """The room server may record: its effective `recording_allowed`."""
        return bool(self.for_server(server_name)[1].values["recording_allowed"])

    async def servers(self) -> list[ServerView]:
        """Every known room server with its overrides, effective values and whether it runs them."""
        async with self._sessions() as session:
            rows = await server_store.list_servers(session)
            applied = await store.applied(session)
        views = []
        for row in rows:
            version, values = self.for_server(row.name)
            done = applied.get(row.name)
            applied_version = max(done.version if done else -1, self._applied.get(row.name, -1))
            live = self._cluster.registry.get(row.name)
            online = live is not None and live.link is not None
            state: Literal["applied", "pending", "offline"] = (
                "applied" if applied_version >= version else "pending" if online else "offline"
            )
            views.append(
                ServerView(
                    name=row.name,
                    overrides=self.scope(row.name),
                    effective=values,
                    version=version,
                    applied_version=applied_version if applied_version >= 0 else None,
                    state=state,
                )
            )
        return views

    async def history(self, scope: str | None = None, limit: int = 100) -> list[HistoryEntry]:
        """Changes, newest first: who, when, which scope, each key's value before and after."""
        async with self._sessions() as session:
            rows = await store.history(session)
        previous: dict[str, dict[str, Any]] = {}
        entries = []
        for row in rows:
            before = previous.get(row.scope, dict(DEFAULTS) if row.scope == CLUSTER else {})
            previous[row.scope] = row.settings
            if scope is None or row.scope == scope:
                entries.append(
                    HistoryEntry(
                        version=row.version,
                        scope=row.scope,
                        changed_by=row.changed_by,
                        changed_at=row.changed_at,
                        comment=row.comment,
                        changes=cluster_config.diff(before, row.settings),
                    )
                )
        return entries[::-1][:limit]

    # -- changing ------------------------------------------------------------

    async def change(
        self,
        scope: str,
        values: dict[str, Any],
        *,
        based_on: int,
        replace: bool,
        changed_by: str | None = None,
        by: Identity | None = None,
        comment: str = "",
    ) -> int:
        """Store a new version of a scope and deliver it; returns its version number.
        `by` (who is audited) names the change unless `changed_by` does.

        replace: the values are the whole scope (PUT); else they change the keys given,
        and a key given as None goes back to the default (cluster) or to the cluster's
        value (a server). Raises ConfigConflict, UnknownServer, or ConfigError (nothing
        is stored). Nothing changed: nothing stored, the current version is returned.
        """
        version = await self._change(
            scope,
            values,
            based_on=based_on,
            replace=replace,
            changed_by=changed_by or (by.name if by is not None else "?"),
            comment=comment,
        )
        if by is not None:
            await self._audit(by, "config.change", scope, {"version": version, "comment": comment})
        return version

    async def _change(
        self,
        scope: str,
        values: dict[str, Any],
        *,
        based_on: int,
        replace: bool,
        changed_by: str,
        comment: str,
    ) -> int:
        why = control_character(comment)
        if why is not None:
            raise InvalidChange("comment", why)
        if errors := control_errors(values):
            raise cluster_config.ConfigError(errors)
        async with self._lock, self._sessions() as session:
            if scope != CLUSTER and await server_store.get_server(session, scope) is None:
                raise UnknownServer(scope)
            await self._reload(session)  # another node may have changed it
            current = self.scope(scope)
            if based_on != current.version:
                raise ConfigConflict(_stale(scope, based_on, current))
            cluster = self.scope(CLUSTER).settings
            merged = dict(values) if replace else {**current.settings, **values}
            if scope == CLUSTER:
                merged = {k: DEFAULTS.get(k) if v is None else v for k, v in merged.items()}
                new = cluster_config.validate_cluster(merged, previous=current.settings)
            else:
                merged = {k: v for k, v in merged.items() if v is not None}
                new = cluster_config.validate_overrides(merged, cluster, previous=current.settings)
            if new == current.settings:
                return current.version
            try:
                row = await store.add_version(
                    session,
                    version=self.version + 1,  # after the newest read just above
                    scope=scope,
                    settings=new,
                    changed_by=changed_by,
                    changed_at=utcnow(),
                    comment=comment.strip(),
                )
                version = row.version
                await session.commit()
                if self._feed is not None:
                    self._feed.changed("configuration")
            except IntegrityError as exc:  # another node numbered its change the same
                await session.rollback()
                await self._reload(session)
                raise ConfigConflict(_raced(self.scope(scope))) from exc
            await self._reload(session)
        names = [s.name for s in self._cluster.registry.all()] if scope == CLUSTER else [scope]
        await self._deliver_to(names, wait=DELIVERY_WAIT)
        return version

    # -- delivery --------------------------------------------------------------

    def _registered(self, server: LiveServer) -> None:
        self._registered_url[server.name] = server.url
        self._in_background(self._deliver(server))

    async def _deliver_to(self, names: list[str], wait: float) -> None:
        tasks = []
        for name in names:
            server = self._cluster.registry.get(name)
            if server is not None:
                tasks.append(self._in_background(self._deliver(server)))
        if tasks:
            await asyncio.wait(tasks, timeout=wait)

    async def _deliver(self, server: LiveServer) -> None:
        """Send the server its effective values, unless it already runs them."""
        lock = self._delivering.setdefault(server.name, asyncio.Lock())
        async with lock:
            version, values = self.for_server(server.name)
            # The EMS's own part of connectivity: where browsers are sent for this server.
            registered = self._registered_url.get(server.name, server.url)
            server.url = values.values.get("advertised_url") or registered
            if server.link is None:
                return  # sent when it registers
            try:
                await self._cluster.apply_config(server, version, values.values)
            except CommandFailed as exc:
                log.warning("configuration %d not applied on %s: %s", version, server.name, exc)
                return
            self._applied[server.name] = version
            async with self._sessions() as session:
                await store.record_applied(session, server.name, version, utcnow())
                await session.commit()
            log.info("room server %s runs configuration version %d", server.name, version)

    async def run(self, interval: float = CONFIG_REFRESH) -> None:
        """Notice changes made through other EMS nodes; retry servers that did not apply."""
        outage = StoreOutage(log, "refreshing the cluster configuration")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), interval)
            self._stale.clear()
            try:
                async with self._sessions() as session:
                    newest = await store.latest_version(session)
                    if newest > self.version:
                        await self._reload(session)
                        log.info("configuration version %d read from the store", newest)
                behind = [
                    s.name
                    for s in self._cluster.registry.all()
                    if s.link is not None
                    and s.state is ServerState.ONLINE
                    and self._applied.get(s.name, -1) < self.for_server(s.name)[0]
                ]
                await self._deliver_to(behind, wait=interval)
                outage.worked()
            except Exception as exc:  # the store may be away for a moment: the next round
                outage.failed(exc)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task


def _raced(current: Scope) -> str:
    who = f" by {current.changed_by}" if current.changed_by else ""
    return (
        f"the configuration was changed at the same moment{who} (now at version "
        f"{current.version}): reload it, then make your change again"
    )


def _stale(scope: str, based_on: int, current: Scope) -> str:
    what = "the cluster's configuration" if scope == CLUSTER else f"the overrides of {scope}"
    who = f" by {current.changed_by}" if current.changed_by else ""
    return (
        f"{what} changed since version {based_on}: it is at version {current.version}"
        f"{who}. Reload it, then make your change again"
    )
