"""Waiting at start for a service that is down (or not up yet: machines start in any
order): one line per try naming what was tried and why, then again after 0.5, 1, 2, 4, 8
and then every 10 seconds, instead of a traceback and an exit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

RETRY_FIRST, RETRY_MOST = 0.5, 10.0


async def until_reached(
    attempt: Callable[[], Awaitable[None]],
    *,
    what: str,
    errors: tuple[type[BaseException], ...],
    log: logging.Logger,
    reason: Callable[[BaseException], str] = lambda exc: str(exc) or type(exc).__name__,
    first: float = RETRY_FIRST,
    most: float = RETRY_MOST,
) -> None:
    """Run `attempt` until it raises none of `errors`; `what` names the service and its
    address ("the database at postgresql://..."), without secrets."""
    wait, tries = first, 0
    while True:
        tries += 1
        try:
            await attempt()
        except errors as exc:
            log.error("cannot reach %s: %s; trying again in %.1f s", what, reason(exc), wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, most)
            continue
        if tries > 1:
            log.info("reached %s", what)
        return
