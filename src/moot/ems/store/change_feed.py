"""Changes other EMS nodes made, heard at once: what a node keeps of the store in memory
(a running meeting's attend facts, a meeting's moderation events, the configuration, the
signing keys) is dropped the moment another node, or the CLI, changes it.

PostgreSQL LISTEN/NOTIFY on the store every node shares (docs/architecture.md, "Caches
across EMS nodes", says why not NATS). A node that changed something says so with a NOTIFY
after its commit, on the one connection it also LISTENs on; every node hears every other's
(its own it ignores). A node whose connection broke may have missed some: once it is back
it drops everything it keeps (`on_missed`). On SQLite there is one node: nothing to tell,
nothing to hear, and the feed does nothing.

A payload is "<node> <kind> <key>": kinds are "meeting" (key: its id), "moderation" (key:
the meeting's id), "configuration" and "keys" (no key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

import asyncpg  # type: ignore[import-untyped]  # it ships no type hints
from sqlalchemy.engine import make_url

from moot.ems.store.reaching import safe_address

log = logging.getLogger("moot.ems.changes")

CHANNEL = "moot_changes"
# A connection idle this long is asked whether it still works (a broken one tells nothing).
PING_EVERY = 2.0
RETRY_FIRST, RETRY_MOST = 0.5, 10.0


def listen_url(database_url: str) -> str | None:
    """The asyncpg address of a PostgreSQL store; None for SQLite (one node)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeFeed:
    """The node's end of the channel: `changed()` tells the others, `on()` hears them."""

    def __init__(self, database_url: str) -> None:
        self._url = listen_url(database_url)
        self.node = secrets.token_hex(6)
        self._listeners: dict[str, list[Callable[[str], None]]] = {}
        self._missed: list[Callable[[], None]] = []
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self.listening = self._url is None  # one node: nothing to hear, nothing missed

    @property
    def shared(self) -> bool:
        """Whether other nodes may share the store (PostgreSQL)."""
        return self._url is not None

    def on(self, kind: str, listener: Callable[[str], None]) -> None:
        """Call `listener(key)` when another node changed a `kind`."""
        self._listeners.setdefault(kind, []).append(listener)

    def on_missed(self, listener: Callable[[], None]) -> None:
        """Call `listener()` when changes may have gone unheard: drop everything kept."""
        self._missed.append(listener)

    def changed(self, kind: str, key: str = "") -> None:
        """This node committed a change of `kind`: the others drop their copy. Called after
        the commit, so a node that reads again on hearing it reads the change."""
        if self._url is not None:
            self._outbox.put_nowait(f"{self.node} {kind} {key}")

    async def run(self) -> None:
        """Listen and tell until cancelled; a broken connection is made again (backoff)."""
        if self._url is None:
            return
        wait, heard_before = RETRY_FIRST, False
        while True:
            try:
                connection = await asyncpg.connect(self._url, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                if wait == RETRY_FIRST:
                    log.warning(
                        "cannot listen for other nodes' changes at %s (%s): trying again",
                        safe_address(self._url),
                        exc,
                    )
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_MOST)
                continue
            try:
                await connection.add_listener(CHANNEL, self._heard)
                self.listening = True
                if heard_before:  # what was told while we were away is lost: drop all
                    log.info("listening for other nodes' changes again: caches dropped")
                    self._tell_missed()
                heard_before, wait = True, RETRY_FIRST
                await self._tell(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lost the connection that hears other nodes' changes: %s", exc)
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 2)

    async def _tell(self, connection: asyncpg.Connection) -> None:
        """Send what this node changed; between changes, check the connection still works."""
        while True:
            try:
                payload = await asyncio.wait_for(self._outbox.get(), PING_EVERY)
            except TimeoutError:
                await connection.fetchval("SELECT 1", timeout=5)
                continue
            try:
                await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except BaseException:
                self._outbox.put_nowait(payload)  # told on the next connection
                raise

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        node, _, rest = payload.partition(" ")
        if node == self.node:
            return
        kind, _, key = rest.partition(" ")
        for listener in self._listeners.get(kind, []):
            try:
                listener(key)
            except Exception:  # one listener's fault stops no other
                log.exception("a listener of %s changes failed", kind)

    def _tell_missed(self) -> None:
        for listener in self._missed:
            try:
                listener()
            except Exception:
                log.exception("a listener of missed changes failed")


async def tell_once(database_url: str, kind: str, key: str = "") -> None:
    """Tell the EMS nodes of a change made outside them (the CLI); nothing on SQLite."""
    url = listen_url(database_url)
    if url is None:
        return
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, f"cli {kind} {key}")
    finally:
        await connection.close()
