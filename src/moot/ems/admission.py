"""Admission: who enters a meeting, under which name, and in which role.

The role comes from who the person is (moot.core.permissions): a signed-in moderator, an
administrator, or whoever holds the meeting's moderator key. A typed name is only a name:
a visitor who types the name of a user, or of the meeting's moderator, is shown as
"NAME (guest)". Each entrant carries the person behind the name (`user:…` for a sign-in,
`guest:…` for a browser), so the room server lets nobody else hold that name in the
meeting, while one person's two tabs share it.

Renewing a join token (rejoin, after a room server went away) decides all of this again,
from what the old token proves: the sign-in it was given under (signed out, user removed or
disabled: no), the moderator key (changed since: no longer moderator), and the meeting as
it is now (a password set since, a restriction added: no).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moot.core.permissions import Action, Subject, decide
from moot.ems import moderator_keys as keys
from moot.ems.attending import AttendInfo, AttendRedirect, Entrant, NotAllowed
from moot.ems.auth.identity import Identity, cluster_administrator, target_of
from moot.ems.auth.service import AuthService, NotSignedIn
from moot.ems.entry import MeetingEntry
from moot.ems.meetings import MeetingService
from moot.infra.tokens import Role

GUEST = " (guest)"
CLUSTER_SECRET = "cluster-secret"


@dataclass(frozen=True, slots=True)
class Visitor:
    """Someone at a meeting's door: who they are, the name they typed (or kept in a cookie),
    and their browser's guest id (its `moot_guest` cookie)."""

    identity: Identity
    typed_name: str = ""
    browser: str = ""

    @property
    def signed_in(self) -> bool:
        claims = self.identity.claims
        return claims is not None and claims.source != CLUSTER_SECRET


class Admission:
    def __init__(self, meetings: MeetingService, entry: MeetingEntry, auth: AuthService) -> None:
        self._meetings = meetings
        self._entry = entry
        self._auth = auth

    def subject(self, identity: Identity, info: AttendInfo) -> Subject:
        """The subject as it enters this meeting; NotPermitted if it may not."""
        subject = self._auth.subject_on(identity, info)
        decision = decide(subject, Action.ATTEND, target_of(info), self._auth.policy)
        self._auth.enforce(decision, identity, info.id)
        return subject

    def needs_password(self, subject: Subject, info: AttendInfo) -> bool:
        """The meeting's password is for those who could not change it themselves."""
        return info.password_hash is not None and not self._keeps(subject, info)

    async def admit(
        self, info: AttendInfo, visitor: Visitor, password: str | None, address: str
    ) -> AttendRedirect:
        """Let the visitor in: NotPermitted, CannotAttend (wrong password), Unavailable."""
        subject = self.subject(visitor.identity, info)
        if self.needs_password(subject, info):
            await self._entry.check_password(info, password or "", address)
        entrant = await self._entrant(info, visitor, subject)
        return await self._entry.attend(info, entrant)

    async def readmit(self, meeting_id: str, old_token: str) -> AttendRedirect:
        """A new token for a meeting page whose room server went away, if its person may
        still attend: NotAllowed (403) with the reason if not."""
        info, entrant = await self._again(meeting_id, old_token)
        return await self._entry.attend(info, entrant)

    async def on_stage(self, meeting_id: str, token: str) -> Entrant:
        """The person a meeting page's token names, if they may still attend and may put
        something on its stage now (a file to present): a moderator, or a presenter or
        moderator by a grant in the meeting. NotAllowed (403) with the reason if not."""
        info, entrant = await self._again(meeting_id, token)
        await self._entry.on_stage(info, entrant)
        return entrant

    async def _again(self, meeting_id: str, old_token: str) -> tuple[AttendInfo, Entrant]:
        """Who a meeting page's token names, decided again from what it proves (the sign-in,
        the moderator key, the meeting as it is now): NotAllowed if they may not attend."""
        claims = self._entry.old_token(meeting_id, old_token)
        info = await self._meetings.attend_info(meeting_id)
        proof = claims.proof
        via = proof.get("via", "guest")
        if via == "user":
            try:
                subject = await self._auth.subject_again(
                    username=str(proof.get("user", claims.user)),
                    source=str(proof.get("src", "local")),
                    partition=proof.get("part"),
                    jti=str(proof.get("sid", "")),
                    issued_at=int(proof.get("iat", 0)),
                )
            except NotSignedIn as exc:
                raise NotAllowed(str(exc)) from exc
        elif via == "cluster":
            subject = cluster_administrator(self._auth.policy.admin_group, "").subject
        else:
            held = str(proof.get("key", ""))
            by_key = bool(held) and held == keys.fingerprint(info.moderator_key_hash)
            subject = Subject(None, moderator_of=frozenset({info.id}) if by_key else frozenset())
        decision = decide(subject, Action.ATTEND, target_of(info), self._auth.policy)
        if not decision.allowed:
            raise NotAllowed(decision.reason)
        if self.needs_password(subject, info) and proof.get("pw") != keys.fingerprint(
            info.password_hash
        ):
            raise NotAllowed(
                "the meeting's password has changed since you entered: open the meeting again"
                " from the Meeting Center"
            )
        name = claims.user
        if via in ("guest", "key") and not name.endswith(GUEST):
            name = await self._guest_name(name, info, info.id in subject.moderator_of)
        entrant = Entrant(
            name=name,
            person=claims.person,
            role=self._role(subject, info),
            proof={**proof, **self._secrets(subject, info)},
        )
        return info, entrant

    # -- who enters, as what ---------------------------------------------------------------

    def _keeps(self, subject: Subject, info: AttendInfo) -> bool:
        """Moderators and administrators: they may change the meeting's password anyway."""
        return decide(subject, Action.CHANGE_ACCESS, target_of(info), self._auth.policy).allowed

    def _role(self, subject: Subject, info: AttendInfo) -> Role:
        moderates = decide(subject, Action.MODERATE, target_of(info), self._auth.policy)
        return "moderator" if moderates.allowed else "participant"

    @staticmethod
    def _secrets(subject: Subject, info: AttendInfo) -> dict[str, Any]:
        """Marks of the secrets the entrant got in with, checked again at a rejoin."""
        by_key = info.id in subject.moderator_of
        return {
            "pw": keys.fingerprint(info.password_hash),
            "key": keys.fingerprint(info.moderator_key_hash) if by_key else "",
        }

    async def _entrant(self, info: AttendInfo, visitor: Visitor, subject: Subject) -> Entrant:
        claims = visitor.identity.claims
        role = self._role(subject, info)
        secrets = self._secrets(subject, info)
        if visitor.signed_in and claims is not None:
            return Entrant(
                name=claims.username,
                person=f"user:{claims.partition or ''}:{claims.username.casefold()}",
                role=role,
                proof={
                    "via": "user",
                    "user": claims.username,
                    "src": claims.source,
                    "part": claims.partition,
                    "sid": claims.jti,
                    "iat": claims.issued_at,
                    **secrets,
                },
            )
        typed = visitor.typed_name
        if claims is not None:  # the cluster administrator (the command line): a tool
            return Entrant(typed, f"cluster:{typed}", role, {"via": "cluster", **secrets})
        by_key = info.id in subject.moderator_of
        return Entrant(
            name=await self._guest_name(typed, info, by_key),
            person=f"guest:{visitor.browser}",
            role=role,
            proof={"via": "key" if by_key else "guest", **secrets},
        )

    async def _guest_name(self, typed: str, info: AttendInfo, by_key: bool) -> str:
        """The name a visitor is shown under: as typed, unless it is a user's name, or the
        meeting's moderator's (and they do not hold its key): then "NAME (guest)"."""
        taken = typed.casefold() == info.moderator.casefold() and not by_key
        if taken or await self._auth.is_known_user(typed):
            return typed + GUEST
        return typed
