"""/api/v1/servers and /api/v1/cluster"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response, status

from moot.ems.deps import AdminDep, ServersDep, require_admin
from moot.ems.model.servers import (
    ClusterOut,
    DrainRequest,
    ServerCreate,
    ServerEventOut,
    ServerOut,
    ServerPatch,
)

# Administrators only: members of the admin group, or the CLI with the cluster secret.
router = APIRouter(prefix="/api/v1", tags=["servers"], dependencies=[Depends(require_admin)])


@router.get("/servers", response_model=list[ServerOut])
async def list_servers(servers: ServersDep) -> list[ServerOut]:
    return await servers.list_all()


@router.post("/servers", status_code=status.HTTP_201_CREATED, response_model=ServerOut)
async def add_server(body: ServerCreate, servers: ServersDep, admin: AdminDep) -> ServerOut:
    """Add a room server with its capacity; it joins when it connects."""
    added = await servers.add(body, by=admin)
    return added


@router.get("/servers/{name}", response_model=ServerOut)
async def get_server(name: str, servers: ServersDep) -> ServerOut:
    return await servers.get(name)


@router.patch("/servers/{name}", response_model=ServerOut)
async def patch_server(
    name: str, body: ServerPatch, servers: ServersDep, admin: AdminDep
) -> ServerOut:
    changed = await servers.update(name, body, by=admin)
    return changed


@router.get("/servers/{name}/events", response_model=list[ServerEventOut])
async def server_events(
    name: str, servers: ServersDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[ServerEventOut]:
    """The server's changes of state (online, suspect, failed, offline), newest first."""
    return await servers.events(name, limit)


@router.post("/servers/{name}/drain", response_model=ServerOut)
async def drain_server(
    name: str,
    servers: ServersDep,
    admin: AdminDep,
    body: Annotated[DrainRequest | None, Body()] = None,
) -> ServerOut:
    """No new meetings go to the server; its meetings run to their end, or to the deadline.

    At the deadline (default 4 h), or at once with `evacuate`, the meetings still running
    there move to other servers the way failover moves them: none ends. The body is
    optional. Again on a draining server, a new deadline replaces the old one.
    """
    request = body or DrainRequest()
    drained = await servers.drain(name, request, by=admin)
    return drained


@router.delete("/servers/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_server(
    name: str,
    servers: ServersDep,
    admin: AdminDep,
    force: Annotated[
        bool, Query(description="Move its meetings to other servers first, then remove it.")
    ] = False,
) -> Response:
    """Remove a server that hosts no meeting (drain it first, or force)."""
    await servers.remove(name, force=force, by=admin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/cluster", response_model=ClusterOut, tags=["cluster"])
async def cluster(servers: ServersDep) -> ClusterOut:
    """Every server with its status, load and meetings; every meeting with its host."""
    return await servers.cluster()
