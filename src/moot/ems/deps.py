"""FastAPI dependencies: the services a route needs, taken from the app's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from moot.config import EmsSettings
from moot.ems.cluster.manager import ClusterManager
from moot.ems.meetings import MeetingService
from moot.ems.servers import ServerService


@dataclass(slots=True)
class Ems:
    """Everything one EMS process runs, built by the app's lifespan."""

    settings: EmsSettings
    cluster: ClusterManager
    meetings: MeetingService
    servers: ServerService


async def get_ems(request: Request) -> Ems:
    ems: Ems = request.app.state.ems
    return ems


async def get_meetings(request: Request) -> MeetingService:
    ems: Ems = request.app.state.ems
    return ems.meetings


async def get_servers(request: Request) -> ServerService:
    ems: Ems = request.app.state.ems
    return ems.servers


EmsDep = Annotated[Ems, Depends(get_ems)]
MeetingsDep = Annotated[MeetingService, Depends(get_meetings)]
ServersDep = Annotated[ServerService, Depends(get_servers)]
