"""/api/v1/config: the cluster configuration, its per-server overrides and its history.

Administrators only. TURN credentials are never returned: they read as
`cluster_config.MASK`, and a MASK sent back keeps the stored credential.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from moot.core.configuration import DEFAULTS, KEYS, ConfigError, masked
from moot.ems.configuration import (
    ConfigConflict,
    ConfigService,
    HistoryEntry,
    Scope,
    ServerView,
    UnknownServer,
)
from moot.ems.deps import AdminDep, AuthDep, ConfigDep, require_admin
from moot.ems.store.configuration import CLUSTER

router = APIRouter(prefix="/api/v1/config", tags=["config"], dependencies=[Depends(require_admin)])


class KeyOut(BaseModel):
    name: str
    section: str
    label: str
    help: str
    applies: Literal["live", "restart"] = Field(
        description="live: room servers apply it at once; restart: at their next start."
    )
    scope: Literal["any", "server"] = Field(description="server: only per-server overrides.")
    default: Any


class ScopeOut(BaseModel):
    version: int = Field(description="The newest version of this scope; 0: never changed.")
    values: dict[str, Any]
    changed_by: str | None
    changed_at: datetime | None
    comment: str


class ServerConfigOut(BaseModel):
    name: str
    overrides: ScopeOut
    effective: dict[str, Any]
    overridden: list[str]
    version: int = Field(description="The version of its effective values.")
    applied_version: int | None = Field(description="The version it last said it applied.")
    state: Literal["applied", "pending", "offline"]


class ConfigOut(BaseModel):
    version: int = Field(description="The newest version of any scope.")
    keys: list[KeyOut]
    cluster: ScopeOut
    servers: list[ServerConfigOut]


class ConfigChange(BaseModel):
    based_on: int = Field(
        ge=0, description="The version of the scope this change was made from (409 if stale)."
    )
    values: dict[str, Any]
    comment: str = Field("", max_length=500)


class ChangeOut(BaseModel):
    key: str
    before: Any
    after: Any


class HistoryOut(BaseModel):
    version: int
    scope: str
    changed_by: str
    changed_at: datetime
    comment: str
    changes: list[ChangeOut]


def scope_out(scope: Scope) -> ScopeOut:
    return ScopeOut(
        version=scope.version,
        values=masked(scope.settings),
        changed_by=scope.changed_by,
        changed_at=scope.changed_at,
        comment=scope.comment,
    )


def server_out(view: ServerView) -> ServerConfigOut:
    return ServerConfigOut(
        name=view.name,
        overrides=scope_out(view.overrides),
        effective=masked(view.effective.values),
        overridden=sorted(view.effective.overridden),
        version=view.version,
        applied_version=view.applied_version,
        state=view.state,
    )


def history_out(entry: HistoryEntry) -> HistoryOut:
    return HistoryOut(
        version=entry.version,
        scope=entry.scope,
        changed_by=entry.changed_by,
        changed_at=entry.changed_at,
        comment=entry.comment,
        changes=[ChangeOut(key=c.key, before=c.before, after=c.after) for c in entry.changes],
    )


def keys_out() -> list[KeyOut]:
    return [
        KeyOut(
            name=k.name,
            section=k.section,
            label=k.label,
            help=k.help,
            applies=k.applies,
            scope=k.scope,
            default=masked(DEFAULTS)[k.name],
        )
        for k in KEYS.values()
    ]


async def overview(config: ConfigService) -> ConfigOut:
    return ConfigOut(
        version=config.version,
        keys=keys_out(),
        cluster=scope_out(config.scope(CLUSTER)),
        servers=[server_out(v) for v in await config.servers()],
    )


async def apply_change(
    config: ConfigService,
    scope: str,
    body: ConfigChange,
    *,
    replace: bool,
    admin: AdminDep,
    auth: AuthDep,
    server: bool = False,
) -> None:
    """Store and deliver a change; its errors as the API answers them."""
    if server and scope == CLUSTER:  # the scope's own name: such a server has no overrides
        raise HTTPException(
            422,
            [
                {
                    "loc": ["path", "name"],
                    "msg": "a room server named 'cluster' cannot have overrides",
                    "type": "value_error",
                }
            ],
        )
    try:
        await config.change(
            scope,
            body.values,
            based_on=body.based_on,
            replace=replace,
            by=admin,
            comment=body.comment,
        )
    except ConfigError as exc:
        raise HTTPException(
            422,
            [
                {"loc": ["body", "values", *key.split(".")], "msg": msg, "type": "value_error"}
                for key, msg in exc.errors.items()
            ],
        ) from exc
    except ConfigConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except UnknownServer as exc:
        raise HTTPException(404, f"room server {exc} not found") from exc


@router.get("", response_model=ConfigOut)
async def get_configuration(config: ConfigDep) -> ConfigOut:
    """The cluster's values, every server's overrides and effective values, and their state."""
    return await overview(config)


@router.put("/cluster", response_model=ConfigOut)
async def put_cluster(
    body: ConfigChange, config: ConfigDep, admin: AdminDep, auth: AuthDep
) -> ConfigOut:
    """Replace the cluster's values; keys left out take their defaults."""
    await apply_change(config, CLUSTER, body, replace=True, admin=admin, auth=auth)
    return await overview(config)


@router.patch("/cluster", response_model=ConfigOut)
async def patch_cluster(
    body: ConfigChange, config: ConfigDep, admin: AdminDep, auth: AuthDep
) -> ConfigOut:
    """Change the keys given; a key given as null takes its default again."""
    await apply_change(config, CLUSTER, body, replace=False, admin=admin, auth=auth)
    return await overview(config)


@router.put("/servers/{name}", response_model=ConfigOut)
async def put_server(
    name: str, body: ConfigChange, config: ConfigDep, admin: AdminDep, auth: AuthDep
) -> ConfigOut:
    """Replace one server's overrides: exactly the keys given override the cluster's."""
    await apply_change(config, name, body, replace=True, admin=admin, auth=auth, server=True)
    return await overview(config)


@router.patch("/servers/{name}", response_model=ConfigOut)
async def patch_server(
    name: str, body: ConfigChange, config: ConfigDep, admin: AdminDep, auth: AuthDep
) -> ConfigOut:
    """Override the keys given; a key given as null uses the cluster's value again."""
    await apply_change(config, name, body, replace=False, admin=admin, auth=auth, server=True)
    return await overview(config)


@router.delete("/servers/{name}", response_model=ConfigOut)
async def delete_server(
    name: str,
    config: ConfigDep,
    admin: AdminDep,
    auth: AuthDep,
    based_on: Annotated[int, Query(ge=0, description="The version of its overrides.")],
    comment: Annotated[str, Query(max_length=500)] = "",
) -> ConfigOut:
    """Drop every override of one server: it runs the cluster's values."""
    body = ConfigChange(based_on=based_on, values={}, comment=comment)
    await apply_change(config, name, body, replace=True, admin=admin, auth=auth, server=True)
    return await overview(config)


@router.get("/history", response_model=list[HistoryOut])
async def history(
    config: ConfigDep,
    scope: Annotated[str | None, Query(description="'cluster' or a server's name.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[HistoryOut]:
    """Who changed what, when, newest first; credentials show only that they changed."""
    return [history_out(e) for e in await config.history(scope, limit)]
