"""A list shows only what its reader may open: search, the calendar (API and page), the home
page, calendar feeds and the "created" notice, on SQLite and PostgreSQL.

A meeting restricted to a group is seen by that group's members, its moderator and the
administrators; an unlisted one is in no list at all (its moderator's own feed aside). The
personal calendar feed is a secret address per person (stored as a hash, made anew or
stopped at will), or the person signed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.infra.settings import EmsSettings
from tests.dates import today
from tests.integration.conftest import form_fields

DAY = today() + timedelta(days=2)
AT = f"{DAY}T09:00:00Z"
RANGE = {"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:59Z"}
PASSWORDS = {"admin": "admin-password", "hr": "hr-password", "bob": "bob-password"}


@pytest.fixture
def ems(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    asyncio.run(add_user(migrated_url, "admin", PASSWORDS["admin"], groups=["stadmins"]))
    asyncio.run(add_user(migrated_url, "hr", PASSWORDS["hr"], groups=["hr-board"]))
    asyncio.run(add_user(migrated_url, "bob", PASSWORDS["bob"]))
    settings = EmsSettings(
        database_url=migrated_url, data_dir=tmp_path / "data", cluster_secret="secret"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token", json={"username": username, "password": PASSWORDS[username]}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def schedule(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/meetings", json={"start": AT, **fields}, headers=headers)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture
def meetings(ems: TestClient) -> dict[str, str]:
    """Tomorrow's meetings, by what they are: their ids."""
    admin = bearer(ems, "admin")
    return {
        "public": schedule(ems, admin, name="Town hall")["id"],
        "hr": schedule(ems, admin, name="Salaries review", restricted_to=["HR-Board"])["id"],
        "bob": schedule(ems, admin, name="Probation talk", restricted_to=["bob"])["id"],
        "unlisted": schedule(ems, admin, name="Offsite planning", unlisted=True)["id"],
        # bob moderates a meeting restricted to a group he is not in: it is his all the same.
        "bobs": schedule(ems, admin, name="Budget of hr", moderator="bob", restricted_to=["hr"])[
            "id"
        ],
    }


NAMES = {
    "public": "Town hall",
    "hr": "Salaries review",
    "bob": "Probation talk",
    "unlisted": "Offsite planning",
    "bobs": "Budget of hr",
}
# Who sees which, in every list (the unlisted one in none).
SEES = {
    "anonymous": {"public"},
    "bob": {"public", "bob", "bobs"},
    "hr": {"public", "hr", "bobs"},
    "admin": {"public", "hr", "bob", "bobs"},
}


def who(ems: TestClient, reader: str) -> dict[str, str]:
    return {"Authorization": ""} if reader == "anonymous" else bearer(ems, reader)


@pytest.mark.parametrize("reader", sorted(SEES))
def test_api_search_and_calendar_show_only_what_the_reader_may_open(
    ems: TestClient, meetings: dict[str, str], reader: str
) -> None:
    headers = who(ems, reader)
    expected = {NAMES[m] for m in SEES[reader]}
    listed = ems.get("/api/v1/meetings", params={"limit": 100}, headers=headers).json()["items"]
    assert {m["name"] for m in listed} == expected
    for text in ("Salaries", "Probation", "Offsite", "Budget", "hall"):
        found = ems.get("/api/v1/meetings", params={"q": text}, headers=headers).json()["items"]
        assert {m["name"] for m in found} == {n for n in expected if text in n}, text
    calendar = ems.get("/api/v1/calendar", params=RANGE, headers=headers).json()
    assert {o["name"] for o in calendar} == expected


@pytest.mark.parametrize("reader", sorted(SEES))
def test_the_pages_show_only_what_the_reader_may_open(
    ems: TestClient, meetings: dict[str, str], reader: str
) -> None:
    if reader != "anonymous":  # the pages' sign-in, as a browser does
        ems.post(
            "/signin",
            data=form_fields(ems, username=reader, password=PASSWORDS[reader], next="/"),
        )
    home = ems.get("/").text
    pages = [
        ems.get("/calendar", params={"month": f"{DAY:%Y-%m}"}).text,
        ems.get("/calendar", params={"day": f"{DAY}"}).text,
    ]
    for key, name in NAMES.items():
        searched = ems.get("/calendar", params={"day": f"{DAY}", "q": name[:5]}).text
        for page in [*pages, searched]:
            assert (name in page) is (key in SEES[reader]), (reader, name)
        if key in SEES[reader]:
            continue
        assert name not in home
        # "Created" names a meeting only to whoever may open it (administrators: any, the
        # unlisted one too, which is in no list).
        created = ems.get("/", params={"created": meetings[key]}).text
        assert (name in created) is (reader == "admin")


def test_personal_feeds_are_secret_addresses(ems: TestClient, meetings: dict[str, str]) -> None:
    admin = bearer(ems, "admin")
    # A person's name no longer opens their feed: it listed everything they moderate.
    assert ems.get("/calendar/admin.ics", headers={"Authorization": ""}).status_code == 401
    assert ems.get("/calendar/admin.ics", headers=bearer(ems, "bob")).status_code == 403
    own = ems.get("/calendar/admin.ics", headers=admin)  # signed in: one's own
    assert own.status_code == 200 and "SUMMARY:Salaries review" in own.text

    made = ems.post("/api/v1/calendar/feed", headers=admin)
    assert made.status_code == 201
    url = made.json()["url"]
    secret_path = url.split("://", 1)[1].split("/", 1)[1]
    feed = ems.get(f"/{secret_path}", headers={"Authorization": ""})  # a calendar program
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    # Everything admin moderates, unlisted included (it is theirs); bob's meeting not.
    for name in ("Town hall", "Salaries review", "Probation talk", "Offsite planning"):
        assert f"SUMMARY:{name}" in feed.text
    assert "SUMMARY:Budget of hr" not in feed.text
    # A new address ends the old one; stopping ends both.
    newer = ems.post("/api/v1/calendar/feed", headers=admin).json()["url"]
    assert ems.get(f"/{secret_path}").status_code == 404
    newer_path = newer.split("://", 1)[1].split("/", 1)[1]
    assert ems.get(f"/{newer_path}").status_code == 200
    assert ems.delete("/api/v1/calendar/feed", headers=admin).status_code == 204
    assert ems.get(f"/{newer_path}").status_code == 404
    assert ems.post("/api/v1/calendar/feed", headers={"Authorization": ""}).status_code == 401
    # bob's own feed: his meeting, restricted to a group he is not in, and no other.
    bobs = ems.post("/api/v1/calendar/feed", headers=bearer(ems, "bob")).json()["url"]
    bob_feed = ems.get("/" + bobs.split("://", 1)[1].split("/", 1)[1]).text
    assert "SUMMARY:Budget of hr" in bob_feed and "SUMMARY:Town hall" not in bob_feed


def test_a_person_who_may_no_longer_open_a_meeting_no_longer_finds_it(
    ems: TestClient, meetings: dict[str, str]
) -> None:
    """The restriction is kept in SQL from every change: a meeting restricted later drops
    out of the lists of those it no longer names."""
    admin, bob = bearer(ems, "admin"), bearer(ems, "bob")
    assert "Town hall" in {
        m["name"] for m in ems.get("/api/v1/meetings", headers=bob).json()["items"]
    }
    changed = ems.patch(
        f"/api/v1/meetings/{meetings['public']}",
        json={"restricted_to": ["hr-board"]},
        headers=admin,
    )
    assert changed.status_code == 200
    names = {m["name"] for m in ems.get("/api/v1/meetings", headers=bob).json()["items"]}
    assert "Town hall" not in names
    hr_names = {
        m["name"] for m in ems.get("/api/v1/meetings", headers=bearer(ems, "hr")).json()["items"]
    }
    assert "Town hall" in hr_names
