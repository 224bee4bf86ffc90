"""A form's CSRF token is bound to its browser's session (signed double-submit).

Before, the token was the CSRF cookie itself: whoever could plant a cookie in a victim's
browser (a sibling subdomain, a man in the middle of plain HTTP) planted their own pair and
posted forms as the victim. Now the token is an HMAC of the CSRF cookie and the sign-in
cookie under a secret of the EMS: the attacker's pair is worth nothing in the victim's
session, and a form made before signing in or out is refused after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.infra.settings import EmsSettings
from tests.integration.conftest import csrf_of


@pytest.fixture
def browser(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    asyncio.run(add_user(migrated_url, "bob", "bob-password"))
    settings = EmsSettings(database_url=migrated_url, data_dir=tmp_path / "data")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def new_meeting(browser: TestClient, csrf: str, name: str) -> int:
    form = {"csrf": csrf, "name": name, "start_mode": "schedule", "date": "2999-01-01"}
    form |= {"time": "09:00", "timezone": "UTC", "hours": "1", "minutes": "0"}
    return browser.post("/meetings/new", data=form).status_code


def test_an_attackers_token_is_worth_nothing_in_the_victims_session(browser: TestClient) -> None:
    # The attacker's own browser: a CSRF cookie and the token of its forms.
    attacker_token = csrf_of(browser)
    attacker_cookie = browser.cookies["moot_csrf"]
    browser.cookies.clear()

    # The victim signs in.
    signed = browser.post(
        "/signin",
        data={"csrf": csrf_of(browser), "username": "bob", "password": "bob-password"},
    )
    assert signed.status_code == 303 and "moot_session" in browser.cookies
    own_token = csrf_of(browser)

    # The attacker plants their CSRF cookie and sends their token: refused.
    browser.cookies.delete("moot_csrf")
    browser.cookies.set("moot_csrf", attacker_cookie)
    assert new_meeting(browser, attacker_token, "Planted") == 403
    # Anything but the token of the cookies sent is refused, the cookie itself too.
    assert new_meeting(browser, attacker_cookie, "Cookie as token") == 403
    assert browser.get("/api/v1/meetings").json()["items"] == []

    # The victim's own pages carry the token of the victim's own cookies.
    browser.cookies.clear()
    signed = browser.post(
        "/signin",
        data={"csrf": csrf_of(browser), "username": "bob", "password": "bob-password"},
    )
    own_token = csrf_of(browser)
    assert new_meeting(browser, own_token, "Mine") == 303

    # Signed out, a form of the signed-in session no longer goes through.
    browser.post("/signout", data={"csrf": own_token})
    assert "moot_session" not in browser.cookies
    assert new_meeting(browser, own_token, "After sign-out") == 403
    names = [m["name"] for m in browser.get("/api/v1/meetings").json()["items"]]
    assert names == ["Mine"]
