"""The Range header a media element sends to seek in a recording's file."""

from __future__ import annotations

import pytest

from moot.ems.web.attend import byte_range


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        ("bytes=0-3", (0, 3)),
        ("bytes=5-", (5, 9)),
        ("bytes=8-100", (8, 9)),  # past the end: up to the end
        ("", None),
        ("bytes=10-", None),  # starts past the end: the whole file instead
        ("bytes=4-2", None),
        ("bytes=-3", None),  # a suffix range: not asked by media elements, whole file
        ("items=0-3", None),
    ],
)
def test_byte_range(header: str, wanted: tuple[int, int] | None) -> None:
    assert byte_range(header, 10) == wanted
