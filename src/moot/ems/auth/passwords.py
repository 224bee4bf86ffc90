"""Local users' passwords: argon2id hashes through argon2-cffi.

Parameters: RFC 9106's second recommended ("low memory") profile: argon2id, t=3 iterations,
64 MiB of memory, 4 lanes, 16-byte salt, 32-byte tag; 120-135 ms a hash or a verification on
a 2-core test machine. It is also argon2-cffi's default since 21.2; it is named here so that a
change of the library's default shows up as `needs_rehash`, not as a silent change. RFC 9106's
first profile (2 GiB) would let a few concurrent sign-ins exhaust an EMS's memory.

The stored form is the PHC string (`$argon2id$v=19$m=65536,t=3,p=4$salt$hash`), which carries
its own parameters, so hashes made with older parameters still verify.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


@cache
def _dummy_hash() -> str:
    """Verified against for unknown users, so "no such user" takes as long as "wrong password"."""
    return _HASHER.hash("moot: no such user")


def hash_password(password: str) -> str:
    """A new argon2id hash (with a new random salt) of password, as a PHC string."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether password matches the stored hash; False for a mismatch or a malformed hash.

    argon2-cffi compares in constant time. It never raises for a bad password or hash.
    """
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError, ValueError):
        # VerifyMismatchError is a VerificationError; a hash of another algorithm or a
        # damaged string is an InvalidHashError; a non-ASCII one a UnicodeEncodeError.
        return False


def needs_rehash(stored: str) -> bool:
    """Whether stored was made with other parameters than today's (rehash at next sign-in).

    A malformed hash needs one too (it can never verify).
    """
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def verify_unknown_user(password: str) -> bool:
    """Spend the time of one verification and return False: for a user name that does not exist."""
    verify_password(_dummy_hash(), password)
    return False
