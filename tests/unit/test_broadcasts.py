"""The pure parts of messages to all users: the text, the expiry, the events' wire form."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from datetime import UTC, datetime, timedelta
from types import FrameType

import pytest

from moot.ems.broadcasts import Broadcast, broadcast_chunk, checked_text, ended_chunk, expiry
from moot.ems.errors import InvalidChange
from moot.infra.streams import ExitSignals, event

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_text_is_trimmed_and_between_1_and_2000_characters() -> None:
    assert checked_text("  hello\nworld \t") == "hello\nworld"
    assert checked_text("x" * 2000 + "   ") == "x" * 2000
    for bad, words in (("", "write the message"), (" \n ", "write the message")):
        with pytest.raises(InvalidChange, match=words) as refused:
            checked_text(bad)
        assert refused.value.field == "text"
    with pytest.raises(InvalidChange, match=r"at most 2,000 characters \(this one has 2,001\)"):
        checked_text("x" * 2001)


def test_expiry_defaults_to_an_hour_and_stays_within_a_week() -> None:
    assert expiry(NOW) == NOW + timedelta(hours=1)
    assert expiry(NOW, show_for=timedelta(minutes=15)) == NOW + timedelta(minutes=15)
    assert expiry(NOW, until=NOW + timedelta(days=7)) == NOW + timedelta(days=7)
    for until, words in (
        (NOW, "expired already"),
        (NOW - timedelta(seconds=1), "expired already"),
        (NOW + timedelta(days=7, seconds=1), "at most 7 days"),
    ):
        with pytest.raises(InvalidChange, match=words):
            expiry(NOW, until=until)
    with pytest.raises(InvalidChange, match="not both"):
        expiry(NOW, until=NOW + timedelta(hours=2), show_for=timedelta(hours=1))


def test_events_are_one_line_of_json_each_whatever_the_text() -> None:
    message = Broadcast(7, "line one\n\ndata: fake\n", "alice", NOW, NOW + timedelta(hours=1))
    chunk = broadcast_chunk(message)
    lines = chunk.split("\n")
    assert lines[:2] == ["id: 7", "event: broadcast"] and chunk.endswith("\n\n")
    assert lines[2].startswith("data: ") and lines[3:] == ["", ""]
    assert json.loads(lines[2].removeprefix("data: ")) == {
        "id": 7,
        "text": "line one\n\ndata: fake\n",
        "sent_at": "2026-12-02T09:00:00+00:00",
        "expires_at": "2026-12-02T10:00:00+00:00",
    }  # who sent it is not for the pages
    assert ended_chunk(7) == 'event: ended\ndata: {"id":7}\n\n'
    assert message.showing(NOW) and not message.showing(NOW + timedelta(hours=1))


def test_control_characters_are_refused_line_breaks_and_tabs_kept() -> None:
    assert checked_text("one\r\ntwo\tthree") == "one\r\ntwo\tthree"
    for bad, shown in (("a\x00b", "U+0000"), ("a\x1bb", "U+001B"), ("a\x7fb", "U+007F")):
        with pytest.raises(InvalidChange, match=rf"control character {re.escape(shown)}") as no:
            checked_text(bad)
        assert no.value.field == "text"


def test_one_exit_watcher_for_every_stream_restores_the_handler_once() -> None:
    """Streams of both kinds register with the one watcher: a signal reaches each, then the
    handler that was there before; whichever closes last, that handler is back."""
    calls: list[str] = []

    def before(signum: int, frame: FrameType | None) -> None:
        calls.append(f"before {signum}")

    async def scenario(first_closes: str) -> None:
        watch = ExitSignals()
        unwatch = {
            "monitor": watch.register(lambda: calls.append("monitor")),
            "broadcasts": watch.register(lambda: calls.append("broadcasts")),
        }
        assert signal.getsignal(signal.SIGTERM) != before  # the watcher's, chaining
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)  # the callbacks run in the loop
        assert sorted(calls) == ["before 15", "broadcasts", "monitor"]
        calls.clear()
        unwatch[first_closes]()
        assert signal.getsignal(signal.SIGTERM) != before  # the other stream still watches
        for done in unwatch.values():
            done()
            done()  # twice is harmless
        assert signal.getsignal(signal.SIGTERM) == before
        assert signal.getsignal(signal.SIGINT) == before

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for first in ("monitor", "broadcasts"):
            for sig in saved:
                signal.signal(sig, before)
            asyncio.run(scenario(first))
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_server_sent_event_is_one_data_line() -> None:
    assert event("ended", {"id": 3, "t": "a\nb"}) == 'event: ended\ndata: {"id":3,"t":"a\\nb"}\n\n'
    assert event("x", {}, 7).startswith("id: 7\nevent: x\n")
