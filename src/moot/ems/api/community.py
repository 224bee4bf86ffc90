"""/api/v1/community: where the community client connects, whom it may add, meet now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from moot.core.community import MAX_GROUP_MEMBERS, partition_of, person_id
from moot.ems.attending import Unavailable
from moot.ems.auth.identity import Identity
from moot.ems.community import NoCommunity, own_partition, ticket
from moot.ems.deps import AuthDep, EmsDep, IdentityDep, MeetingsDep
from moot.ems.errors import InvalidChange
from moot.ems.model.meetings import MeetingCreate

router = APIRouter(prefix="/api/v1/community", tags=["community"])


class ServerOut(BaseModel):
    name: str
    url: str = Field(description="The room server's community WebSocket.")


class TicketOut(BaseModel):
    me: str = Field(description="The person's id: partition/username.")
    name: str
    token: str = Field(description="The community token (EdDSA), for `?token=`.")
    servers: list[ServerOut] = Field(description="Where to connect, best first.")


class PersonOut(BaseModel):
    pid: str
    name: str


class MeetNow(BaseModel):
    members: list[str] = Field(min_length=1, max_length=MAX_GROUP_MEMBERS)
    title: str = Field("", max_length=200)


class MeetingOut(BaseModel):
    url: str


def _refused(exc: NoCommunity) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


def _signed_in(identity: Identity) -> None:
    if identity.claims is None or identity.claims.source == "cluster-secret":
        raise NoCommunity("sign in to use presence and instant messages", status=401)


@router.post("/connect", response_model=TicketOut, responses={401: {}, 503: {}})
async def connect(ems: EmsDep, identity: IdentityDep) -> TicketOut | JSONResponse:
    """A community token and the room servers to try, the fewest connections first."""
    try:
        found = ticket(identity, ems.cluster.registry, ems.signing_key)
    except NoCommunity as exc:
        return _refused(exc)
    return TicketOut(
        me=found.me,
        name=found.name,
        token=found.token,
        servers=[ServerOut(name=n, url=u) for n, u in found.servers],
    )


@router.get("/people", response_model=list[PersonOut], responses={401: {}})
async def people(
    auth: AuthDep, identity: IdentityDep, q: Annotated[str, Query(max_length=100)] = ""
) -> list[PersonOut] | JSONResponse:
    """People of one's own partition whose name contains `q` (the directory's)."""
    try:
        _signed_in(identity)
    except NoCommunity as exc:
        return _refused(exc)
    assert identity.claims is not None
    me = person_id(identity.claims.username, identity.claims.partition)
    found = own_partition(identity, await auth.find_people(identity, q, limit=30))
    return [
        PersonOut(pid=pid, name=p.display_name)
        for p in found
        if (pid := person_id(p.username, p.partition)) != me
    ]


@router.post("/meet", response_model=MeetingOut, status_code=201, responses={401: {}, 503: {}})
async def meet_now(
    body: MeetNow, meetings: MeetingsDep, identity: IdentityDep
) -> MeetingOut | JSONResponse:
    """An instant meeting for the people of a chat (only they may enter): its link."""
    try:
        _signed_in(identity)
    except NoCommunity as exc:
        return _refused(exc)
    assert identity.claims is not None
    partition = identity.claims.partition
    names = {identity.claims.username}
    for pid in body.members:
        if "/" not in pid:
            return JSONResponse(
                {"detail": f"{pid!r} is not a person (partition/name)"}, status_code=422
            )
        if partition_of(pid) != (partition or ""):
            return JSONResponse(
                {"detail": "you can only meet people of your own organisation"}, status_code=403
            )
        names.add(pid.split("/", 1)[1])
    title = body.title.strip() or f"Meeting of {identity.claims.display_name}"
    try:
        data = MeetingCreate(
            name=title,
            moderator=identity.claims.username,
            expected_participants=len(names),
            duration_minutes=60,
            unlisted=True,
            restricted_to=sorted(names),
        )
        row = await meetings.create(data, partition=partition)
    except (ValidationError, InvalidChange) as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    except Unavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return MeetingOut(url=meetings.join_url(row.id))
