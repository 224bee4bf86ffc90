"""`moot room`: the room server process (web side + agent in one event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Iterator

import uvicorn

from moot.bus import Link
from moot.bus.direct import dial
from moot.config import RoomSettings
from moot.protocol.control import ServerLimits
from moot.room.agent import Agent, RegistrationRefused
from moot.room.app import create_app
from moot.room.host import MeetingHost

log = logging.getLogger("moot.room")


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: `run_room` owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_agent(settings: RoomSettings, ems_tls: ssl.SSLContext | None = None) -> Agent:
    """The agent; ems_tls verifies the EMS (tls_ca) and carries the client certificate."""

    client_certificate = ems_tls is not None and settings.room_client_cert is not None

    async def dialer() -> Link:
        return await dial(settings.ems_url, ems_tls, client_certificate=client_certificate)

    return Agent(
        name=settings.room_name,
        url=settings.resolved_room_url(),
        secret=settings.cluster_secret,
        limits=ServerLimits(
            max_active_meetings=settings.max_active_meetings,
            max_users_per_meeting=settings.max_users_per_meeting,
            instant_meetings=settings.instant_meetings,
            location=settings.location,
        ),
        host=MeetingHost(),
        dial=dialer,
    )


async def run_room(
    settings: RoomSettings,
    *,
    https: ssl.SSLContext | None = None,
    ems_tls: ssl.SSLContext | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (exit 0) or until the EMS refuses us (exit 2).

    https: serve the meeting pages over HTTPS with it; ems_tls: for the control channel.
    Both come from moot.tls, which checked the files before anything started.
    """
    agent = build_agent(settings, ems_tls)
    app = create_app(agent, settings.ems_url)
    config = uvicorn.Config(
        app,
        host=settings.room_host,
        port=settings.room_port,
        log_level=settings.log_level,
        access_log=False,
        ws_ping_interval=10,
        ws_ping_timeout=10,
        # The context made at start-up, not uvicorn's own from file names: it is the one
        # whose files were checked, and it refuses TLS older than 1.2.
        ssl_context_factory=(lambda _config, _default: https) if https is not None else None,
    )
    server = _QuietServer(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve())
    agent_task = asyncio.create_task(agent.run_in_thread())
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait(
        {serving, agent_task, stopping}, return_when=asyncio.FIRST_COMPLETED
    )
    code = 0
    if agent_task in done:
        error = agent_task.exception()
        if isinstance(error, RegistrationRefused):
            log.error("the EMS refused this room server: %s", error)
            code = 2
        else:
            log.error("the room server's agent stopped", exc_info=error)
            code = 1
    elif serving in done:
        code = 1  # uvicorn could not start (it logged why)
    await agent.announce_shutdown()
    agent_task.cancel()
    stopping.cancel()
    server.should_exit = True
    await asyncio.gather(serving, agent_task, stopping, return_exceptions=True)
    return code
