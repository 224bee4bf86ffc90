"""The configuration pages: /admin/config (the cluster's or one server's) and its history."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from annotated_types import MaxLen
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from moot.core.configuration import KEYS, MASK, SECTIONS, TOOLS, ClusterConfig, ConfigError, masked
from moot.ems.configuration import ConfigConflict, ConfigService, UnknownServer
from moot.ems.deps import get_config
from moot.ems.errors import InvalidChange
from moot.ems.store.configuration import CLUSTER
from moot.ems.web.admin_base import AdminPageDep, require_admin_page
from moot.ems.web.meeting_form import TOOL_LABELS
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False)

# How the form sends each key (the lists have controls of their own, below).
BOOLEANS = {"presence_enabled", "instant_messages_enabled", "recording_allowed"}
INTEGERS = {
    "max_chat_length",
    "max_chat_lines_per_minute",
    "max_video_kbps",
    "max_audio_kbps",
    "instant_message_retention_days",
}
TEXTS = {"advertised_url", "http_proxy", "no_proxy", "welcome_message"}
LISTS = {"default_tools", "stun_servers", "turn_servers"}
# Keys a form may leave out (added after forms were written, e.g. in scripts).
OPTIONAL = {"instant_message_retention_days"}
assert set(KEYS) == BOOLEANS | INTEGERS | TEXTS | LISTS, "every key has its control"
# The most TURN servers a scope holds: the form has that many rows, and one to add.
MAX_TURN = next(
    m.max_length
    for m in ClusterConfig.model_fields["turn_servers"].metadata
    if isinstance(m, MaxLen)
)


def shown(key: str, value: Any) -> str:
    """A value as the pages write it; a TURN credential only as MASK."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "turn_servers":
        servers = masked({"turn_servers": value or []})["turn_servers"]
        return "; ".join(f"{t['url']} (user {t['username']})" for t in servers) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "not set"
    return str(value) if value != "" else "empty"


def read_form(form: FormData, scope: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The scope's values as the form sends them; errors of what cannot even be read.

    On a server's page, only keys whose "use the cluster value" box is unticked are
    returned: those are its overrides.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, key in KEYS.items():
        if scope == CLUSTER and key.scope == "server":
            continue
        if scope != CLUSTER and form.get(f"inherit.{name}") == "on":
            continue
        if name in BOOLEANS:
            values[name] = form.get(name) == "on"
        elif name in INTEGERS:
            if name in OPTIONAL and name not in form:
                continue  # a form made before the key existed: its default (or stored value)
            raw = str(form.get(name, "")).strip()
            try:
                values[name] = int(raw)
            except ValueError:
                errors[name] = "give a whole number"
                values[name] = raw
        elif name in TEXTS:
            values[name] = str(form.get(name, ""))
        elif name == "default_tools":
            values[name] = [str(t) for t in form.getlist("default_tools")]
        elif name == "stun_servers":
            values[name] = [s.strip() for s in str(form.get(name, "")).splitlines() if s.strip()]
        elif name == "turn_servers":
            count = str(form.get("turn_count", "0")).strip() or "0"
            if not count.isdigit() or int(count) > MAX_TURN:  # never more rows than it holds
                errors[name] = (
                    "the list of TURN servers could not be read: reload the page and try again"
                )
                values[name] = []
            else:
                values[name] = _turn_rows(form, int(count))
    return values, errors


def _turn_rows(form: FormData, count: int) -> list[dict[str, str]]:
    rows = []
    for index in range(count + 1):
        url = str(form.get(f"turn.{index}.url", "")).strip()
        if not url or form.get(f"turn.{index}.remove") == "on":
            continue
        credential = str(form.get(f"turn.{index}.credential", ""))
        existing = form.get(f"turn.{index}.stored") == "yes"
        rows.append(
            {
                "url": url,
                "username": str(form.get(f"turn.{index}.username", "")).strip(),
                "kind": "rest" if form.get(f"turn.{index}.kind") == "rest" else "long_term",
                # Left empty on a stored server: keep its credential (never shown).
                "credential": MASK if existing and not credential else credential,
            }
        )
    return rows


def _form_values(config: ConfigService, scope: str) -> tuple[dict[str, Any], set[str], int]:
    """What the form shows: (values, overridden keys, the version the change is based on)."""
    if scope == CLUSTER:
        current = config.scope(CLUSTER)
        return masked(current.settings), set(), current.version
    _, values = config.for_server(scope)
    return masked(values.values), set(values.overridden), config.scope(scope).version


async def _page(
    request: Request,
    config: ConfigService,
    scope: str,
    *,
    values: dict[str, Any] | None = None,
    overridden: set[str] | None = None,
    based_on: int | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    saved: int | None = None,
    comment: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    servers = await config.servers()
    stored_values, stored_overridden, stored_version = _form_values(config, scope)
    cluster_values = masked(config.scope(CLUSTER).settings)
    return templates.TemplateResponse(
        request,
        "admin/config.html",
        {
            "admin_section": "config",
            "scope": scope,
            "servers": servers,
            "values": stored_values if values is None else values,
            "overridden": stored_overridden if overridden is None else overridden,
            "based_on": stored_version if based_on is None else based_on,
            "cluster_values": cluster_values,
            "errors": errors or {},
            "problem": problem,
            "saved": saved,
            "comment": comment,
            "sections": SECTIONS,
            "keys": KEYS,
            "tools": [(t, label) for t, label in TOOL_LABELS if t in TOOLS],
            "shown": shown,
            "mask": MASK,
        },
        status_code=status_code,
    )


@router.get("/admin/config", response_class=HTMLResponse)
async def config_page(
    request: Request,
    admin: AdminPageDep,
    server: str = "",
    saved: int | None = None,
) -> HTMLResponse:
    config = get_config(request)
    scope = server or CLUSTER
    if scope != CLUSTER and scope not in {s.name for s in await config.servers()}:
        return await _page(
            request,
            config,
            CLUSTER,
            problem=f"There is no room server {server!r}.",
            status_code=404,
        )
    return await _page(request, config, scope, saved=saved)


# Who asks before the CSRF token: anonymous gets the sign-in (401) page, not a 403 of a
# token it never had; an administrator's post still needs the token before anything runs.
@router.post(
    "/admin/config",
    response_model=None,
    dependencies=[Depends(require_admin_page), Depends(check_csrf)],
)
async def save_config(request: Request, admin: AdminPageDep) -> Response:
    config = get_config(request)
    form = await request.form()
    scope = str(form.get("scope", CLUSTER)) or CLUSTER
    comment = str(form.get("comment", ""))[:500]
    try:
        based_on = int(str(form.get("based_on", "")))
    except ValueError:
        based_on = -1
    values, errors = read_form(form, scope)
    keep: dict[str, Any] = {
        "values": {**_form_values(config, scope)[0], **values},
        "overridden": set(values) if scope != CLUSTER else set(),
        "based_on": based_on,
        "comment": comment,
    }
    if errors:
        return await _page(request, config, scope, errors=errors, status_code=422, **keep)
    try:
        version = await config.change(
            scope,
            values,
            based_on=based_on,
            replace=True,
            by=admin,
            comment=comment,
        )
    except ConfigError as exc:
        return await _page(request, config, scope, errors=exc.errors, status_code=422, **keep)
    except InvalidChange as exc:  # the comment
        errors = {exc.field: str(exc)}
        return await _page(request, config, scope, errors=errors, status_code=422, **keep)
    except ConfigConflict as exc:
        return await _page(
            request, config, scope, problem=f"Not saved: {exc}.", status_code=409, **keep
        )
    except UnknownServer:
        return await _page(
            request, config, CLUSTER, problem=f"There is no room server {scope!r}.", status_code=404
        )
    where = "" if scope == CLUSTER else f"server={quote(scope)}&"
    return RedirectResponse(f"/admin/config?{where}saved={version}", status_code=303)


@router.get("/admin/config/history", response_class=HTMLResponse)
async def history_page(request: Request, admin: AdminPageDep, scope: str = "") -> HTMLResponse:
    config = get_config(request)
    entries = await config.history(scope or None, limit=500)
    return templates.TemplateResponse(
        request,
        "admin/config_history.html",
        {
            "admin_section": "config",
            "entries": entries,
            "scope": scope,
            "scopes": [CLUSTER, *[s.name for s in await config.servers()]],
            "keys": KEYS,
            "shown": shown,
        },
    )
