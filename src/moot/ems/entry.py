"""Letting a person into a meeting: the meeting password (throttled, hashed off the event
loop), the signed join token and the redirect to the room server; and a meeting page's old
token, which asks back in after its room server went away. Who enters, under which name
and in which role, is decided before (admission.py): this signs what it is told."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moot.core.meeting_status import MeetingStatus
from moot.ems.attending import (
    AttendInfo,
    AttendRedirect,
    CannotAttend,
    Entrant,
    NotAllowed,
    Unavailable,
    check_password,
    socket_base,
)
from moot.ems.cluster.needs import Answering
from moot.ems.door import Door
from moot.ems.hashing import off_loop
from moot.ems.meetings import MeetingService
from moot.ems.throttle import Throttle, TooMany
from moot.infra.tokens import InvalidToken, JoinClaims, sign_join_token, verify_join_token

# How long after its join token expired a meeting page may still rejoin by itself.
REJOIN_WINDOW = 12 * 3600


class MeetingEntry:
    def __init__(
        self,
        *,
        meetings: MeetingService,
        cluster: Answering,
        signing_key: Ed25519PrivateKey,
        join_token_ttl: int,
        throttle: Throttle,
        password_failures_per_address: int,
        door: Door,
    ) -> None:
        self._meetings = meetings
        self._cluster = cluster
        self._key = signing_key
        self._ttl = join_token_ttl
        self._throttle = throttle
        self._password_failures = password_failures_per_address
        self._door = door

    def old_token(self, meeting_id: str, token: str) -> JoinClaims:
        """The claims of a join token we signed for this meeting, expired at most
        REJOIN_WINDOW ago (how a meeting page that lost its room server asks back in);
        NotAllowed if it is not one."""
        try:
            return verify_join_token(
                self._key.public_key(), token, meeting_id=meeting_id, expired_for=REJOIN_WINDOW
            )
        except InvalidToken as exc:
            raise NotAllowed(str(exc)) from exc

    async def check_password(self, info: AttendInfo, password: str, address: str) -> None:
        """CannotAttend unless `password` is the meeting's; guesses are throttled per meeting
        and address (reserved before the check), and hashed off the event loop."""
        try:
            reservation = await self._throttle.reserve(
                [(f"meeting:{info.id}:{address}", self._password_failures)]
            )
        except TooMany as exc:
            raise CannotAttend(
                f"too many wrong passwords for this meeting from your address: wait "
                f"{exc.minutes} minute{'s' if exc.minutes != 1 else ''} and try again"
            ) from exc
        try:
            right = await off_loop(check_password, info.password_hash or "", password)
        except BaseException:
            await self._throttle.give_back(reservation)
            raise
        if not right:
            raise CannotAttend("wrong or missing meeting password")
        await self._throttle.give_back(reservation)  # the right password is no failed guess

    async def on_stage(self, info: AttendInfo, entrant: Entrant) -> None:
        """NotAllowed (with why) unless this person may put something on the meeting's stage
        now: a moderator by who they are, or someone a moderator made presenter or moderator
        in this occurrence (door.py reads the grants the room server journaled); and not
        removed."""
        refused = await self._door.check(info.id, entrant.person, entrant.role)
        if refused:
            raise NotAllowed(refused)
        if info.status != MeetingStatus.IN_PROGRESS:
            raise NotAllowed("the meeting is not running now")
        if entrant.role != "moderator" and not await self._door.granted(info.id, entrant.person):
            raise NotAllowed("only the meeting's moderators and presenters may add files")

    async def attend(self, info: AttendInfo, entrant: Entrant) -> AttendRedirect:
        """Start the meeting if it should run, then a signed redirect to its room server.

        Who enters, under which name and in which role, was decided before (admission.py):
        this signs what it was told; but a person a moderator removed, or a newcomer to a
        locked meeting, is refused here (NotAllowed) as on the room server (door.py).
        """
        if info.epoch > 0:  # opened before: its moderators may have locked or removed
            refused = await self._door.check(info.id, entrant.person, entrant.role)
            if refused:
                raise NotAllowed(refused)
        if info.status != MeetingStatus.IN_PROGRESS:
            info = await self._meetings.start_for_attendee(info.id)
        server = self._cluster.registry.get(info.server_name or "")
        if server is None or server.link is None or not self._cluster.answering(server):
            raise Unavailable(
                "the room server hosting this meeting is not reachable; try again shortly"
            )
        token = sign_join_token(
            self._key,
            meeting_id=info.id,
            user=entrant.name,
            role=entrant.role,
            epoch=info.epoch,
            ttl_seconds=self._ttl,
            person=entrant.person,
            proof=entrant.proof,
        )
        return AttendRedirect(
            url=f"{server.url}/meeting/{info.id}?token={token}",
            role=entrant.role,
            socket_url=socket_base(server.url) + f"/meeting/{info.id}/ws?token={token}",
            token=token,
        )
