"""The EMS application: Meeting Center pages, REST API v1, control endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from moot import __version__, metrics
from moot.body_limit import BodyLimit
from moot.bus.direct import CONTROL_PATH, ServerSideLink
from moot.config import EmsSettings
from moot.ems.admission import Admission
from moot.ems.api import auth as auth_api
from moot.ems.api import broadcasts as broadcasts_api
from moot.ems.api import calendar as calendar_api
from moot.ems.api import capacity as capacity_api
from moot.ems.api import config as config_api
from moot.ems.api import files as files_api
from moot.ems.api import meetings as meetings_api
from moot.ems.api import polls as polls_api
from moot.ems.api import reports as reports_api
from moot.ems.api import servers as servers_api
from moot.ems.auth.service import AuthService, NotPermitted
from moot.ems.broadcasts import BroadcastService
from moot.ems.calendar_feeds import CalendarFeeds
from moot.ems.cluster.detector import Timing
from moot.ems.cluster.manager import ClusterManager
from moot.ems.cluster.samples import Sampler
from moot.ems.configuration import ConfigService
from moot.ems.deps import Ems
from moot.ems.errors import InvalidChange, InvalidQuery
from moot.ems.files import FileLimits, FileNotFound, FileRefused, FileService
from moot.ems.meetings import (
    CannotAttend,
    MeetingNotFound,
    MeetingService,
    NotAllowed,
    NotRecorded,
    Unavailable,
)
from moot.ems.polls import PollResults
from moot.ems.request_caps import request_caps
from moot.ems.servers import ServerConflict, ServerNotFound, ServerService
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.meetings import BadCursor
from moot.ems.store.migrate import upgrade_async
from moot.ems.store.reports import Reports
from moot.ems.throttle import Throttle
from moot.ems.web import (
    admin_broadcast,
    admin_config,
    admin_home,
    admin_monitor,
    admin_reports,
    admin_servers,
    pages,
)
from moot.ems.web import calendar as calendar_page
from moot.ems.web.security import CsrfRefused, WebSecurity, csrf_key
from moot.negotiation import wants_html
from moot.tokens import load_or_create_private_key, private_key_pem, public_key_pem

log = logging.getLogger("moot.ems")

NOT_FOUND_TEXT = "There is no page at this address. It may have moved, or the link is mistyped."


def _field_error(location: list[str], message: str, status_code: int = 422) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": location, "msg": message, "type": "value_error"}]},
        status_code=status_code,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MeetingNotFound)
    async def _meeting_missing(request: Request, exc: MeetingNotFound) -> JSONResponse:
        return JSONResponse({"detail": f"meeting {exc} not found"}, status_code=404)

    @app.exception_handler(ServerNotFound)
    async def _server_missing(request: Request, exc: ServerNotFound) -> JSONResponse:
        return JSONResponse({"detail": f"room server {exc} not found"}, status_code=404)

    @app.exception_handler(InvalidChange)
    async def _invalid(request: Request, exc: InvalidChange) -> JSONResponse:
        return _field_error(["body", exc.field], str(exc))

    @app.exception_handler(InvalidQuery)
    async def _query(request: Request, exc: InvalidQuery) -> JSONResponse:
        return _field_error(["query", exc.field], str(exc))

    @app.exception_handler(BadCursor)
    async def _cursor(request: Request, exc: BadCursor) -> JSONResponse:
        return _field_error(["query", "cursor"], str(exc))

    @app.exception_handler(FileRefused)
    async def _file_refused(request: Request, exc: FileRefused) -> JSONResponse:
        return _field_error(["body", "file"], str(exc), exc.status_code)

    @app.exception_handler(FileNotFound)
    async def _file_missing(request: Request, exc: FileNotFound) -> JSONResponse:
        return JSONResponse({"detail": f"file {exc} not found"}, status_code=404)

    @app.exception_handler(ServerConflict)
    async def _conflict(request: Request, exc: ServerConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(CannotAttend)
    async def _cannot_attend(request: Request, exc: CannotAttend) -> JSONResponse:
        status_code = 403 if isinstance(exc, NotAllowed) else 409
        return JSONResponse({"detail": str(exc)}, status_code=status_code)

    @app.exception_handler(NotRecorded)
    async def _not_recorded(request: Request, exc: NotRecorded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return pages.message(request, "Not sent", str(exc), 403)

    @app.exception_handler(NotPermitted)
    async def _not_permitted(request: Request, exc: NotPermitted) -> Response:
        status_code = 403 if exc.signed_in else 401
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=status_code)
        return pages.not_permitted(request, str(exc), signed_in=exc.signed_in)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A browser that opens an unknown address gets a page with a way back; API paths
        # and programs keep FastAPI's JSON.
        if exc.status_code == 404 and wants_html(request):
            return pages.message(request, "Page not found", NOT_FOUND_TEXT, 404)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default, minus `input` and `ctx`, which may echo secrets or be unserialisable.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def create_app(settings: EmsSettings) -> FastAPI:
    """Build the EMS. Start-up (migrations, keys, registry) runs in the lifespan."""
    # This app's own metrics registry: several apps may run in one process (tests).
    live = metrics.EmsCollector()
    app_metrics = metrics.ems_registry(live)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database_url = settings.resolved_database_url()
        await upgrade_async(database_url)
        engine = create_engine(database_url)
        sessions = session_factory(engine)
        key = load_or_create_private_key(settings.resolved_signing_key_file())
        app.state.csrf_key = csrf_key(private_key_pem(key))  # forms' tokens (web/security.py)
        cluster = ClusterManager(
            sessions=sessions,
            cluster_secret=settings.cluster_secret,
            public_key_pem=public_key_pem(key),
            heartbeat_interval=settings.heartbeat_interval,
            auto_register=settings.auto_register_servers,
            command_timeout=settings.open_timeout,
            timing=Timing(
                reconnect_grace=settings.reconnect_grace,
                failure_after=settings.failure_after * settings.heartbeat_interval,
            ),
        )
        await cluster.load()
        # Before any room server registers: it gets the stored configuration at once.
        app.state.config = ConfigService(sessions=sessions, cluster=cluster)
        await app.state.config.load()
        config_refresh = asyncio.create_task(app.state.config.run())
        # Messages to all users: before any room server registers, so it gets the current ones.
        app.state.broadcasts = BroadcastService(sessions=sessions, cluster=cluster)
        await app.state.broadcasts.start()
        app.state.broadcasts.end_streams_on_exit_signals()  # before uvicorn waits on them
        live.attach(cluster.registry, sessions)
        background = asyncio.create_task(cluster.run())
        meetings = MeetingService(
            sessions=sessions,
            cluster=cluster,
            signing_key=key,
            join_token_ttl=settings.join_token_ttl,
            public_url=settings.resolved_public_url(),
            early_join=timedelta(minutes=settings.early_join_minutes),
            throttle=Throttle(sessions, timedelta(seconds=settings.login_throttle_seconds)),
            password_failures_per_address=settings.meeting_password_failures_per_address,
        )
        # Files of meetings: set before any meeting opens, which lists them (cluster.files_of).
        app.state.files = FileService(
            sessions=sessions,
            cluster=cluster,
            signing_key=key,
            public_url=settings.resolved_public_url(),
            limits=FileLimits.of(settings),
        )
        clock = asyncio.create_task(meetings.run_clock(settings.clock_interval))
        # Reports, and the server samples behind the report of each server's peaks.
        app.state.reports = Reports(sessions)
        app.state.polls = PollResults(sessions)
        sampler = Sampler(
            sessions,
            cluster.registry,
            interval=settings.sample_interval,
            retention_days=settings.sample_retention_days,
            observe_every=settings.heartbeat_interval,
        )
        sampling = asyncio.create_task(sampler.run())
        auth = AuthService(sessions, settings)
        await auth.load()
        app.state.ems = Ems(
            settings=settings,
            cluster=cluster,
            meetings=meetings,
            servers=ServerService(sessions=sessions, cluster=cluster),
            auth=auth,
            admission=Admission(meetings, auth),
            feeds=CalendarFeeds(sessions, meetings, auth),
        )
        # Start-up objects (modules, ORM mappers, schemas) never die: move them out of the
        # collector's sight, so full collections stay short on the hot attend path.
        gc.collect()
        gc.freeze()
        app.state.ready = True
        log.info("Meeting Center ready at %s", settings.resolved_public_url())
        try:
            yield
        finally:
            app.state.ready = False
            for task in (clock, background, config_refresh, sampling):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            live.detach()
            await app.state.broadcasts.close()
            await app.state.config.close()
            await cluster.close()
            await engine.dispose()

    app = FastAPI(
        title="Moot Meeting Center",
        version=__version__,
        description="REST API v1 of the Moot EMS: meetings, room servers, the cluster.",
        lifespan=lifespan,
    )
    app.state.ready = False
    _install_error_handlers(app)
    https = settings.resolved_public_url().startswith("https://")
    app.add_middleware(WebSecurity, https=https)
    # Every body capped as it streams: uploads at every file a meeting may have, others small.
    app.add_middleware(
        BodyLimit,
        cap=request_caps(
            max_request_bytes=settings.max_request_bytes,
            upload_bytes=FileLimits.of(settings).request_bytes,
        ),
    )
    app.add_middleware(metrics.HttpMetrics)  # added last, so outermost: it times everything
    app.include_router(auth_api.router)
    app.include_router(meetings_api.router)
    app.include_router(polls_api.router)
    app.include_router(calendar_api.router)
    app.include_router(servers_api.router)
    app.include_router(capacity_api.router)
    app.include_router(files_api.router)
    app.include_router(config_api.router)
    app.include_router(admin_config.router)
    app.include_router(admin_home.router)
    app.include_router(admin_servers.router)
    app.include_router(admin_monitor.router)
    app.include_router(broadcasts_api.router)
    app.include_router(broadcasts_api.events_router)
    app.include_router(admin_broadcast.router)
    app.include_router(reports_api.router)
    app.include_router(admin_reports.router)
    app.include_router(calendar_page.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("moot.ems.web", "static")]), name="static")

    @app.websocket(CONTROL_PATH)
    async def control(websocket: WebSocket) -> None:
        await websocket.accept()
        ems: Ems = websocket.app.state.ems
        await ems.cluster.serve_link(ServerSideLink(websocket))

    @app.get("/healthz", tags=["health"], response_class=PlainTextResponse)
    async def healthz() -> str:
        """The process is alive."""
        return "ok"

    @app.get("/readyz", tags=["health"], response_class=PlainTextResponse)
    async def readyz(request: Request) -> PlainTextResponse:
        """The store is migrated and the cluster manager runs."""
        if not request.app.state.ready:
            return PlainTextResponse("starting", status_code=503)
        return PlainTextResponse("ready")

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics_page() -> Response:
        """Prometheus text format. `async def`, so it runs on the event loop: the
        collectors read the live registry between two awaits, never while it changes."""
        await live.refresh()
        return Response(metrics.exposition(app_metrics), media_type=metrics.CONTENT_TYPE_LATEST)

    return app
