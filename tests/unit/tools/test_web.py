"""Send web page: http(s) only, framed where the site allows it, else a link and why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moot.protocol.tools import MAX_URL_LENGTH, WebClose, WebShare
from moot.room.tools.base import Actor, Refused
from moot.room.tools.web.framing import refused_address, verdict
from moot.room.tools.web.state import TOOL, apply, view

MOD = Actor("Mia", "user::mia", "moderator")
ADA = Actor("Ada", "guest:a", "participant")


def test_a_presenter_shows_a_page_and_takes_it_off() -> None:
    event = WebShare(url=" https://example.org/a?b=c ", frameable=False, reason="no frames")
    state = apply(TOOL.initial(), event, MOD)
    assert view(state, ADA) == {
        "open": True,
        "url": "https://example.org/a?b=c",
        "frameable": False,
        "reason": "no frames",
        "by": "Mia",
    }
    assert view(apply(state, WebClose(), MOD), ADA) == {"open": False}


def test_only_presenters() -> None:
    with pytest.raises(Refused, match="only a presenter can send a web page"):
        apply(TOOL.initial(), WebShare(url="https://example.org/"), ADA)
    with pytest.raises(Refused, match="no web page is shown"):
        apply(TOOL.initial(), WebClose(), MOD)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("data:text/html,hi", "only http:// and https://"),
        ("ftp://example.org/", "only http:// and https://"),
        ("example.org", "only http:// and https://"),
        ("https:///path", "not a web address"),
        ("https://exa mple.org/", "not a web address"),
        ("https://example.org/" + "a" * MAX_URL_LENGTH, "at most"),
    ],
)
def test_bad_addresses_are_refused_with_a_sentence(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        WebShare(url=url)


@pytest.mark.parametrize(
    ("headers", "frameable"),
    [
        ({}, True),
        ({"x-frame-options": "DENY"}, False),
        ({"x-frame-options": "sameorigin"}, False),
        ({"x-frame-options": "ALLOW-FROM https://a"}, True),  # browsers ignore ALLOW-FROM
        ({"content-security-policy": "default-src 'self'; frame-ancestors 'none'"}, False),
        ({"content-security-policy": "frame-ancestors 'self' https://a.example"}, False),
        ({"content-security-policy": "frame-ancestors *", "x-frame-options": "DENY"}, True),
        ({"content-security-policy": "frame-ancestors https:"}, True),
        ({"content-security-policy": "default-src 'self'"}, True),
    ],
)
def test_the_verdict_reads_frame_ancestors_then_x_frame_options(
    headers: dict[str, str], frameable: bool
) -> None:
    ok, reason = verdict(headers)
    assert ok is frameable
    assert bool(reason) is not frameable


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", True),  # cloud metadata
        ("fe80::1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("127.0.0.1", False),  # intranet pages are what an enterprise meeting shows
        ("10.1.2.3", False),
        ("93.184.216.34", False),
    ],
)
def test_addresses_the_room_server_never_asks(address: str, refused: bool) -> None:
    assert refused_address(address) is refused
