"""/api/v1/auth: sign-in tokens for API clients (browsers use the sign-in page)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from moot.ems.deps import AuthDep, IdentityDep, client_address

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class SignIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    token: str = Field(description="Send it as `Authorization: Bearer <token>`.")
    expires_at: datetime


class MeOut(BaseModel):
    signed_in: bool
    username: str | None
    display_name: str | None
    groups: list[str]
    partition: str | None
    administrator: bool


@router.post("/token", response_model=TokenOut, responses={401: {}, 429: {}})
async def token(body: SignIn, request: Request, auth: AuthDep) -> TokenOut | Response:
    """Sign in: a token every EMS node honours until it expires or is signed out."""
    # SignInFailed: 401, or 429 when throttled (moot.ems.web.errors).
    signed, claims = await auth.sign_in(body.username, body.password, client_address(request))
    return TokenOut(token=signed, expires_at=datetime.fromtimestamp(claims.expires_at, UTC))


@router.post("/signout", status_code=status.HTTP_204_NO_CONTENT)
async def signout(identity: IdentityDep, auth: AuthDep) -> Response:
    """The token (bearer or cookie) is refused from now on, by every EMS node."""
    if identity.claims is not None and identity.claims.jti:
        await auth.sign_out(identity.claims)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
async def me(identity: IdentityDep, auth: AuthDep) -> MeOut:
    claims = identity.claims
    return MeOut(
        signed_in=claims is not None,
        username=claims.username if claims else None,
        display_name=claims.display_name if claims else None,
        groups=sorted(claims.groups) if claims else [],
        partition=claims.partition if claims else None,
        administrator=auth.is_admin(identity),
    )


class PersonOut(BaseModel):
    username: str
    display_name: str
    partition: str | None


@router.get("/people", response_model=list[PersonOut], responses={401: {}})
async def people(
    identity: IdentityDep,
    auth: AuthDep,
    q: Annotated[str, Query(max_length=200, description="part of a name")] = "",
) -> list[PersonOut] | Response:
    """Find people to make moderator: signed-in users only (it reads the directory)."""
    if identity.claims is None:
        return JSONResponse({"detail": "sign in to look people up"}, status_code=401)
    return [
        PersonOut(username=p.username, display_name=p.display_name, partition=p.partition)
        for p in await auth.find_people(identity, q)
    ]
