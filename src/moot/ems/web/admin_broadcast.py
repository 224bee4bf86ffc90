"""/admin/broadcast: write a message to all users, see and withdraw the ones showing.

The page sends through `BroadcastService`, as the API does (moot.ems.api.broadcasts), and
audits the same way; a refusal comes back beside its field with the text kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from moot.core.text import sentence
from moot.ems.broadcasts import DEFAULT_SHOW, MAX_TEXT, BroadcastService
from moot.ems.deps import AuthDep, BroadcastsDep
from moot.ems.errors import InvalidChange
from moot.ems.web.admin_base import AdminPageDep, require_admin_page
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_admin_page)])

# How long a message may show, as the form offers it: (minutes, label).
DURATIONS: tuple[tuple[int, str], ...] = (
    (15, "15 minutes"),
    (60, "1 hour"),
    (240, "4 hours"),
    (480, "8 hours"),
    (1440, "1 day"),
    (10080, "1 week"),
)
DEFAULT_MINUTES = int(DEFAULT_SHOW.total_seconds() // 60)


async def _page(
    request: Request,
    broadcasts: BroadcastService,
    *,
    text: str = "",
    minutes: int = DEFAULT_MINUTES,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "admin_section": "broadcast",
        "text": text,
        "minutes": minutes,
        "durations": DURATIONS,
        "max_text": MAX_TEXT,
        "errors": errors or {},
        "current": await broadcasts.listed(),
        "recent": await broadcasts.recent(),
        "listeners": broadcasts.listeners,
        "sent": request.query_params.get("sent"),
        "withdrawn": request.query_params.get("withdrawn"),
    }
    return templates.TemplateResponse(
        request, "admin/broadcast.html", context, status_code=status_code
    )


@router.get("/admin/broadcast", response_class=HTMLResponse)
async def broadcast_page(request: Request, broadcasts: BroadcastsDep) -> HTMLResponse:
    return await _page(request, broadcasts)


@router.post(
    "/admin/broadcast",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def send_from_form(
    request: Request,
    broadcasts: BroadcastsDep,
    admin: AdminPageDep,
    auth: AuthDep,
    text: Annotated[str, Form()] = "",  # too long: said beside the field, not a 422 of JSON
    show_for: Annotated[str, Form(max_length=10)] = str(DEFAULT_MINUTES),
) -> Response:
    minutes = int(show_for) if show_for.isdigit() and int(show_for) in dict(DURATIONS) else None
    if minutes is None:
        return await _page(
            request,
            broadcasts,
            text=text,
            errors={"show_for": "Choose how long the message shows."},
            status_code=422,
        )
    try:
        sent = await broadcasts.send(text, by=admin, show_for=timedelta(minutes=minutes))
    except InvalidChange as exc:
        return await _page(
            request,
            broadcasts,
            text=text,
            minutes=minutes,
            errors={exc.field: sentence(str(exc))},
            status_code=422,
        )
    return RedirectResponse(f"/admin/broadcast?sent={sent.id}", status_code=303)


@router.post(
    "/admin/broadcast/{broadcast_id}/withdraw",
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def withdraw_from_form(
    request: Request,
    broadcast_id: int,
    broadcasts: BroadcastsDep,
    admin: AdminPageDep,
    auth: AuthDep,
) -> Response:
    if not 1 <= broadcast_id < 2**31 or await broadcasts.withdraw(broadcast_id, by=admin) is None:
        return await _page(
            request,
            broadcasts,
            errors={"withdraw": f"There is no message {broadcast_id}."},
            status_code=404,
        )
    return RedirectResponse(f"/admin/broadcast?withdrawn={broadcast_id}", status_code=303)
