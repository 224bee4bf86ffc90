"""/admin: the administrator's one place, with a link to every administration page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from moot.ems.web.admin_base import require_admin_page
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_admin_page)])


@router.get("/admin", response_class=HTMLResponse)
async def admin_home(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "admin/index.html", {"admin_section": "home"})
