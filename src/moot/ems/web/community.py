"""The community client page (/community): presence and instant messages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from moot.ems.deps import IdentityDep
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/community", response_class=HTMLResponse)
async def community(request: Request, identity: IdentityDep) -> HTMLResponse:
    """The page; anonymous visitors are asked to sign in (no community services for them)."""
    signed_in = identity.claims is not None and identity.claims.source != "cluster-secret"
    return templates.TemplateResponse(
        request,
        "community.html",
        {"signed_in": signed_in},
        status_code=200 if signed_in else 401,
    )
