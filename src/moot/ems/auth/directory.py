"""What signing in against a directory answers, without the directory's client: the EMS
imports this always, and ldap3 (moot.ems.auth.ldap, a tenth of the EMS's start-up) only
when LDAP is configured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DirectoryUser:
    """A signed-in or found user, as the directory knows them."""

    username: str
    display_name: str
    email: str | None
    dn: str
    partition: str
    groups: frozenset[str]


class DirectoryError(Exception):
    """The directory cannot be used: unreachable, TLS refused, service account refused..."""


class SignInRefused(Exception):
    """A sign-in failed; `reason` is for the login-failure report, never for the browser.

    `directory_fault` is True when the directory, not the user, failed (unreachable,
    misconfigured), so throttling need not count it against the user.
    """

    def __init__(self, reason: str, *, directory_fault: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.directory_fault = directory_fault
