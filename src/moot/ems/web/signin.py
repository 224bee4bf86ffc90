"""Sign in and out of the Meeting Center."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from moot.core.text import sentence
from moot.ems.auth.service import SignInFailed
from moot.ems.deps import (
    SESSION_COOKIE,
    AuthDep,
    IdentityDep,
    client_address,
)
from moot.ems.web.pages import (
    MAX_NAME,
)
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False)


# -- sign in and out -----------------------------------------------------------


def _safe_next(target: str) -> str:
    """Only a path of this site: never a redirect elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(
        request, "signin.html", {"next": _safe_next(next), "username": "", "error": None}
    )


@router.post(
    "/signin",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def signin(
    request: Request,
    auth: AuthDep,
    username: Annotated[str, Form(max_length=MAX_NAME)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    try:
        token, claims = await auth.sign_in(username, password, client_address(request))
    except SignInFailed as exc:
        return templates.TemplateResponse(
            request,
            "signin.html",
            {"next": _safe_next(next), "username": username, "error": sentence(str(exc))},
            status_code=401,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, claims.expires_at - int(datetime.now(UTC).timestamp())),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout", response_model=None, dependencies=[Depends(check_csrf)])
async def signout(request: Request, auth: AuthDep, identity: IdentityDep) -> Response:
    if identity.claims is not None and identity.claims.jti:
        await auth.sign_out(identity.claims)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
