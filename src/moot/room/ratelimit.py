"""How often one person may do something in a meeting: a token bucket per person. Pure.

A bucket holds up to `burst` tokens and gains `per_minute` of them a minute; each line
takes one. So a person may send a few lines at once (a paste, a quick answer) and then
`per_minute` a minute, however long they go on; one who sends 300 lines in a second gets
the burst through and the rest refused, each with the reason, not journaled, not shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    per_minute: int
    burst: int
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """One token if there is one (then True), refilled for the time since last asked."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until the next token."""
        self._refill(now)
        return max(0.0, (1 - self.tokens) * 60 / self.per_minute)

    def _refill(self, now: float) -> None:
        if self.updated:
            gained = (now - self.updated) * self.per_minute / 60
            self.tokens = min(float(self.burst), self.tokens + gained)
        self.updated = now


def burst_of(per_minute: int) -> int:
    """How many at once: ten seconds' worth, at least one."""
    return max(1, math.ceil(per_minute / 6))


class RateLimits:
    """One bucket per person (by key), made on first use with the limit of the moment."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, per_minute: int, now: float) -> float:
        """0 if the person may go ahead now; else the seconds until they may."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.per_minute != per_minute:  # a new limit applies at once
            bucket = self._buckets[key] = TokenBucket(per_minute, burst_of(per_minute))
        if bucket.take(now):
            return 0.0
        return bucket.wait(now)

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)
