"""Users as they are now: what a sign-in given earlier is checked against.

A sign-in token names its user's groups when it was given; each use checks the user again
(AuthService.verify): a local user in the database every time, a directory user in the
directory at most every `directory_recheck_seconds` (its answers are kept that long). And
whether a name is anyone's at all, for the attend page's guests (local names are read every
LOCAL_NAMES_FOR seconds: attending is the hot path).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.auth.directory import DirectoryError, DirectoryUser
from moot.ems.store import users as store
from moot.infra.kept_reads import KeptReads

if TYPE_CHECKING:
    from moot.ems.auth.ldap import LdapDirectory

log = logging.getLogger("moot.ems.auth")

# How long a name looked up in the directory (is it a user's?) is taken as known, and how
# long the local users' names are.
KNOWN_NAMES_FOR = 300.0
LOCAL_NAMES_FOR = 5.0
# The most directory answers kept: names typed on the attend page are anyone's to choose.
MAX_ANSWERS = 10_000


class UsersNow:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: LdapDirectory | None,
        *,
        recheck_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._directory = directory
        self._recheck = recheck_seconds
        # (name, partition) -> (when asked, the directory's answer).
        self._answers: dict[tuple[str, str | None], tuple[float, DirectoryUser | None]] = {}
        # The local users' names (case-folded), read again every LOCAL_NAMES_FOR seconds:
        # attending is the hot path, and a name typed there is looked up in them.
        self._local_names: KeptReads[None, frozenset[str]] = KeptReads(
            self._read_local_names, keep_for=LOCAL_NAMES_FOR
        )

    async def now(
        self, username: str, source: str, partition: str | None, *, unknown: frozenset[str]
    ) -> tuple[frozenset[str], datetime | None] | None:
        """(groups now, when made for local users) of a signed-in user; None if removed or
        disabled. The directory is asked at most every `directory_recheck_seconds` per user;
        while it cannot be asked, its last answer stands, or with none, `unknown` groups."""
        if source == "local":
            async with self._sessions() as session:
                row = await store.get_user(session, username)
            if row is None or row.disabled:
                return None
            return frozenset(row.groups), row.created_at
        if source != "ldap" or self._directory is None:
            return None if source == "ldap" else (frozenset(), None)
        key = (username.casefold(), partition)
        cached = self._answers.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._recheck:
            user = cached[1]
        else:
            try:
                user = await asyncio.to_thread(self._directory.lookup, username, partition)
            except DirectoryError as exc:
                log.warning("could not check %s in the directory: %s", username, exc)
                if cached is None:
                    return unknown, None
                user = cached[1]
            else:
                self._keep(key, user)
        return None if user is None else (user.groups, None)

    def _keep(self, key: tuple[str, str | None], user: DirectoryUser | None) -> None:
        if len(self._answers) >= MAX_ANSWERS:
            self._answers.clear()  # asked again as needed: answers, not state
        self._answers[key] = (time.monotonic(), user)

    async def _read_local_names(self, _: None) -> frozenset[str]:
        async with self._sessions() as session:
            return frozenset(r.username.casefold() for r in await store.list_users(session))

    async def is_known(self, name: str) -> bool:
        """Whether someone may sign in under this name (a local user, or one of the
        directory): a visitor who types it is shown as a guest."""
        name = name.strip()
        if not name:
            return False
        if name.casefold() in await self._local_names.get(None):
            return True
        if self._directory is None:
            return False
        key = (name.casefold(), None)
        cached = self._answers.get(key)
        if cached is not None and time.monotonic() - cached[0] < KNOWN_NAMES_FOR:
            return cached[1] is not None
        try:
            user = await asyncio.to_thread(self._directory.lookup, name, None)
        except DirectoryError as exc:
            log.warning("could not look %r up in the directory: %s", name, exc)
            return cached is not None and cached[1] is not None
        self._keep(key, user)
        return user is not None
