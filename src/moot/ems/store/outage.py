"""What a background loop of the EMS says when the store fails it: while PostgreSQL is
restarted or out of reach, one line when it goes (why, once per loop) and one when it is
back, not a traceback every round; anything else is a fault of ours, with its traceback.
"""

from __future__ import annotations

import logging

from moot.ems.store.reaching import why

# asyncpg's errors of a server that went away or is not up yet (SQLSTATE class 08, the
# 57P shutdown and start-up states), by name: the driver's classes are wrapped by
# SQLAlchemy's and chained, so the chain is looked through.
_AWAY_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "ConnectionFailureError",
        "ClientCannotConnectError",
        "PostgresConnectionError",
    }
)
_AWAY_TEXT = ("connection is closed", "connection was closed", "the database system is")


def store_away(exc: BaseException) -> bool:
    """Whether `exc` says the store cannot be reached now (rather than a fault of ours)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError):
            return True
        if type(current).__name__ in _AWAY_NAMES:
            return True
        if any(text in str(current) for text in _AWAY_TEXT):
            return True
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False


class StoreOutage:
    """One loop's say about the store: `failed(exc)` in its except, `worked()` after a
    round that reached the store."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self.away = False

    def failed(self, exc: BaseException) -> None:
        if not store_away(exc):
            self._log.error("%s failed", self._what, exc_info=exc)
            return
        if not self.away:
            self.away = True
            self._log.warning(
                "%s: the database cannot be reached (%s); trying again", self._what, why(exc)
            )

    def worked(self) -> None:
        if self.away:
            self.away = False
            self._log.info("%s: the database answers again", self._what)
