"""The room server's web side: the meeting page and its WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import WebSocketRoute

from moot import __version__
from moot.core.configuration import ice_servers
from moot.core.text import sentence
from moot.infra.body_limit import BodyLimit, fixed
from moot.infra.metrics import CONTENT_TYPE_LATEST, exposition
from moot.infra.negotiation import wants_html
from moot.infra.security_headers import SecurityHeaders
from moot.infra.tokens import InvalidToken, verify_join_token
from moot.protocol.client import (
    Draw,
    EndMeeting,
    Error,
    MediaRequest,
    Ping,
    Pointer,
    Pong,
    React,
    SendChat,
    SendTool,
    parse_client,
)
from moot.protocol.tools import REACTIONS
from moot.room import metrics
from moot.room.agent import Agent
from moot.room.community.socket import serve_community
from moot.room.connection import Connection
from moot.room.host import (
    CLOSE_NOT_ADMITTED,
    HostedMeeting,
    MeetingHost,
    MeetingNotHere,
    NameTaken,
    NotAdmitted,
)
from moot.room.texts import invalid_text, message_id, name_taken_text

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# WebSocket close codes the meeting client understands (docs/protocol.md).
CLOSE_BAD_TOKEN = 4401
CLOSE_NOT_HERE = 4404
CLOSE_NAME_TAKEN = 4409
STALE_TOKEN = "This join token is for an earlier start of the meeting: open it again."
NOT_FOUND_TEXT = "There is no page at this address on this room server."
# Every page pings every second (meeting.js sends exactly PING): the answer, serialised once.
PING = Ping().model_dump_json()
PONG = Pong().model_dump_json()
# Seconds a closing socket may take to send what is queued for it (`ended`, the close).
DRAIN_TIMEOUT = 5.0


# The reactions' names, for screen readers and tooltips (protocol/tools.py REACTIONS).
REACTION_LABELS = list(
    zip(
        REACTIONS,
        ("thumbs up", "applause", "laughter", "surprise", "love", "celebration"),
        strict=True,
    )
)
# The whiteboard's tools: (key, label) in the order of its tool bar.
BOARD_TOOLS = [
    ("pen", "Pen"),
    ("line", "Line"),
    ("rect", "Rectangle"),
    ("ellipse", "Ellipse"),
    ("arrow", "Arrow"),
    ("text", "Text"),
    ("eraser", "Eraser"),
    ("pointer", "Pointer"),
]
TEST_ECHOES = 5
# The room server takes no request bodies; its WebSocket messages have their own cap (server).
MAX_REQUEST_BYTES = 64 * 1024


def create_app(agent: Agent, ems_url: str) -> FastAPI:
    app = FastAPI(
        title=f"Moot room server {agent.name}",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # Then moot.protocol's static: how the board looks, shared with the EMS's recording page.
    static = StaticFiles(
        directory=Path(__file__).parent / "static", packages=[("moot.protocol", "static")]
    )
    app.mount("/static", static, name="static")
    # The same Content-Security-Policy as the EMS's pages: scripts and styles from this server
    # only (Playwright's page functions run through the DevTools protocol, which it spares).
    app.add_middleware(SecurityHeaders, https=agent.url.startswith("https://"), frames=True)
    app.add_middleware(BodyLimit, cap=fixed(MAX_REQUEST_BYTES, "64 KB"))  # it takes no bodies
    host = agent.host

    def refuse(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "refused.html",
            {"title": title, "text": text, "ems_url": ems_url},
            status_code=status_code,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A browser that opens an unknown address gets a page with a way to the Meeting
        # Center; programs keep FastAPI's JSON.
        if exc.status_code == 404 and wants_html(request):
            return refuse(request, "Page not found", NOT_FOUND_TEXT, 404)
        return await http_exception_handler(request, exc)

    @app.get("/meeting/{meeting_id}", response_class=HTMLResponse)
    async def meeting_page(
        request: Request, meeting_id: str, token: str | None = None
    ) -> HTMLResponse:
        if agent.public_key is None:
            return refuse(request, "Not ready", "This room server is still starting.", 503)
        try:
            claims = verify_join_token(agent.public_key, token, meeting_id=meeting_id)
        except InvalidToken as exc:
            return refuse(request, "Cannot enter", sentence(str(exc)), 403)
        try:
            meeting = host.get(meeting_id)
        except MeetingNotHere:
            return refuse(request, "Not here", "This meeting is not hosted on this server.", 404)
        if claims.epoch != meeting.epoch:
            return refuse(request, "Cannot enter", STALE_TOKEN, 403)
        if meeting.name_taken(claims.user, claims.person):
            return refuse(request, "Name taken", name_taken_text(claims.user), 409)
        not_admitted = meeting.admits(claims.person or claims.user, claims.role)
        if not_admitted:
            return refuse(request, "Cannot enter", not_admitted, 403)
        # The role now (a grant raises the token's): the page shows its controls; a change
        # later comes in the moderation tool's state and the page follows it.
        actor = meeting.actor(claims.user, claims.person or claims.user, claims.role)
        return templates.TemplateResponse(
            request,
            "meeting.html",
            {
                "meeting": meeting,
                "user": claims.user,
                "role": actor.standing,
                "token": token,
                "ems_url": ems_url,
                "config": host.config,
                "page_config": _page_config(host, meeting),
                "reactions": REACTION_LABELS,
                "board_tools": BOARD_TOOLS,
            },
        )

    @app.websocket("/meeting/{meeting_id}/ws")
    async def meeting_socket(
        websocket: WebSocket, meeting_id: str, token: str | None = None, roster: str = ""
    ) -> None:
        await websocket.accept()
        try:
            if agent.public_key is None:
                raise InvalidToken("this room server is still starting")
            claims = verify_join_token(agent.public_key, token, meeting_id=meeting_id)
        except InvalidToken as exc:
            await websocket.send_text(Error(message=str(exc)).model_dump_json())
            await websocket.close(code=CLOSE_BAD_TOKEN)
            return
        # `roster=changes`: the page takes `joined` / `left`; without it, the deprecated
        # whole `roster` (docs/protocol.md).
        conn = Connection(
            channel=websocket,
            user=claims.user,
            role=claims.role,
            person=claims.person,
            roster_changes=roster == "changes",
        )
        try:
            if host.get(meeting_id).epoch != claims.epoch:
                await websocket.send_text(Error(message=STALE_TOKEN).model_dump_json())
                await websocket.close(code=CLOSE_BAD_TOKEN)
                return
            host.join(meeting_id, conn)
        except NameTaken as exc:
            await websocket.send_text(Error(message=str(exc)).model_dump_json())
            await websocket.close(code=CLOSE_NAME_TAKEN)
            return
        except NotAdmitted as exc:
            await websocket.send_text(Error(message=str(exc)).model_dump_json())
            await websocket.close(code=CLOSE_NOT_ADMITTED)
            return
        except MeetingNotHere:
            await websocket.send_text(Error(message="meeting not hosted here").model_dump_json())
            await websocket.close(code=CLOSE_NOT_HERE)
            return
        # Lines wait for the EMS's journal: they go through a queue of their own, in order,
        # so the reader still answers pings (the page's keep-alive) meanwhile. Made at the
        # page's first line: most pages of a large meeting only read.
        lines: asyncio.Queue[SendChat | SendTool | None] = asyncio.Queue()
        chatting: asyncio.Task[None] | None = None
        media_tasks: set[asyncio.Task[None]] = set()
        try:
            while not conn.closing:  # closing: the meeting ended, or this page fell behind
                text = await websocket.receive_text()
                if text == PING:  # every page, every second: answered without parsing
                    conn.send_text(PONG)
                    continue
                try:
                    message = parse_client(text)
                except ValidationError as exc:
                    conn.send(Error(message=invalid_text(exc), id=message_id(text)))
                    continue
                if isinstance(message, Ping):
                    conn.send_text(PONG)
                elif isinstance(message, SendChat | SendTool):
                    if chatting is None:
                        chatting = asyncio.create_task(
                            _chat_in_order(host, meeting_id, conn, lines)
                        )
                    lines.put_nowait(message)
                elif isinstance(message, Draw | Pointer):
                    host.tools.draw(meeting_id, conn, message)
                elif isinstance(message, MediaRequest):
                    # Negotiations wait on Janus: not in this loop, which answers pings.
                    # The hub keeps each page's requests in order.
                    task = asyncio.create_task(
                        host.media.handle(host.get(meeting_id), conn, message)
                    )
                    media_tasks.add(task)
                    task.add_done_callback(media_tasks.discard)
                elif isinstance(message, React):
                    host.tools.react(meeting_id, conn, message.emoji)
                elif isinstance(message, EndMeeting):
                    if not host.get(meeting_id).actor_of(conn).moderates:
                        conn.send(Error(message="only a moderator can end the meeting"))
                        continue
                    host.close(meeting_id, f"ended by {conn.user}", ended_by=conn.user)
        except (WebSocketDisconnect, RuntimeError, MeetingNotHere):
            pass
        finally:
            host.leave(meeting_id, conn)
            await host.media.leave(host.meetings.get(meeting_id), conn)
            if chatting is not None:
                lines.put_nowait(None)
                await chatting
            # What is queued (`ended`, the close) goes out before the handler returns,
            # which closes the socket; a page that reads nothing is not waited for long.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.drained(), DRAIN_TIMEOUT)

    async def community_socket(websocket: WebSocket) -> None:
        """Presence and instant messages (room/community; docs/protocol.md).

        A plain Starlette route reading its query itself: FastAPI's solving of the three
        parameters was a fifth of a room server's time when the clients of a killed
        server all came at once (bench/community.py)."""
        query = websocket.query_params
        hub = agent.community if agent.community is not None and agent.community.ready else None
        observe = query.get("observe", "").lower() in ("1", "true", "yes", "on")
        token = query.get("token")
        await serve_community(
            websocket, hub, agent.public_key, token, query.get("device", ""), observe
        )

    app.router.routes.append(WebSocketRoute("/community/ws", community_socket))

    @app.websocket("/test/ws")
    async def test_socket(websocket: WebSocket) -> None:
        """For the Meeting Center's Test Meeting page: does a WebSocket reach this server?

        Echoes up to TEST_ECHOES short messages, then closes: it hosts nothing and needs no
        token, so it gives nothing away and costs little.
        """
        await websocket.accept()
        try:
            for _ in range(TEST_ECHOES):
                text = await websocket.receive_text()
                await websocket.send_text(text[:64])
            await websocket.close()
        except WebSocketDisconnect:
            pass

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> PlainTextResponse:
        if not agent.registered.is_set():
            return PlainTextResponse("not registered with the EMS", status_code=503)
        return PlainTextResponse("ready")

    # This app's own metrics registry: several room apps may run in one process (tests).
    app_metrics = metrics.room_registry(agent)

    @app.get("/metrics")
    async def metrics_page() -> Response:
        """Prometheus text format; `async def`: read on the event loop, between two awaits."""
        return Response(exposition(app_metrics), media_type=CONTENT_TYPE_LATEST)

    return app


def _page_config(host: MeetingHost, meeting: HostedMeeting) -> dict[str, object]:
    """What meeting.js reads from the page: the cluster configuration as this page needs it.

    Read when the page is served, so a configuration applied since shows in pages opened
    from then on. The TURN credentials are in it: a browser needs them to use the relay.
    """
    config = host.config
    return {
        "config_version": host.config_version,
        "max_chat_length": config.max_chat_length,
        "tools": meeting.tools,
        "recording": meeting.recording,
        "presence_enabled": config.presence_enabled,
        "instant_messages_enabled": config.instant_messages_enabled,
        "ice_servers": ice_servers(config.model_dump(mode="json"), time.time()),
        "max_video_kbps": config.max_video_kbps,
        "max_audio_kbps": config.max_audio_kbps,
    }


# Lines of one page on their way to the journal at once (see _chat_in_order).
PIPELINE = 16


async def _chat_in_order(
    host: MeetingHost,
    meeting_id: str,
    conn: Connection,
    lines: asyncio.Queue[SendChat | SendTool | None],
) -> None:
    """Journal, show and acknowledge one connection's lines (and tool events) in the order
    they came.

    Up to PIPELINE lines are on their way to the journal at once: each starts in order
    (so its journal_append goes out in order) and the EMS acknowledges in that order, so
    lines are shown in order too, while one round trip to the EMS carries many of them.
    """
    slots = asyncio.Semaphore(PIPELINE)
    running: set[asyncio.Task[None]] = set()

    async def one(line: SendChat | SendTool) -> None:
        try:
            if isinstance(line, SendTool):
                await host.tools.tool_event(meeting_id, conn, line.id, line.event)
            else:
                await host.chat(meeting_id, conn, line.id, line.text)
        except MeetingNotHere:
            pass  # closed or moved: the page rejoins and resends what was not acknowledged
        finally:
            slots.release()

    while (line := await lines.get()) is not None:
        await slots.acquire()
        task = asyncio.create_task(one(line))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
