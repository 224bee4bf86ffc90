"""`moot room`: the room server process (web side + agent in one event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
from collections.abc import Iterator

import uvicorn

from moot.bus import is_nats
from moot.bus.direct import dialer
from moot.bus.nats import dialer as nats_dialer
from moot.infra.settings import RoomSettings
from moot.protocol.control import ServerLimits
from moot.room.agent import Agent, RegistrationRefused
from moot.room.app import create_app
from moot.room.community.bus import CommunityBus
from moot.room.community.hub import CommunityHub
from moot.room.community.roster import RosterPresence
from moot.room.host import MeetingHost
from moot.room.media.janus_config import default_rtp_ports, parse_rtp_ports
from moot.room.media.recorder import MediaRecorder
from moot.room.media.supervisor import JanusSettings, JanusSupervisor
from moot.room.media.upload import MediaUploader

log = logging.getLogger("moot.room")

# The largest WebSocket message a page may send (uvicorn's default is 16 MB): a chat line at
# max_chat_length (at most 10,000 characters) in JSON fits many times over.
WS_MAX_BYTES = 256 * 1024


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: `run_room` owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# How many container objects Python allocates between two collections of its youngest
# generation: 50,000, not the default 700. A room server makes short-lived objects for
# every message to every page; collected 700 at a time, the ones alive at that moment are
# promoted often enough to set off full collections, which scan every page's objects: with
# 5,000 pages, pauses of half a second to a second every few seconds (bench/room.py),
# during which the GIL is held, so the agent's thread could not report either.
GC_YOUNG_GENERATION = 50_000


def _tune_garbage_collector() -> None:
    """Fewer, later collections; what start-up made (modules, the app) never scanned again."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_GENERATION, older, oldest)


def build_agent(settings: RoomSettings, ems_tls: ssl.SSLContext | None = None) -> Agent:
    """The agent; ems_tls verifies the EMS (tls_ca) and carries the client certificate."""

    client_certificate = ems_tls is not None and settings.room_client_cert is not None

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
        # direct: dial the EMS's WebSocket; nats: whichever EMS node leads answers.
        dial=nats_dialer(settings.bus_url, settings.resolved_bus_prefix())
        if is_nats(settings.bus_url)
        else dialer(settings.ems_url, ems_tls, client_certificate=client_certificate),
    )


def janus_settings(settings: RoomSettings) -> JanusSettings:
    """How this room server gets its Janus: its own (a folder under the data dir), the
    operator's (janus_url), or none."""
    ports = (
        parse_rtp_ports(settings.janus_rtp_ports)
        if settings.janus_rtp_ports
        else default_rtp_ports(settings.room_port)
    )
    mode = "off" if settings.janus == "off" else "url" if settings.janus_url else "auto"
    return JanusSettings(
        mode=mode,
        folder=(settings.data_dir / f"janus-{settings.room_name}").resolve(),
        binary=settings.janus_binary,
        rtp_ports=ports,
        url=settings.janus_url,
        api_secret=settings.janus_api_secret,
        admin_key=settings.janus_admin_key,
    )


async def run_room(
    settings: RoomSettings,
    *,
    https: ssl.SSLContext | None = None,
    ems_tls: ssl.SSLContext | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (exit 0) or until the EMS refuses us (exit 2).

    https: serve the meeting pages over HTTPS with it; ems_tls: for the control channel.
    Both come from moot.infra.tls, which checked the files before anything started.
    """
    agent = build_agent(settings, ems_tls)
    community: asyncio.Task[None] | None = None
    if settings.community_bus_url:
        host = agent.host
        hub = CommunityHub(
            CommunityBus(settings.community_bus_url, settings.resolved_community_prefix()),
            lambda: host.config,
            settings.room_name or "room",
        )
        host.on_config = hub.config_changed
        host.on_notice_all = hub.notice
        rosters = RosterPresence(hub, lambda: host.meetings)
        host.on_page_joined = rosters.joined
        host.on_person_left = rosters.left
        agent.community = hub
        community = asyncio.create_task(hub.run())
    app = create_app(agent, settings.ems_url)
    config = uvicorn.Config(
        app,
        host=settings.room_host,
        port=settings.room_port,
        log_level=settings.log_level,
        access_log=False,
        ws_ping_interval=10,
        ws_ping_timeout=10,
        ws_max_size=WS_MAX_BYTES,
        # The context made at start-up, not uvicorn's own from file names: it is the one
        # whose files were checked, and it refuses TLS older than 1.2.
        ssl_context_factory=(lambda _config, _default: https) if https is not None else None,
    )
    server = _QuietServer(config)
    _tune_garbage_collector()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve())
    agent.host.media.max_streams = settings.max_media_streams
    agent.host.media.max_bitrate_kbps = settings.max_media_bitrate_mbps * 1000
    janus = JanusSupervisor(janus_settings(settings), agent.host.media)
    leftovers: asyncio.Task[None] | None = None
    if janus.settings.mode == "auto":  # an operator's Janus (janus_url) may be elsewhere
        recorder = MediaRecorder(janus.settings.folder / "recordings")
        agent.host.media.recorder = recorder
        agent.uploader = MediaUploader(recorder.ready)
        # Listed before Janus starts recording again; processed while the server runs.
        leftovers = asyncio.create_task(recorder.finish_all(recorder.leftovers()))
    media = asyncio.create_task(janus.run())
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
    media.cancel()
    await asyncio.gather(media, return_exceptions=True)
    if leftovers is not None:
        leftovers.cancel()
    if agent.community is not None:
        if community is not None:
            community.cancel()
        await agent.community.stop()
    agent_task.cancel()
    stopping.cancel()
    server.should_exit = True
    await asyncio.gather(serving, agent_task, stopping, return_exceptions=True)
    # Now, not when asyncio.run closes the loop: it closes its self-pipe before it removes
    # the handlers, so a second SIGTERM in between printed a traceback ("Bad file
    # descriptor"). From here a signal has its default effect; we are exiting anyway.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    return code
