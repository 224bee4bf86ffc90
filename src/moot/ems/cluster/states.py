"""A room server's state (online, suspect, failed, offline): every change in memory, in the
log, and stored for reports; and what losing its link means."""

from __future__ import annotations

import logging
import time

from moot.core.placement import ServerState
from moot.ems.cluster.commands import Commands
from moot.ems.cluster.context import ClusterContext
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import servers as server_store
from moot.ems.store.db import utcnow

log = logging.getLogger("moot.ems.cluster")


class ServerStates:
    def __init__(self, ctx: ClusterContext, commands: Commands) -> None:
        self._ctx = ctx
        self._commands = commands

    def drop_link(self, server: LiveServer) -> None:
        server.link = None
        self._commands.fail_waiting(server.name)

    async def link_lost(self, server: LiveServer) -> None:
        """The connection dropped: SUSPECT until it reconnects or the grace runs out."""
        self.drop_link(server)
        server.disconnected_at = time.monotonic()
        why = "the EMS is stopping" if self._ctx.stopping else "control connection closed"
        await self.set_state(server, ServerState.SUSPECT, why)

    async def set_state(self, server: LiveServer, state: ServerState, why: str) -> None:
        """Every change of state: in memory, in the log, and stored for reports."""
        if server.state is state:
            return
        before, server.state = server.state, state
        if state is not ServerState.ONLINE:
            server.meetings = {}
        self._ctx.registry.refresh(server)
        quiet = state is ServerState.ONLINE or why in (
            "it announced its shutdown",
            "the EMS is stopping",
        )
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "room server %s: %s -> %s (%s)",
            server.name,
            before.value,
            state.value,
            why,
        )
        async with self._ctx.sessions() as session:
            row = await server_store.get_server(session, server.name)
            if row is not None:
                row.status = state.value
                await server_store.record_event(
                    session, server_name=server.name, at=utcnow(), state=state.value, reason=why
                )
                await session.commit()
