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


def direct_bus() -> Fact:
    """With the `direct` control channel, room servers connect to this node itself."""
    return Fact(True, "bus: direct (room servers connect to this node)")


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
