"""Sign-in against an LDAP directory through ldap3, each search base a partition.

Signing in is search-then-bind: the service account searches each partition's base for the
user (the username escaped, so it cannot change the filter), then a second connection binds
as the found DN with the password; only then are the user's groups read (with the service
account, from the same partition's base only, so one partition cannot hand groups to another's
users). ldap3 is synchronous: callers on the event loop use `asyncio.to_thread`. An
`LdapDirectory` keeps no connection and no state, so one instance serves every thread.

Every connection gets a new `ldap3.Server`: a Server remembers an address that refused it and
skips it for 5 s, which would turn a directory that restarts into a 5 s sign-in outage.
`timeout` bounds connecting and each wait for a reply (the TLS handshake included); ldap3
takes the reply timeout in whole seconds, so it is rounded up.
"""

from __future__ import annotations

import ast
import math
import ssl
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

with warnings.catch_warnings():
    # ldap3 2.9.1 (its last release) imports names that pyasn1 >= 0.6.1 deprecates; the
    # warning would turn into an error under `-W error` and pytest's filterwarnings.
    warnings.filterwarnings("ignore", r".* is deprecated\. Please use", DeprecationWarning)
    # ldap3 ships no type hints; `unused-ignore` keeps these lines clean once a mypy override
    # or the types-ldap3 stubs make the ignore unnecessary.
    import ldap3
    from ldap3.core.exceptions import (
        LDAPCertificateError,
        LDAPCommunicationError,
        LDAPException,
        LDAPStartTLSError,
    )
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import parse_dn

from moot.ems.auth.directory import DirectoryError, DirectoryUser, SignInRefused
from moot.ems.auth.ldap_settings import LdapPartition, LdapSettings

__all__ = ["DirectoryError", "DirectoryUser", "LdapDirectory", "SignInRefused"]

INVALID_CREDENTIALS = 49
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_OBJECT = 32

_USER_ATTRIBUTES = ("cn", "displayName", "mail", "memberOf")


class _HostnameCheckingTls(ldap3.Tls):  # type: ignore[misc, unused-ignore]
    """ldap3's Tls, with Python's ssl checking the certificate's name during the handshake.

    ldap3 2.9 turns hostname checking off in its SSLContext and calls `ssl.match_hostname`
    afterwards: deprecated (a DeprecationWarning per connection) and gone in Python 3.12, where
    ldap3 falls back to a copy of its own. The standard context checks DNS and IP names the way
    HTTPS clients do, and refuses TLS older than 1.2.
    """

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(cafile=self.ca_certs_file)
        connection.socket = context.wrap_socket(
            connection.socket,
            server_side=False,
            server_hostname=connection.server.host,
            do_handshake_on_connect=do_handshake,
        )


def _first(attributes: Any, name: str) -> str | None:
    """The first value of an attribute (ldap3 without a schema gives lists), or None."""
    value = attributes.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    return str(value)


def _values(attributes: Any, name: str) -> list[str]:
    value = attributes.get(name)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _dn_parts(dn: str) -> list[tuple[str, str]]:
    """A DN's RDNs as lower-cased (attribute, value) pairs, for comparing DNs."""
    return [(attr.strip().lower(), value.strip().lower()) for attr, value, _ in parse_dn(dn)]


def _is_under(dn: str, base: str) -> bool:
    try:
        parts, base_parts = _dn_parts(dn), _dn_parts(base)
    except LDAPException:
        return False
    return len(parts) >= len(base_parts) and parts[len(parts) - len(base_parts) :] == base_parts


class LdapDirectory:
    """Sign-in, user search and a health check against one LDAP directory."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        split = urlsplit(settings.url)
        self._ldaps = split.scheme.lower() == "ldaps"
        self._host: str = split.hostname or ""
        self._port: int = split.port or (636 if self._ldaps else 389)
        self._tls: Any = None
        if settings.tls:
            try:
                self._tls = _HostnameCheckingTls(
                    validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file
                )
            except LDAPException as exc:
                raise DirectoryError(f"ca_file {settings.ca_file!r} cannot be used: {exc}") from exc

    # --- connections --------------------------------------------------------------------

    @contextmanager
    def _bound(self, user: str, password: str) -> Iterator[Any]:
        """A connection bound as user; DirectoryError when the directory cannot be reached.

        A refused bind does not raise: the caller reads `connection.bound` and `.result`.
        """
        settings = self.settings
        server = ldap3.Server(
            self._host,
            port=self._port,
            use_ssl=self._ldaps,
            tls=self._tls,
            get_info=ldap3.NONE,
            connect_timeout=settings.timeout,
        )
        connection = ldap3.Connection(
            server,
            user=user,
            password=password,
            authentication=ldap3.SIMPLE,
            client_strategy=ldap3.SYNC,
            read_only=True,
            raise_exceptions=False,
            auto_referrals=False,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds: it must be an int.
            receive_timeout=max(1, math.ceil(settings.timeout)),
        )
        try:
            try:
                connection.open()
                if settings.start_tls and not connection.start_tls():
                    raise DirectoryError(
                        f"directory unreachable: StartTLS failed at {settings.url}"
                    )
                connection.bind()
            except (LDAPCommunicationError, LDAPStartTLSError, LDAPCertificateError) as exc:
                raise DirectoryError(
                    f"directory unreachable: {settings.url}: {_message(exc)}"
                ) from exc
            except LDAPException as exc:
                raise DirectoryError(f"directory error: {settings.url}: {_message(exc)}") from exc
            yield connection
        finally:
            _close(connection)

    @contextmanager
    def _service(self) -> Iterator[Any]:
        """A connection bound as the service account, or DirectoryError."""
        with self._bound(self.settings.bind_dn, self.settings.bind_password) as connection:
            if not connection.bound:
                raise DirectoryError(
                    f"directory error: the service account {self.settings.bind_dn} was refused "
                    f"({_describe(connection.result)})"
                )
            yield connection

    def _search(
        self,
        connection: Any,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        size_limit: int = 0,
        scope: str = ldap3.SUBTREE,
    ) -> list[tuple[str, Any]]:
        """(dn, attributes) of the entries found under base, never outside it."""
        try:
            connection.search(
                base,
                search_filter,
                search_scope=scope,
                dereference_aliases=ldap3.DEREF_NEVER,
                attributes=list(attributes),
                size_limit=size_limit,
                time_limit=max(1, round(self.settings.timeout)),
            )
        except (LDAPCommunicationError, LDAPCertificateError) as exc:
            raise DirectoryError(
                f"directory unreachable: {self.settings.url}: {_message(exc)}"
            ) from exc
        except LDAPException as exc:
            raise DirectoryError(f"directory error: search under {base}: {_message(exc)}") from exc
        code = connection.result.get("result")
        if code == NO_SUCH_OBJECT:
            raise DirectoryError(f"directory error: search base {base} does not exist")
        if code not in (0, SIZE_LIMIT_EXCEEDED):
            raise DirectoryError(
                f"directory error: search under {base} failed ({_describe(connection.result)})"
            )
        found = []
        for item in connection.response or []:
            if item.get("type") == "searchResEntry" and _is_under(item["dn"], base):
                found.append((str(item["dn"]), item.get("attributes", {})))
        return found

    # --- users and groups ---------------------------------------------------------------

    def _partition(self, name: str) -> LdapPartition:
        for partition in self.settings.partitions:
            if partition.name == name:
                return partition
        raise ValueError(f"no LDAP partition named {name!r}")

    def _user_attributes(self) -> list[str]:
        return [self.settings.username_attribute, *_USER_ATTRIBUTES]

    def _groups(
        self, connection: Any, partition: LdapPartition, dn: str, username: str, attributes: Any
    ) -> frozenset[str]:
        """Group names (cn) from group_filter under the partition's base, plus memberOf."""
        names: set[str] = set()
        group_filter = self.settings.group_filter.format(
            user_dn=escape_filter_chars(dn), username=escape_filter_chars(username)
        )
        for _, group in self._search(connection, partition.search_base, group_filter, ["cn"]):
            cn = _first(group, "cn")
            if cn is not None:
                names.add(cn)
        if self.settings.use_member_of:
            for group_dn in _values(attributes, "memberOf"):
                if _is_under(group_dn, partition.search_base):
                    rdn = parse_dn(group_dn)[0]
                    names.add(str(rdn[1]))
        return frozenset(names)

    def _user(
        self, connection: Any, partition: LdapPartition, dn: str, attributes: Any, fallback: str
    ) -> DirectoryUser:
        username = _first(attributes, self.settings.username_attribute) or fallback
        return DirectoryUser(
            username=username,
            display_name=_first(attributes, "displayName") or _first(attributes, "cn") or username,
            email=_first(attributes, "mail"),
            dn=dn,
            partition=partition.name,
            groups=self._groups(connection, partition, dn, username, attributes),
        )

    def authenticate(
        self, username: str, password: str, *, partition: str | None = None
    ) -> DirectoryUser:
        """The user, if the password is theirs; SignInRefused(reason) otherwise.

        A name found in several partitions is refused unless `partition` says which: trying
        the password on each would count failed binds (and lock-outs) against strangers.
        """
        if not username.strip():
            raise SignInRefused("no such user")
        if not password:
            # A simple bind with a DN and no password is an "unauthenticated bind" (RFC 4513
            # 5.1.2), which many directories answer with success.
            raise SignInRefused("empty password")
        partitions = (
            self.settings.partitions if partition is None else (self._partition(partition),)
        )
        user_filter = self.settings.user_filter.format(username=escape_filter_chars(username))
        try:
            with self._service() as service:
                found = [
                    (where, dn, attributes)
                    for where in partitions
                    for dn, attributes in self._search(
                        service,
                        where.search_base,
                        user_filter,
                        self._user_attributes(),
                        size_limit=2,
                    )
                ]
                if not found:
                    raise SignInRefused("no such user")
                if len(found) > 1:
                    places = ", ".join(sorted({where.name for where, _, _ in found}))
                    raise SignInRefused(f"ambiguous user name: {len(found)} entries in {places}")
                where, dn, attributes = found[0]
                self._check_password(dn, password)
                return self._user(service, where, dn, attributes, username)
        except DirectoryError as exc:
            raise SignInRefused(str(exc), directory_fault=True) from exc

    def _check_password(self, dn: str, password: str) -> None:
        with self._bound(dn, password) as connection:
            if connection.bound:
                return
            if connection.result.get("result") == INVALID_CREDENTIALS:
                raise SignInRefused("wrong password")
            raise SignInRefused(
                f"the directory refused the sign-in ({_describe(connection.result)})"
            )

    def lookup(self, username: str, partition: str | None = None) -> DirectoryUser | None:
        """The user of exactly this name, with their groups now (of one partition, or of any
        when None), or None: how a sign-in is checked again after it was given. No password:
        the service account searches. DirectoryError if the directory cannot be asked."""
        if not username.strip():
            return None
        try:
            partitions = (
                self.settings.partitions if partition is None else (self._partition(partition),)
            )
        except ValueError:  # a partition no longer configured: nobody is in it
            return None
        user_filter = self.settings.user_filter.format(username=escape_filter_chars(username))
        with self._service() as service:
            for where in partitions:
                found = self._search(
                    service, where.search_base, user_filter, self._user_attributes(), size_limit=1
                )
                if found:
                    dn, attributes = found[0]
                    return self._user(service, where, dn, attributes, username)
        return None

    def find_users(self, text: str, partition: str, *, limit: int = 20) -> list[DirectoryUser]:
        """Users of one partition whose name, id or mail contains text (the moderator picker).

        At most `limit` users, each with their groups (one search more per user).
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where = self._partition(partition)
        everyone = self.settings.user_filter.format(username="*")
        text = text.strip()
        search_filter = everyone
        if text:
            matching = self.settings.find_filter.format(text=escape_filter_chars(text))
            search_filter = f"(&{everyone}{matching})"
        with self._service() as service:
            found = self._search(
                service, where.search_base, search_filter, self._user_attributes(), size_limit=limit
            )
            users = [self._user(service, where, dn, attributes, "") for dn, attributes in found]
        return sorted(users, key=lambda user: (user.display_name.casefold(), user.username))

    def check(self) -> None:
        """Bind as the service account and search each partition; DirectoryError if anything fails.

        For `moot` startup and diagnostics: it also tries each filter, so a filter the
        directory rejects shows up here, not at the first sign-in.
        """
        probe = self.settings.user_filter.format(username=escape_filter_chars("moot-check"))
        with self._service() as service:
            for partition in self.settings.partitions:
                self._search(
                    service, partition.search_base, "(objectClass=*)", ["1.1"], scope=ldap3.BASE
                )
                self._search(service, partition.search_base, probe, ["1.1"], size_limit=1)
                groups = self.settings.group_filter.format(
                    user_dn=escape_filter_chars(f"uid=moot-check,{partition.search_base}"),
                    username=escape_filter_chars("moot-check"),
                )
                self._search(service, partition.search_base, groups, ["1.1"], size_limit=1)


def _close(connection: Any) -> None:
    """Unbind and close the socket: ldap3 leaves it open when opening or StartTLS fails."""
    with suppress(LDAPException, OSError):
        if connection.bound:
            connection.unbind()
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with suppress(OSError):
            sock.close()


def _message(exc: BaseException) -> str:
    """ldap3's message without the tuple reprs it nests messages in."""
    text = str(exc)
    for _ in range(4):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            break
        if isinstance(value, tuple) and value:
            value = value[0]
        if not isinstance(value, str) or value == text:
            break
        text = value
    return text


def _describe(result: Any) -> str:
    """An LDAP result as 'description: message' for reports."""
    if not isinstance(result, dict):
        return str(result)
    description = result.get("description") or f"code {result.get('result')}"
    message = result.get("message")
    return f"{description}: {message}" if message else str(description)
