"""Community services, the EMS's part: who may use them, where to connect, meet now.

The EMS serves no presence and no message itself: it signs a community token for a
signed-in person (room servers verify it with the join tokens' public key) and lists the
room servers offering community services, the fewest connections first. The page tries
them in that order, so a dead server costs one failed attempt, not a wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moot.core.community import CommunityServer, community_servers, person_id
from moot.core.placement import ServerState
from moot.ems.auth.identity import Identity, Person
from moot.ems.cluster.registry import Registry
from moot.infra.tokens import sign_community_token

TOKEN_TTL = 600  # seconds: a page asks for a new one at each (re)connect


class NoCommunity(Exception):
    """Community services are not for this person, or not offered by any server now."""

    def __init__(self, reason: str, *, status: int) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Ticket:
    """Where and how a page connects: the servers, best first, and its token."""

    me: str
    name: str
    token: str
    servers: list[tuple[str, str]]  # (name, WebSocket URL)


def ticket(identity: Identity, registry: Registry, key: Ed25519PrivateKey) -> Ticket:
    claims = identity.claims
    if claims is None or claims.source == "cluster-secret":
        raise NoCommunity("sign in to use presence and instant messages", status=401)
    known = [
        CommunityServer(
            name=s.name,
            url=s.url,
            online=s.state is ServerState.ONLINE,
            draining=s.draining,
            offers=s.community_offered,
            connections=s.community_connections,
        )
        for s in registry.all()
    ]
    servers = community_servers(known, person_id(claims.username, claims.partition))
    if not servers:
        raise NoCommunity("no room server offers community services now", status=503)
    token = sign_community_token(
        key,
        username=claims.username,
        display_name=claims.display_name,
        partition=claims.partition,
        ttl_seconds=TOKEN_TTL,
    )
    return Ticket(
        me=person_id(claims.username, claims.partition),
        name=claims.display_name,
        token=token,
        servers=[(s.name, _socket_url(s.url)) for s in servers],
    )


def _socket_url(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/community/ws"
    return "ws://" + base.removeprefix("http://") + "/community/ws"


def own_partition(identity: Identity, people: list[Person]) -> list[Person]:
    """Only people of the asker's own partition (privacy: the directory is per partition)."""
    mine = identity.claims.partition if identity.claims is not None else None
    return [p for p in people if p.partition == mine]
