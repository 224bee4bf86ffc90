"""/admin/monitor: the cluster live, for all servers or one, by server-sent events.

The page (static/monitor.js) opens an `EventSource` on /admin/monitor/events, which sends a
JSON snapshot every heartbeat: per server its status, logins, meetings with their
participants and tools, CPU and memory, from the cluster manager's registry (the room
servers' Status reports) and the store (meeting names, capacity warnings); and the alerts,
worked out here from those figures (`alerts_of`, pure).

A stream ends when its reader goes (Starlette cancels it on disconnect) and when the EMS
stops: uvicorn waits for open answers to finish before it shuts the app down, so the
streams watch for SIGTERM/SIGINT (moot.infra.streams, shared with the messages to all
users) and end at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError

from moot.ems.container import Ems
from moot.ems.deps import EmsDep, require_admin
from moot.ems.monitor import RETRY_MS, Monitor
from moot.ems.web.admin_base import require_admin_page
from moot.ems.web.pages import message
from moot.ems.web.templating import templates
from moot.infra.streams import event, exit_signals

log = logging.getLogger("moot.ems.monitor")


def script_json(data: Mapping[str, Any]) -> str:
    """JSON to put inside a <script> element: no '<', '>' or '&' that could end it."""
    text = json.dumps(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- the live side ------------------------------------------------------------------------


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ems: Ems = app.state.ems
    monitor = ems.monitor
    unwatch = exit_signals.register(monitor.stopping.set)
    try:
        yield
    finally:
        monitor.stopping.set()
        unwatch()


router = APIRouter(include_in_schema=False, lifespan=_lifespan)


ServerQuery = Annotated[
    str | None, Query(max_length=64, description="One server's name; all servers without it.")
]


@router.get(
    "/admin/monitor",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin_page)],
)
async def monitor_page(request: Request, ems: EmsDep, server: ServerQuery = None) -> Response:
    only = server or None
    if only is not None and ems.cluster.registry.get(only) is None:
        return message(
            request, "No such room server", f"No room server is called \u201c{only}\u201d", 404
        )
    snapshot = await ems.monitor.snapshot(only)
    return templates.TemplateResponse(
        request,
        "admin/monitor.html",
        {
            "admin_section": "monitor",
            "only": only,
            "server_names": [s.name for s in ems.cluster.registry.all()],
            "snapshot_json": script_json(snapshot),
        },
    )


@router.get(
    "/admin/monitor/events",
    dependencies=[Depends(require_admin)],
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def monitor_events(request: Request, ems: EmsDep, server: ServerQuery = None) -> Response:
    """Server-sent events: a `snapshot` every heartbeat; `closing` when the EMS stops."""
    only = server or None
    if only is not None and ems.cluster.registry.get(only) is None:
        return JSONResponse({"detail": f"room server {only} not found"}, status_code=404)
    return StreamingResponse(
        _stream(ems.monitor, only),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(monitor: Monitor, only: str | None) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    sequence = 0
    while not monitor.stopping.is_set():
        sequence += 1
        try:
            snapshot = await monitor.snapshot(only)
        except (SQLAlchemyError, OSError) as exc:  # the store is away: say so, and go on
            log.warning("monitoring: cannot read the store: %s", exc)
            yield event("problem", {"text": "the figures cannot be read from the store now"})
        else:
            yield event("snapshot", snapshot, sequence)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(monitor.stopping.wait(), monitor.interval)
    yield event("closing", {"reason": "the Meeting Center is stopping"})
