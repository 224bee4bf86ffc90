"""Errors the services raise, each with a code; `moot.ems.web.errors` turns a code into an
HTTP answer (JSON under /api/, a page elsewhere). Code decides on the code, never on the
message, which is for people."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Code(StrEnum):
    """What went wrong, in words a program can compare."""

    MEETING_NOT_FOUND = "meeting_not_found"
    SERVER_NOT_FOUND = "server_not_found"
    FILE_NOT_FOUND = "file_not_found"
    NOT_RECORDED = "not_recorded"
    NOT_PERMITTED = "not_permitted"  # 401 or 403: signed in or not
    NOT_ALLOWED = "not_allowed"  # no valid proof of who is asking (a join or rejoin)
    CANNOT_ATTEND = "cannot_attend"
    SERVER_CONFLICT = "server_conflict"
    UNAVAILABLE = "unavailable"
    INVALID_CHANGE = "invalid_change"
    INVALID_QUERY = "invalid_query"
    FILE_REFUSED = "file_refused"
    SIGN_IN_REFUSED = "sign_in_refused"
    TOO_MANY = "too_many"


class DomainError(Exception):
    """A service's refusal; `code` says which, `str()` tells the person why."""

    code: ClassVar[Code]


class MeetingNotFound(DomainError):
    """No meeting of this id (or none the asker may know of: another partition's)."""

    code = Code.MEETING_NOT_FOUND


class InvalidChange(DomainError, ValueError):
    """Well-formed but not allowed now; `field` names the culprit (HTTP 422)."""

    code = Code.INVALID_CHANGE

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidQuery(DomainError, ValueError):
    """A query parameter that parsed but cannot be used (HTTP 422)."""

    code = Code.INVALID_QUERY

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
