"""The community WebSocket: `/community/ws?token=...&device=...` (docs/protocol.md).

The token is the EMS's community token (EdDSA, moot.infra.tokens); who the person is
comes from it alone. `device` is the browser tab's own id: the same tab coming back after
a failover is the same device, so its presence record is refreshed, not doubled.
"""

from __future__ import annotations

import json
import logging
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import WebSocket, WebSocketDisconnect
from nats.errors import Error as NatsError

from moot.core.community import Refusal, person_id
from moot.infra.tokens import InvalidToken, verify_community_token
from moot.room.community.bus import BusDown
from moot.room.community.hub import CommunityHub, Member
from moot.room.connection import Connection

log = logging.getLogger("moot.room.community")

CLOSE_BAD_TOKEN = 4401
CLOSE_UNAVAILABLE = 4503  # no community services here (now): try another server
DEVICE = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
MAX_CLIENT_MESSAGE = 16 * 1024  # a message at its longest, with room for JSON


async def serve_community(
    websocket: WebSocket,
    hub: CommunityHub | None,
    public_key: Ed25519PublicKey | None,
    token: str | None,
    device: str,
    observe: bool = False,
) -> None:
    """`observe`: a Meeting Center page showing presence beside names: it watches, and
    is no device of the person (opening the Meeting Center does not make one online)."""
    await websocket.accept()
    if hub is None or public_key is None or not hub.offered:
        await _refuse(websocket, "community services are not available on this server", 4503)
        return
    try:
        claims = verify_community_token(public_key, token)
    except InvalidToken as exc:
        await _refuse(websocket, str(exc), CLOSE_BAD_TOKEN)
        return
    if observe:
        device = ""
    elif not DEVICE.match(device):
        await _refuse(websocket, "give the device id (8 to 40 letters or digits)", 4400)
        return
    conn = Connection(channel=websocket, user=claims.display_name, role="participant")
    member = Member(
        conn=conn,
        pid=person_id(claims.username, claims.partition),
        name=claims.display_name,
        device=device,
    )
    try:
        await hub.join(member)
    except Exception as exc:  # the bus is down: the client tries again (another server)
        log.warning("community sign-in failed: %s", exc)
        await _refuse(websocket, "community services are not reachable now", CLOSE_UNAVAILABLE)
        await hub.leave(member)
        return
    try:
        while not conn.closing:
            text = await websocket.receive_text()
            if len(text) > MAX_CLIENT_MESSAGE:
                member.send({"type": "error", "message": "the message is too large"})
                continue
            try:
                message = json.loads(text)
                if not isinstance(message, dict):
                    raise ValueError
            except ValueError:
                member.send({"type": "error", "message": "send JSON objects"})
                continue
            try:
                await hub.handle(member, message)
            except Refusal as exc:
                member.send({"type": "error", "id": message.get("id"), "message": str(exc)})
            except (BusDown, TimeoutError, NatsError) as exc:
                # Not acknowledged: the page keeps the message and sends it again.
                member.send(
                    {
                        "type": "error",
                        "id": message.get("id"),
                        "retry": True,
                        "message": f"not stored yet, it will be sent again ({exc})",
                    }
                )
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await hub.leave(member)


async def _refuse(websocket: WebSocket, message: str, code: int) -> None:
    await websocket.send_text(json.dumps({"type": "error", "message": message, "fatal": True}))
    await websocket.close(code=code)
