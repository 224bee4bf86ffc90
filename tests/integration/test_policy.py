"""The default policy, least privilege where it matters, on SQLite and PostgreSQL.

Anonymous visitors may still browse, create, attend and change the details of meetings (the
seed's default); changing who moderates a meeting, its password or who may attend it, and
deleting it, is for its moderator and the administrators; a password-protected meeting's
files open with the password's proof (the capability of the meeting's own page), or for
those who may change its password.
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

AT = f"{today() + timedelta(days=3)}T10:00:00Z"
ANONYMOUS = {"Authorization": ""}


@pytest.fixture
def ems(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    for name, groups in (("bob", []), ("carol", []), ("alice", ["stadmins"])):
        asyncio.run(add_user(migrated_url, name, f"{name}-password", groups=groups))
    settings = EmsSettings(database_url=migrated_url, data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        yield client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token", json={"username": username, "password": f"{username}-password"}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def bobs_meeting(client: TestClient, **fields: Any) -> str:
    made = client.post(
        "/api/v1/meetings",
        json={"name": "Bob's", "start": AT, **fields},
        headers=bearer(client, "bob"),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


@pytest.mark.parametrize(
    "change", [{"moderator": "mallory"}, {"password": "mine"}, {"restricted_to": ["mallory"]}]
)
def test_only_the_moderator_changes_who_moderates_or_may_enter(
    ems: TestClient, change: dict[str, Any]
) -> None:
    meeting_id = bobs_meeting(ems)
    url = f"/api/v1/meetings/{meeting_id}"
    anonymous = ems.patch(url, json=change, headers=ANONYMOUS)
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"] == (
        "only the moderator may change this meeting's moderator, password or restriction"
    )
    assert ems.patch(url, json=change, headers=bearer(ems, "carol")).status_code == 403
    assert ems.get(url).json()["moderator"] == "bob"  # nothing changed
    assert ems.patch(url, json=change, headers=bearer(ems, "bob")).status_code == 200
    assert ems.patch(url, json=change, headers=bearer(ems, "alice")).status_code == 200


def test_anyone_may_still_change_the_rest_but_only_the_moderator_deletes(
    ems: TestClient,
) -> None:
    meeting_id = bobs_meeting(ems, password="s3cret")
    url = f"/api/v1/meetings/{meeting_id}"
    renamed = ems.patch(url, json={"name": "Bob's, renamed", "moderator": "bob"}, headers=ANONYMOUS)
    assert renamed.status_code == 200  # the same moderator is no change of moderator
    refused = ems.delete(url, headers=ANONYMOUS)
    assert refused.status_code == 401 and refused.json()["detail"] == (
        "only the moderator may delete this meeting"
    )
    assert ems.delete(url, headers=bearer(ems, "carol")).status_code == 403
    assert ems.delete(url, headers=bearer(ems, "bob")).status_code == 204


def test_the_change_form_leaves_access_to_the_moderator(ems: TestClient) -> None:
    meeting_id = bobs_meeting(ems, password="s3cret")
    page = ems.get(f"/meetings/{meeting_id}/edit", headers=ANONYMOUS)
    assert page.status_code == 200
    assert 'id="moderator" name="moderator" value="bob"' in page.text and "readonly" in page.text
    assert 'name="password"' not in page.text  # no password field to fill in
    assert "Only the moderator (or an administrator) may change the moderator" in page.text
    posted = ems.post(
        f"/meetings/{meeting_id}/edit",
        data=form_fields(
            ems,
            name="Taken over",
            moderator="mallory",
            start_mode="schedule",
            date=AT[:10],
            time="10:00",
            timezone="UTC",
            hours="1",
            minutes="0",
            expected_participants="5",
            type="collaboration",
            repeat="none",
        ),
        headers=ANONYMOUS,
    )
    assert posted.status_code == 422 and "only the moderator may change this" in posted.text
    detail = ems.get(f"/api/v1/meetings/{meeting_id}").json()
    assert (detail["name"], detail["moderator"]) == ("Bob's", "bob")


def test_a_password_protected_meetings_files_need_the_passwords_proof(ems: TestClient) -> None:
    meeting_id = bobs_meeting(ems, password="s3cret")
    bob = bearer(ems, "bob")
    uploaded = ems.post(
        f"/api/v1/meetings/{meeting_id}/files",
        files=[("file", ("agenda.txt", b"the agenda", "text/plain"))],
        headers=bob,
    )
    assert uploaded.status_code == 201, uploaded.text
    url = f"/api/v1/meetings/{meeting_id}/files/{uploaded.json()['items'][0]['id']}"
    refused = ems.get(url, headers=ANONYMOUS)
    assert refused.status_code == 401
    assert "open from inside the meeting" in refused.json()["detail"]
    assert ems.get(url, headers=bearer(ems, "carol")).status_code == 403
    assert ems.get(url, headers=bob).content == b"the agenda"
    assert ems.get(url, headers=bearer(ems, "alice")).content == b"the agenda"
    # The meeting's own page carries the proof that its holder got in, password and all.
    files = ems.app.state.ems.files  # type: ignore[attr-defined]
    row = ems.portal.call(ems.app.state.ems.meetings.get, meeting_id)  # type: ignore[union-attr,attr-defined]
    proof = files.capability(row, row.epoch)
    assert ems.get(url, params={"key": proof}, headers=ANONYMOUS).content == b"the agenda"
