"""/admin/servers: the room servers with their live state; add, change, drain, remove.

Every change goes through `ServerService`, as the API's does (moot.ems.api.servers), and is
audited the same way; the pages only turn form fields into the API's bodies and the
services' errors into messages beside the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from moot.ems.deps import ServersDep
from moot.ems.model.servers import (
    DEFAULT_DRAIN_MINUTES,
    MAX_DRAIN_MINUTES,
    DrainRequest,
    ServerCreate,
    ServerOut,
    ServerPatch,
)
from moot.ems.servers import ServerConflict, ServerNotFound
from moot.ems.web.admin_base import AdminPageDep, require_admin_page
from moot.ems.web.pages import message
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(
    prefix="/admin/servers", include_in_schema=False, dependencies=[Depends(require_admin_page)]
)

# What the redirect after a change says on the list (?done=...&server=...).
_DONE = {
    "added": "Room server {} added. It joins the cluster when it connects to the EMS.",
    "changed": "Room server {} changed.",
    "drained": "Room server {} is draining: no new meetings go there.",
    "undrained": "Room server {} drains no more: it takes new meetings again.",
    "removed": "Room server {} removed from the cluster.",
}


@dataclass(slots=True)
class ServerForm:
    """The add/change form as typed: strings, so a wrong entry comes back as it was."""

    name: str = ""
    url: str = ""
    max_active_meetings: str = "100"
    max_users_per_meeting: str = "500"
    instant_meetings: str = ""
    unlimited_instant: bool = True
    location: str = ""


def read_form(posted: Mapping[str, Any]) -> ServerForm:
    def text(key: str) -> str:
        return str(posted.get(key, "")).strip()

    return ServerForm(
        name=text("name"),
        url=text("url"),
        max_active_meetings=text("max_active_meetings"),
        max_users_per_meeting=text("max_users_per_meeting"),
        instant_meetings=text("instant_meetings"),
        unlimited_instant=bool(posted.get("unlimited_instant")),
        location=text("location"),
    )


def form_of(server: ServerOut) -> ServerForm:
    return ServerForm(
        name=server.name,
        url=server.url,
        max_active_meetings=str(server.max_active_meetings),
        max_users_per_meeting=str(server.max_users_per_meeting),
        instant_meetings="" if server.instant_meetings is None else str(server.instant_meetings),
        unlimited_instant=server.instant_meetings is None,
        location=server.location,
    )


def payload_of(form: ServerForm, errors: dict[str, str]) -> dict[str, Any]:
    """The API's body for the form; what cannot become one goes to `errors`."""
    payload: dict[str, Any] = {
        "url": form.url,
        "max_active_meetings": form.max_active_meetings,
        "max_users_per_meeting": form.max_users_per_meeting,
        "location": form.location,
    }
    if form.unlimited_instant:
        payload["instant_meetings"] = None
    elif form.instant_meetings:
        payload["instant_meetings"] = form.instant_meetings
    else:
        errors["instant_meetings"] = "give the number of instant meetings, or tick Unlimited"
    for key in ("max_active_meetings", "max_users_per_meeting"):
        if not payload[key]:
            errors[key] = "give a whole number"
    if not form.url:
        errors["url"] = "give the address browsers use, e.g. https://room1.example.com"
    return payload


def errors_of(exc: ValidationError) -> dict[str, str]:
    """The API's validation errors in the form's words, by field."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "form"
        kind, context = error["type"], error.get("ctx") or {}
        if kind == "int_parsing" or kind == "int_from_float":
            text = "give a whole number"
        elif kind == "greater_than_equal":
            text = f"must be at least {context.get('ge')}"
        elif kind == "less_than_equal":
            text = f"must be at most {context.get('le')}"
        elif kind == "string_too_long":
            text = f"at most {context.get('max_length')} characters"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
        errors.setdefault(where, text)
    return errors


def _server_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"admin_section": "servers", **context},
        status_code=status_code,
    )


async def _list_page(
    request: Request,
    servers: ServersDep,
    form: ServerForm,
    errors: dict[str, str],
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    return _server_page(
        request,
        "admin/servers.html",
        {"servers": await servers.list_all(), "form": form, "errors": errors, "done": done},
        status_code,
    )


def _missing(request: Request, name: str) -> HTMLResponse:
    return message(
        request, "No such room server", f"No room server is called \u201c{name}\u201d", 404
    )


@router.get("", response_class=HTMLResponse)
async def servers_page(
    request: Request, servers: ServersDep, done: str = "", server: str = ""
) -> HTMLResponse:
    said = _DONE[done].format(server) if done in _DONE and server else None
    return await _list_page(request, servers, ServerForm(), {}, done=said)


@router.post(
    "", response_class=HTMLResponse, response_model=None, dependencies=[Depends(check_csrf)]
)
async def add_server(request: Request, servers: ServersDep, admin: AdminPageDep) -> Response:
    """Add a room server; errors come back beside their fields and nothing is saved."""
    form = read_form(await request.form())
    errors: dict[str, str] = {}
    payload = payload_of(form, errors)
    if not form.name:
        errors["name"] = "give the room server a name"
    try:
        body = ServerCreate.model_validate({"name": form.name, **payload})
    except ValidationError as exc:
        errors = {**errors_of(exc), **errors}
    if errors:
        return await _list_page(request, servers, form, errors, 422)
    try:
        await servers.add(body, by=admin)
    except ServerConflict as exc:
        return await _list_page(request, servers, form, {"name": str(exc)}, 409)
    return RedirectResponse(f"/admin/servers?done=added&server={body.name}", status_code=303)


@router.get("/{name}/edit", response_class=HTMLResponse)
async def edit_page(request: Request, name: str, servers: ServersDep) -> HTMLResponse:
    try:
        server = await servers.get(name)
    except ServerNotFound:
        return _missing(request, name)
    return _server_page(
        request, "admin/server_edit.html", {"server": server, "form": form_of(server), "errors": {}}
    )


@router.post(
    "/{name}/edit",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def edit_server(
    request: Request, name: str, servers: ServersDep, admin: AdminPageDep
) -> Response:
    try:
        server = await servers.get(name)
    except ServerNotFound:
        return _missing(request, name)
    form = read_form(await request.form())
    form.name = server.name  # a server's name does not change: it is who it is
    errors: dict[str, str] = {}
    payload = payload_of(form, errors)
    try:
        patch = ServerPatch.model_validate(payload)
    except ValidationError as exc:
        errors = {**errors_of(exc), **errors}
    if errors:
        return _server_page(
            request,
            "admin/server_edit.html",
            {"server": server, "form": form, "errors": errors},
            422,
        )
    try:
        await servers.update(name, patch, by=admin)
    except ServerNotFound:
        return _missing(request, name)
    return RedirectResponse(f"/admin/servers?done=changed&server={name}", status_code=303)


def _drain_context(server: ServerOut, minutes: str, errors: dict[str, str]) -> dict[str, Any]:
    return {
        "server": server,
        "minutes": minutes,
        "errors": errors,
        "default_minutes": DEFAULT_DRAIN_MINUTES,
        "max_minutes": MAX_DRAIN_MINUTES,
    }


@router.get("/{name}/drain", response_class=HTMLResponse)
async def drain_page(request: Request, name: str, servers: ServersDep) -> HTMLResponse:
    try:
        server = await servers.get(name)
    except ServerNotFound:
        return _missing(request, name)
    return _server_page(request, "admin/server_drain.html", _drain_context(server, "", {}))


@router.post(
    "/{name}/drain",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def drain_server(
    request: Request,
    name: str,
    servers: ServersDep,
    admin: AdminPageDep,
    deadline_minutes: Annotated[str, Form()] = "",
    evacuate: Annotated[str, Form()] = "",
) -> Response:
    """Drain: no new meetings; its meetings move at the deadline, or now (evacuate)."""
    try:
        server = await servers.get(name)
    except ServerNotFound:
        return _missing(request, name)
    minutes = deadline_minutes.strip()
    body: dict[str, Any] = {"evacuate": bool(evacuate)}
    if minutes:
        body["deadline_minutes"] = minutes
    try:
        drain = DrainRequest.model_validate(body)
    except ValidationError as exc:
        found = errors_of(exc)
        errors = {"deadline_minutes": found.get("deadline_minutes") or found.get("form", "")}
        if bool(evacuate) and minutes:
            errors = {
                "deadline_minutes": "Move now takes the meetings off at once: "
                "leave the deadline empty, or untick Move now"
            }
        return _server_page(
            request, "admin/server_drain.html", _drain_context(server, minutes, errors), 422
        )
    await servers.drain(name, drain, by=admin)
    return RedirectResponse(f"/admin/servers?done=drained&server={name}", status_code=303)


@router.post(
    "/{name}/undrain",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def end_drain(
    request: Request, name: str, servers: ServersDep, admin: AdminPageDep
) -> Response:
    """End a drain: the server takes new meetings again."""
    patch = ServerPatch(draining=False)
    try:
        await servers.update(name, patch, by=admin)
    except ServerNotFound:
        return _missing(request, name)
    return RedirectResponse(f"/admin/servers?done=undrained&server={name}", status_code=303)


@router.get("/{name}/remove", response_class=HTMLResponse)
async def remove_page(request: Request, name: str, servers: ServersDep) -> HTMLResponse:
    try:
        server = await servers.get(name)
    except ServerNotFound:
        return _missing(request, name)
    return _server_page(request, "admin/server_remove.html", {"server": server, "error": None})


@router.post(
    "/{name}/remove",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(check_csrf)],
)
async def remove_server(
    request: Request,
    name: str,
    servers: ServersDep,
    admin: AdminPageDep,
    force: Annotated[str, Form()] = "",
) -> Response:
    """Remove a server that hosts no meeting; with force, its meetings move first."""
    try:
        await servers.remove(name, force=bool(force), by=admin)
    except ServerNotFound:
        return _missing(request, name)
    except ServerConflict as exc:
        try:
            server = await servers.get(name)
        except ServerNotFound:
            return _missing(request, name)
        error = str(exc)
        if not force:  # the service's words name the CLI's options: these name the page's
            error = (
                f"{name} still hosts meetings, so it was not removed: drain it first and "
                "remove it when they have ended, or tick \u201cMove its meetings to other "
                "servers first\u201d"
            )
        return _server_page(
            request, "admin/server_remove.html", {"server": server, "error": error}, 409
        )
    return RedirectResponse(f"/admin/servers?done=removed&server={name}", status_code=303)
