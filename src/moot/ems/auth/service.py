"""Sign-in: local users and LDAP, throttling, sign-in tokens and their revocation, the audit log.

Who may do what is decided by `moot.core.permissions.decide` (pure); this service supplies its
inputs: the subject (from a verified token, or anonymous) and the policy (from settings).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core.permissions import Action, Decision, Policy, Refusal, Subject, Target, decide
from moot.ems import moderator_keys as keys
from moot.ems.auth import passwords
from moot.ems.auth.directory import DirectoryError, SignInRefused
from moot.ems.auth.identity import Identity, MeetingLike, NotPermitted, Person, target_of
from moot.ems.auth.ldap_settings import LdapPartition, LdapSettings
from moot.ems.auth.tokens import BadToken, RingKey, SessionClaims, new_kid, sign_session
from moot.ems.auth.tokens import verify_session as verify_token
from moot.ems.auth.users_now import UsersNow
from moot.ems.errors import Code, DomainError, MeetingNotFound
from moot.ems.hashing import off_loop
from moot.ems.store import users as store
from moot.ems.store.db import utcnow
from moot.ems.store.meetings import Reader
from moot.ems.store.models import SigningKeyRow, UserRow
from moot.ems.throttle import Throttle, TooMany

if TYPE_CHECKING:
    from moot.ems.auth.ldap import LdapDirectory
from moot.infra.settings import EmsSettings

log = logging.getLogger("moot.ems.auth")

# How often an EMS node reads the key ring again (another node or the CLI may rotate it).
RING_REFRESH = 30.0
# What a refused sign-in is told: never which of the two was wrong.
REFUSED = "wrong user name or password"


class SignInFailed(DomainError):
    """The sign-in was refused; `str()` is what the person is told."""

    code: ClassVar[Code] = Code.SIGN_IN_REFUSED


class DirectoryDown(SignInFailed):
    """The directory could not be asked: nobody's fault, so not a failed attempt."""


class Throttled(SignInFailed):
    code = Code.TOO_MANY

    def __init__(self, minutes: int) -> None:
        super().__init__(
            f"too many failed sign-ins: wait {minutes} minute{'s' if minutes != 1 else ''} "
            "and try again"
        )


class NotSignedIn(Exception):
    """A sign-in that a join token was given under has ended; `str()` says why."""


def _ended(
    found: tuple[frozenset[str], datetime | None] | None, groups: frozenset[str], issued_at: int
) -> str:
    """Why a sign-in token no longer holds ("" if it does): its user as they are now."""
    if found is None:
        return "the user of this sign-in no longer exists or is disabled: sign in again"
    now_groups, created = found
    if created is not None and created.timestamp() > issued_at + 1:
        return "the user of this sign-in no longer exists or is disabled: sign in again"
    if {g.casefold() for g in now_groups} != {g.casefold() for g in groups}:
        return "your groups have changed since you signed in: sign in again"
    return ""


def ldap_settings_of(settings: EmsSettings) -> LdapSettings | None:
    if not settings.ldap_url:
        return None
    partitions = []
    for item in settings.ldap_partitions.split("|"):
        name, _, base = item.strip().partition("=")
        if not name.strip() or not base.strip():
            raise ValueError(
                "ldap_partitions: give NAME=SEARCH_BASE pairs separated by '|', "
                f"e.g. acme=dc=acme,dc=test (not {item!r})"
            )
        partitions.append(LdapPartition(name=name.strip(), search_base=base.strip()))
    return LdapSettings(
        url=settings.ldap_url,
        bind_dn=settings.ldap_bind_dn,
        bind_password=settings.ldap_bind_password,
        partitions=tuple(partitions),
        user_filter=settings.ldap_user_filter,
        group_filter=settings.ldap_group_filter,
        start_tls=settings.ldap_start_tls,
        ca_file=str(settings.ldap_ca_file) if settings.ldap_ca_file else None,
    )


def _key_of(row: SigningKeyRow) -> RingKey:
    loaded = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return RingKey(kid=row.kid, key=loaded, retired=row.retired_at is not None)


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class AuthService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: EmsSettings) -> None:
        self._sessions = sessions
        self._settings = settings
        self.policy = Policy(
            anonymous_browse=settings.anonymous_browse,
            anonymous_create=settings.anonymous_create,
            anonymous_attend=settings.anonymous_attend,
            anonymous_modify_others=settings.anonymous_modify_others,
            anonymous_delete_others=settings.anonymous_delete_others,
            admin_group=settings.admin_group,
        )
        ldap = ldap_settings_of(settings)
        self._directory: LdapDirectory | None = None
        if ldap:
            # ldap3 is imported here, not at start-up: most EMS run without a directory.
            from moot.ems.auth.ldap import LdapDirectory

            self._directory = LdapDirectory(ldap)
        self._ring: dict[str, RingKey] = {}
        self._throttle = Throttle(sessions, timedelta(seconds=settings.login_throttle_seconds))
        self._users = UsersNow(
            sessions, self._directory, recheck_seconds=settings.directory_recheck_seconds
        )
        self._ring_loaded_at = 0.0

    # -- keys ----------------------------------------------------------------

    async def load(self) -> None:
        """Read the key ring; the first EMS to start makes its first key."""
        async with self._sessions() as session:
            rows = await store.signing_keys(session)
            if not any(r.retired_at is None for r in rows):
                session.add(
                    SigningKeyRow(
                        kid=new_kid(),
                        private_pem=_pem(Ed25519PrivateKey.generate()),
                        created_at=utcnow(),
                    )
                )
                await session.commit()
                rows = await store.signing_keys(session)
        self._ring = {r.kid: _key_of(r) for r in rows}
        self._ring_loaded_at = time.monotonic()

    def keys_changed(self, _key: str = "") -> None:
        """Another node or the CLI rotated or retired keys: read the ring at the next verify."""
        self._ring_loaded_at = -RING_REFRESH

    async def rotate(self, *, retire_others: bool) -> str:
        """A new key signs from now on; with `retire_others`, tokens of the old ones die."""
        kid = new_kid()
        async with self._sessions() as session:
            if retire_others:
                for row in await store.signing_keys(session):
                    if row.retired_at is None:
                        row.retired_at = utcnow()
            session.add(
                SigningKeyRow(
                    kid=kid, private_pem=_pem(Ed25519PrivateKey.generate()), created_at=utcnow()
                )
            )
            await session.commit()
        await self.load()
        return kid

    def _signer(self) -> RingKey:
        active = [k for k in self._ring.values() if not k.retired]
        return active[-1]

    # -- sign in and out -------------------------------------------------------

    async def sign_in(
        self, username: str, password: str, address: str
    ) -> tuple[str, SessionClaims]:
        username = username.strip()
        now = utcnow()
        try:
            # Reserved before the password is checked: parallel guesses cannot all get in.
            reservation = await self._throttle.reserve(
                [
                    (f"user:{username.casefold()}", self._settings.login_failures_per_user),
                    (f"address:{address}", self._settings.login_failures_per_address),
                ]
            )
        except TooMany as exc:
            async with self._sessions() as session:
                store.record_failure(
                    session, at=now, username=username, address=address, reason="throttled"
                )
                await session.commit()
            raise Throttled(exc.minutes) from exc
        try:
            async with self._sessions() as session:
                local = await store.get_user(session, username) if username else None
            who = await self._check(local, username, password)
        except SignInFailed as exc:
            if isinstance(exc, DirectoryDown):
                await self._throttle.give_back(reservation)  # nobody's fault: it does not count
            async with self._sessions() as session:
                store.record_failure(
                    session, at=now, username=username, address=address, reason=str(exc)
                )
                await session.commit()
            log.warning("sign-in of %r from %s refused: %s", username, address, exc)
            raise SignInFailed(REFUSED) from exc
        except BaseException:
            await self._throttle.give_back(reservation)
            raise
        await self._throttle.give_back(reservation)  # a success is no failed attempt
        name, display, groups, partition, source = who
        token, claims = sign_session(
            self._signer(),
            username=name,
            display_name=display,
            groups=groups,
            partition=partition,
            source=source,
            ttl_seconds=int(self._settings.session_hours * 3600),
        )
        async with self._sessions() as session:
            store.record_login(
                session, at=now, username=name, source=source, partition=partition, address=address
            )
            await session.commit()
        await self._throttle.tidy()
        log.info("%s signed in from %s (%s)", name, address, source)
        return token, claims

    async def _check(
        self, local: UserRow | None, username: str, password: str
    ) -> tuple[str, str, frozenset[str], str | None, str]:
        """(name, display name, groups, partition, source), or SignInFailed with the reason."""
        if not username or not password:
            raise SignInFailed("empty user name or password")
        if local is not None:
            ok = await off_loop(passwords.verify_password, local.password_hash, password)
            if not ok:
                raise SignInFailed("wrong password")
            if local.disabled:
                raise SignInFailed("user disabled")
            display = local.display_name or local.username
            return local.username, display, frozenset(local.groups), None, "local"
        if self._directory is None:
            await off_loop(passwords.verify_unknown_user, password)
            raise SignInFailed("no such user")
        try:
            user = await asyncio.to_thread(self._directory.authenticate, username, password)
        except SignInRefused as exc:
            raise SignInFailed(exc.reason) from exc
        except DirectoryError as exc:
            raise DirectoryDown(f"directory unreachable: {exc}") from exc
        return user.username, user.display_name, user.groups, user.partition, "ldap"

    async def verify(self, token: str) -> SessionClaims:
        """A token every EMS node honours, unless it was signed out or its user was removed,
        disabled or changed groups since; BadToken (with the reason) if not."""
        if time.monotonic() - self._ring_loaded_at > RING_REFRESH:
            await self.load()  # keys rotated or retired with `moot keys rotate`
        try:
            claims = verify_token(self._ring, token)
        except BadToken as exc:
            if "unknown key" not in str(exc) or time.monotonic() - self._ring_loaded_at < 5:
                raise
            await self.load()  # another EMS node may have rotated the keys
            claims = verify_token(self._ring, token)
        async with self._sessions() as session:
            if await store.is_revoked(session, claims.jti):
                raise BadToken("signed out: sign in again")
        found = await self._users.now(
            claims.username, claims.source, claims.partition, unknown=claims.groups
        )
        problem = _ended(found, claims.groups, claims.issued_at)
        if problem:
            raise BadToken(problem)
        return claims

    async def subject_again(
        self, *, username: str, source: str, partition: str | None, jti: str, issued_at: int
    ) -> Subject:
        """Who a sign-in is now, for renewing a join token it got (rejoin): its user as they
        are now (their groups today); NotSignedIn if it was signed out or its user removed."""
        async with self._sessions() as session:
            if jti and await store.is_revoked(session, jti):
                raise NotSignedIn("you have signed out: sign in and open the meeting again")
        found = await self._users.now(username, source, partition, unknown=frozenset())
        if found is None:
            raise NotSignedIn("your user no longer exists or is disabled")
        groups, created = found
        if created is not None and created.timestamp() > issued_at + 1:
            raise NotSignedIn("your user no longer exists or is disabled")
        return Subject(name=username, groups=groups, partition=partition)

    async def is_known_user(self, name: str) -> bool:
        """Whether someone may sign in under this name: a visitor who types it is a guest."""
        return await self._users.is_known(name)

    async def sign_out(self, claims: SessionClaims) -> None:
        async with self._sessions() as session:
            await store.revoke(session, claims.jti, datetime.fromtimestamp(claims.expires_at, UTC))
            await store.forget_expired_revocations(session, utcnow())
            await session.commit()
        log.info("%s signed out", claims.username)

    # -- finding people (the moderator picker) --------------------------------

    async def find_people(self, identity: Identity, text: str, limit: int = 20) -> list[Person]:
        """People whose name contains `text`: local users, and the directory's users of the
        asker's partition (every partition's for administrators)."""
        text = text.strip()
        found: list[Person] = []
        async with self._sessions() as session:
            for row in await store.list_users(session):
                if text.casefold() in f"{row.username} {row.display_name}".casefold():
                    found.append(Person(row.username, row.display_name or row.username, None))
        if self._directory is not None and identity.claims is not None:
            partitions = (
                [p.name for p in self._directory.settings.partitions]
                if self.is_admin(identity)
                else [identity.claims.partition]
                if identity.claims.partition
                else []
            )
            for partition in partitions:
                try:
                    users = await asyncio.to_thread(
                        self._directory.find_users, text, partition, limit=limit
                    )
                except (DirectoryError, SignInRefused) as exc:
                    log.warning("could not search the directory: %s", exc)
                    continue
                found.extend(Person(u.username, u.display_name, u.partition) for u in users)
        return found[:limit]

    # -- permissions and audit -----------------------------------------------

    def decide(self, identity: Identity, action: Action, target: Target | None = None) -> Decision:
        return decide(identity.subject, action, target, self.policy)

    def require(self, identity: Identity, action: Action, target: Target | None = None) -> None:
        decision = self.decide(identity, action, target)
        if not decision.allowed:
            raise NotPermitted(decision.reason, signed_in=identity.claims is not None)

    def subject_on(self, identity: Identity, meeting: MeetingLike) -> Subject:
        """The subject as it acts on this meeting: holding its moderator key, if presented."""
        subject = identity.subject
        if any(keys.opens(k, meeting.moderator_key_hash) for k in identity.keys_for(meeting.id)):
            return replace(subject, moderator_of=frozenset({meeting.id}))
        return subject

    def decide_on(self, identity: Identity, action: Action, meeting: MeetingLike) -> Decision:
        return decide(self.subject_on(identity, meeting), action, target_of(meeting), self.policy)

    def require_on(self, identity: Identity, action: Action, meeting: MeetingLike) -> None:
        """NotPermitted (401/403) unless `identity` may do `action` on the meeting. A meeting
        of another partition is not found at all: its existence is none of their business."""
        self.enforce(self.decide_on(identity, action, meeting), identity, meeting.id)

    @staticmethod
    def enforce(decision: Decision, identity: Identity, meeting_id: str) -> None:
        """Raise what a refused decision on a meeting means: MeetingNotFound for another
        partition's, NotPermitted otherwise."""
        if decision.allowed:
            return
        if decision.refusal is Refusal.OTHER_PARTITION:
            raise MeetingNotFound(meeting_id)
        raise NotPermitted(decision.reason, signed_in=identity.claims is not None)

    def decide_subject(self, subject: Subject, action: Action, meeting: MeetingLike) -> Decision:
        return decide(subject, action, target_of(meeting), self.policy)

    def is_admin(self, identity: Identity) -> bool:
        return self.decide(identity, Action.ADMINISTER).allowed

    def reader_of(self, identity: Identity) -> Reader:
        """Whose lists: what they show is only what this reader may open (store.Reader)."""
        if self.is_admin(identity):
            return Reader.everything()
        if identity.claims is None:
            return Reader(partition=None)
        claims = identity.claims
        entries = frozenset({claims.username.lower(), *(g.lower() for g in claims.groups)})
        return Reader(partition=claims.partition, name=claims.username, entries=entries)

    async def audit(
        self,
        identity: Identity,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self._sessions() as session:
            store.audit(
                session,
                at=utcnow(),
                actor=identity.name,
                action=action,
                target=target,
                address=identity.address,
                detail=detail,
            )
            await session.commit()
