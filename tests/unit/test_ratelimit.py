"""The chat rate limit: a token bucket per person (moot.room.ratelimit), on a clock we give."""

from __future__ import annotations

from moot.room.ratelimit import RateLimits, TokenBucket, burst_of


def test_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(per_minute=60, burst=10)
    assert [bucket.take(100.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert bucket.wait(100.0) == 1.0  # one a second at 60 a minute
    assert bucket.take(100.5) is False
    assert bucket.take(101.0) is True  # a second later, one more
    assert bucket.take(101.0) is False
    # A pause fills it up to the burst, never beyond.
    assert sum(bucket.take(1000.0) for _ in range(20)) == 10


def test_the_burst_is_ten_seconds_worth() -> None:
    assert [burst_of(n) for n in (1, 6, 7, 60, 600)] == [1, 1, 2, 10, 100]


def test_each_person_has_their_own_and_a_new_limit_applies_at_once() -> None:
    limits = RateLimits()
    ann = [limits.take("guest:ann", 6, 10.0) for _ in range(2)]
    assert ann[0] == 0.0 and ann[1] == 10.0  # 6 a minute: one at once, then wait 10 s
    assert limits.take("user::bob", 6, 10.0) == 0.0  # bob is not held up by ann
    assert limits.take("guest:ann", 600, 10.0) == 0.0  # the administrator raised it
