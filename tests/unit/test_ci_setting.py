"""Which values of CI make a missing service a failure instead of a skip (tests/services.py)."""

from __future__ import annotations

import pytest

from tests.services import under_ci


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        (" False ", False),
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("github-actions", True),
    ],
)
def test_ci_is_any_value_but_empty_0_or_false(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert under_ci() is expected
