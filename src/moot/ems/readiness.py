"""Whether this EMS node can serve, for `/readyz` (a load balancer's health check): its
store answers, it hears the other nodes' changes (store/change_feed.py), and its part in
the cluster is played (`cluster_state`: the control channel's own say).

The answer is text, one fact a line, the first line `ready` or `not ready`: what an
administrator reads with curl, and what HAProxy's or nginx's check needs (the status).
A check asks the store at most once a second, however many balancers ask: answers of the
last second are shared (KeptReads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.store.change_feed import ChangeFeed
from moot.ems.store.reaching import why
from moot.infra.kept_reads import KeptReads

STORE_TIMEOUT = 2.0  # a store slower than this to answer SELECT 1 cannot serve pages
KEEP_ANSWER = 1.0


@dataclass(frozen=True, slots=True)
class Fact:
    """One line of the answer; `fine` False makes the node not ready."""

    fine: bool
    text: str


# A follower that has not heard the leader for this long cannot have its actions done (a
# lost leader is replaced within 3 s, and publishes its states every second).
LEADER_SILENT = 10.0

# (connected to NATS, leading, seconds since the leader was last heard or None)
BusState = tuple[bool, bool, float | None]


def direct_bus() -> Fact:
    """With the `direct` control channel, room servers connect to this node itself."""
    return Fact(True, "bus: direct (room servers connect to this node)")


def nats_bus(state: BusState, url: str) -> Fact:
    """One node of several: NATS reached, and it leads or a leader is heard."""
    where = f"NATS at {public_address(url)}"
    connected, leading, heard_ago = state
    if not connected:
        return Fact(False, f"bus: {where} unreachable (reconnecting)")
    if leading:
        return Fact(True, f"bus: {where}; this node leads the cluster")
    if heard_ago is None:
        return Fact(False, f"bus: {where}; a follower that has heard no leader yet")
    if heard_ago > LEADER_SILENT:
        return Fact(False, f"bus: {where}; a follower, no leader heard for {heard_ago:.0f} s")
    return Fact(True, f"bus: {where}; a follower, the leader heard {heard_ago:.1f} s ago")


def public_address(url: str) -> str:
    """The URL without a user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Readiness:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ChangeFeed,
        cluster_state: Callable[[], Fact] = direct_bus,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._cluster_state = cluster_state
        self._store: KeptReads[None, str] = KeptReads(self._ask_store, keep_for=KEEP_ANSWER)

    async def facts(self) -> list[Fact]:
        problem = await self._store.get(None)
        facts = [Fact(not problem, f"store: unreachable ({problem})" if problem else "store: ok")]
        if self._changes.shared:
            facts.append(
                Fact(True, "changes of other nodes: heard")
                if self._changes.listening
                else Fact(False, "changes of other nodes: not heard (reconnecting)")
            )
        facts.append(self._cluster_state())
        return facts

    async def answer(self) -> tuple[bool, str]:
        """(ready, the text of /readyz)."""
        facts = await self.facts()
        ready = all(f.fine for f in facts)
        return ready, "\n".join(["ready" if ready else "not ready", *(f.text for f in facts)])

    async def _ask_store(self, _key: None) -> str:
        """ "" if the store answers a query in time, else why not."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT), self._sessions() as session:
                await session.execute(text("SELECT 1"))
        except TimeoutError:
            return f"no answer within {STORE_TIMEOUT:.0f} s"
        except Exception as exc:  # whatever the driver raises, the node cannot serve
            return why(exc)
        return ""
