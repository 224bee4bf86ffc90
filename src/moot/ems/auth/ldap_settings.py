"""How the EMS reaches its LDAP directory: the server, the bind, the partitions (one search
base each) and the filters that find users and groups."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LdapPartition:
    """One search base; its users see only its users and its meetings."""

    name: str
    search_base: str


@dataclass(frozen=True)
class LdapSettings:
    """How to reach the directory and find users and groups in it.

    `user_filter` gets `{username}`; `group_filter` gets `{user_dn}` and `{username}` (for
    posixGroup's memberUid); `find_filter` gets `{text}` and is ANDed with `user_filter` for
    the moderator picker. All values are escaped before they go in. `use_member_of` adds the
    groups named by the user's memberOf attribute (only those under the partition's base).
    Plain `ldap://` without `start_tls` sends passwords in clear: for loopback and tests only.
    """

    url: str
    bind_dn: str
    bind_password: str
    partitions: tuple[LdapPartition, ...]
    user_filter: str = "(&(objectClass=inetOrgPerson)(uid={username}))"
    group_filter: str = "(&(objectClass=groupOfNames)(member={user_dn}))"
    start_tls: bool = False
    ca_file: str | None = None
    timeout: float = 5.0
    username_attribute: str = "uid"
    find_filter: str = "(|(uid=*{text}*)(cn=*{text}*)(displayName=*{text}*)(mail=*{text}*))"
    use_member_of: bool = False

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme.lower()
        if scheme not in ("ldap", "ldaps"):
            raise ValueError(f"LDAP url must start with ldap:// or ldaps://, not {self.url!r}")
        if not urlsplit(self.url).hostname:
            raise ValueError(f"LDAP url {self.url!r} names no host")
        if scheme == "ldaps" and self.start_tls:
            raise ValueError("start_tls is for ldap:// urls; ldaps:// is TLS from the start")
        if self.ca_file is not None and scheme != "ldaps" and not self.start_tls:
            raise ValueError(
                "ca_file is set but the connection uses no TLS (ldaps:// or start_tls)"
            )
        if not self.bind_dn:
            raise ValueError("bind_dn (the service account) is required")
        if not self.partitions:
            raise ValueError("at least one partition (search base) is required")
        names = [p.name for p in self.partitions]
        if len(set(names)) != len(names):
            raise ValueError(f"partition names must be unique: {names}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        for template, fields in (
            (self.user_filter, {"username": "x"}),
            (self.group_filter, {"user_dn": "x", "username": "x"}),
            (self.find_filter, {"text": "x"}),
        ):
            try:
                template.format(**fields)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"bad placeholder in filter {template!r}: {exc}") from exc
        if "{username}" not in self.user_filter:
            raise ValueError("user_filter must contain {username}")

    @property
    def tls(self) -> bool:
        return self.start_tls or urlsplit(self.url).scheme.lower() == "ldaps"
