"""The EMS application: Meeting Center pages, REST API v1, control endpoint."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from moot import __version__
from moot.bus import Link, listener_for
from moot.ems import metrics
from moot.ems.api import auth as auth_api
from moot.ems.api import broadcasts as broadcasts_api
from moot.ems.api import calendar as calendar_api
from moot.ems.api import capacity as capacity_api
from moot.ems.api import community as community_api
from moot.ems.api import configuration as config_api
from moot.ems.api import files as files_api
from moot.ems.api import meetings as meetings_api
from moot.ems.api import polls as polls_api
from moot.ems.api import reports as reports_api
from moot.ems.api import servers as servers_api
from moot.ems.container import Ems, running
from moot.ems.files import FileLimits
from moot.ems.request_caps import request_caps
from moot.ems.web import (
    admin_broadcast,
    admin_config,
    admin_home,
    admin_monitor,
    admin_reports,
    admin_servers,
    attend,
    attend_route,
    feeds,
    meeting_edit,
    pages,
    signin,
)
from moot.ems.web import calendar as calendar_page
from moot.ems.web import community as community_page
from moot.ems.web import errors as web_errors
from moot.ems.web.security import WebSecurity
from moot.infra.body_limit import BodyLimit
from moot.infra.metrics import CONTENT_TYPE_LATEST, exposition
from moot.infra.settings import EmsSettings

log = logging.getLogger("moot.ems")


def create_app(settings: EmsSettings) -> FastAPI:
    """Build the EMS. Start-up (migrations, keys, registry) runs in the lifespan."""
    # This app's own metrics registry: several apps may run in one process (tests).
    live = metrics.EmsCollector()
    listener = listener_for(settings.bus_url)
    app_metrics = metrics.ems_registry(live)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings) as ems:
            app.state.ems = ems
            await listener.start(serve)
            live.attach(ems.cluster.registry, ems.sessions)
            # Start-up objects (modules, ORM mappers, schemas) never die: move them out of
            # the collector's sight, so full collections stay short on the hot attend path.
            gc.collect()
            gc.freeze()
            app.state.ready = True
            log.info("Meeting Center ready at %s", settings.resolved_public_url())
            try:
                yield
            finally:
                app.state.ready = False
                await listener.stop()
                live.detach()

    # Attend's GET is answered ahead of FastAPI's generic layers: the hot path (attend_route).
    app = attend_route.MeetingCenterApp(
        title="Moot Meeting Center",
        version=__version__,
        description="REST API v1 of the Moot EMS: meetings, room servers, the cluster.",
        lifespan=lifespan,
    )
    app.state.ready = False
    web_errors.install(app)
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
    app.include_router(community_api.router)
    app.include_router(community_page.router)
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
    app.include_router(meeting_edit.router)
    app.include_router(attend.router)
    app.include_router(feeds.router)
    app.include_router(signin.router)
    # moot.protocol's static: what the meeting page and the recording page share (the board).
    shared: list[str | tuple[str, str]] = [("moot.ems.web", "static"), ("moot.protocol", "static")]
    app.mount("/static", StaticFiles(packages=shared), name="static")

    # The control channel's EMS end, by bus_url: the room servers' links go to the cluster
    # manager.
    async def serve(link: Link) -> None:
        ems: Ems = app.state.ems
        await ems.cluster.serve_link(link)

    app.router.routes.extend(listener.routes(serve))

    @app.get("/healthz", tags=["health"], response_class=PlainTextResponse)
    async def healthz() -> str:
        """The process is alive."""
        return "ok"

    @app.get("/readyz", tags=["health"], response_class=PlainTextResponse)
    async def readyz(request: Request) -> PlainTextResponse:
        """Whether this node can serve: started, its store answers, it hears the other
        nodes' changes, its part in the cluster played; one fact a line (ems/readiness.py)."""
        if not request.app.state.ready:
            return PlainTextResponse("starting", status_code=503)
        ready, facts = await request.app.state.ems.readiness.answer()
        return PlainTextResponse(facts, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics_page() -> Response:
        """Prometheus text format. `async def`, so it runs on the event loop: the
        collectors read the live registry between two awaits, never while it changes."""
        await live.refresh()
        return Response(exposition(app_metrics), media_type=CONTENT_TYPE_LATEST)

    return app
