"""REST API v1 in process, on SQLite and PostgreSQL: validation, search, paging, servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.dates import monday_weeks_ahead
from tests.integration.conftest import form_fields

IN_AN_HOUR = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


def schedule(api: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Planning", "start": IN_AN_HOUR.isoformat(), **fields}
    response = api.post("/api/v1/meetings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def field_errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {
        str(e["loc"][1] if len(e["loc"]) > 1 else e["loc"][0]): e["msg"]
        for e in response.json()["detail"]
    }


def test_schedule_get_patch_delete(api: TestClient) -> None:
    meeting = schedule(
        api,
        moderator="Alice",
        expected_participants=12,
        duration_minutes=90,
        recurrence="RRULE:FREQ=WEEKLY;COUNT=4",
        record=True,
        password="pw",
        tools=["chat", "chat", "polls"],
    )
    assert meeting["status"] == "scheduled"
    assert meeting["end"] == (IN_AN_HOUR + timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    assert meeting["has_password"] is True and "password" not in meeting
    assert meeting["tools"] == ["chat", "polls"]
    assert meeting["recurrence"] == "FREQ=WEEKLY;COUNT=4"  # stored without "RRULE:"
    got = api.get(f"/api/v1/meetings/{meeting['id']}").json()
    assert got["name"] == "Planning" and got["attendance"] == []

    patched = api.patch(
        f"/api/v1/meetings/{meeting['id']}",
        json={"name": "Planning II", "duration_minutes": 30, "password": ""},
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Planning II"
    assert patched.json()["has_password"] is False
    assert patched.json()["end"].startswith(
        (IN_AN_HOUR + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    )

    assert api.delete(f"/api/v1/meetings/{meeting['id']}").status_code == 204
    assert api.get(f"/api/v1/meetings/{meeting['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "type": "webinar"}, "type"),
        ({"name": "ok", "expected_participants": 0}, "expected_participants"),
        ({"name": "ok", "duration_minutes": 0}, "duration_minutes"),
        ({"name": "ok", "duration_minutes": 24 * 60 + 1}, "duration_minutes"),
        # A time without its zone, next year (a date fixed in a test would one day be past).
        ({"name": "ok", "start": f"{monday_weeks_ahead(52).isoformat()}T09:00:00"}, "start"),
        ({"name": "ok", "start": "tomorrow"}, "start"),
        ({"name": "ok", "start": "2001-01-01T09:00:00+00:00"}, "start"),
        ({"name": "ok", "recurrence": "FREQ=SOMETIMES"}, "recurrence"),
        ({"name": "ok", "tools": ["teleporter"]}, "tools"),
        ({"name": "ok", "colour": "blue"}, "colour"),
    ],
)
def test_bad_meeting_input_names_the_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    errors = field_errors(api.post("/api/v1/meetings", json=body))
    assert field in errors or any(field in key for key in errors), errors
    assert api.get("/api/v1/meetings").json()["items"] == []  # nothing saved


def test_malformed_json_is_a_4xx(api: TestClient) -> None:
    response = api.post(
        "/api/v1/meetings", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_unknown_ids_are_404(api: TestClient) -> None:
    assert api.get("/api/v1/meetings/nope").status_code == 404
    assert api.patch("/api/v1/meetings/nope", json={"name": "x"}).status_code == 404
    assert api.delete("/api/v1/meetings/nope").status_code == 404
    assert api.post("/api/v1/meetings/nope/end").status_code == 404
    assert api.get("/api/v1/servers/nope").status_code == 404
    assert api.post("/api/v1/servers/nope/drain").status_code == 404
    assert api.delete("/api/v1/servers/nope").status_code == 404
    assert "not found" in api.get("/api/v1/meetings/nope").json()["detail"]
    assert api.get("/m/nope").status_code == 404


def test_instant_meeting_without_servers_is_refused_and_not_saved(api: TestClient) -> None:
    response = api.post("/api/v1/meetings", json={"name": "Now please"})
    assert response.status_code == 503
    assert "no room server" in response.json()["detail"]
    assert api.get("/api/v1/meetings").json()["items"] == []


def test_search_sort_filter_and_paging(api: TestClient) -> None:
    names = ["Budget review", "Design sync", "budget 2027", "All hands", "Retro"]
    for i, name in enumerate(names):
        schedule(
            api,
            name=name,
            moderator="Zoe" if i % 2 else "Adam",
            start=(IN_AN_HOUR + timedelta(days=i)).isoformat(),
        )
    found = api.get("/api/v1/meetings", params={"q": "BUDGET"}).json()["items"]
    assert {m["name"] for m in found} == {"Budget review", "budget 2027"}
    by_moderator = api.get("/api/v1/meetings", params={"q": "zoe"}).json()["items"]
    assert {m["name"] for m in by_moderator} == {"Design sync", "All hands"}
    literal = api.get("/api/v1/meetings", params={"q": "%"}).json()["items"]
    assert literal == []

    by_name = api.get("/api/v1/meetings", params={"sort": "name"}).json()["items"]
    assert [m["name"] for m in by_name] == sorted(names)
    newest = api.get("/api/v1/meetings", params={"order": "desc"}).json()["items"]
    assert newest[0]["name"] == "Retro"

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "start"}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/v1/meetings", params=params).json()
        seen += [m["name"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names

    window = api.get(
        "/api/v1/meetings",
        params={
            "from": (IN_AN_HOUR + timedelta(days=1)).isoformat(),
            "to": (IN_AN_HOUR + timedelta(days=3)).isoformat(),
        },
    ).json()["items"]
    assert [m["name"] for m in window] == ["Design sync", "budget 2027"]
    assert len(api.get("/api/v1/meetings", params={"status": "scheduled"}).json()["items"]) == 5
    assert api.get("/api/v1/meetings", params={"status": "ended"}).json()["items"] == []


def test_bad_list_parameters_are_4xx(api: TestClient) -> None:
    assert "cursor" in field_errors(api.get("/api/v1/meetings", params={"cursor": "garbage"}))
    assert "status" in field_errors(api.get("/api/v1/meetings", params={"status": "lost"}))
    assert "limit" in field_errors(api.get("/api/v1/meetings", params={"limit": 0}))
    assert "sort" in field_errors(api.get("/api/v1/meetings", params={"sort": "colour"}))
    assert "from" in field_errors(api.get("/api/v1/meetings", params={"from": "soon"}))


def test_end_a_scheduled_meeting_and_refuse_changes_after(api: TestClient) -> None:
    meeting = schedule(api)
    ended = api.post(f"/api/v1/meetings/{meeting['id']}/end")
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    errors = field_errors(api.patch(f"/api/v1/meetings/{meeting['id']}", json={"name": "x"}))
    assert "status" in errors
    assert len(api.get("/api/v1/meetings", params={"status": "ended"}).json()["items"]) == 1


def test_patch_refuses_null_and_past(api: TestClient) -> None:
    meeting = schedule(api)
    assert "name" in field_errors(
        api.patch(f"/api/v1/meetings/{meeting['id']}", json={"name": None})
    )
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert "start" in field_errors(
        api.patch(f"/api/v1/meetings/{meeting['id']}", json={"start": past})
    )
    assert api.get(f"/api/v1/meetings/{meeting['id']}").json()["name"] == "Planning"


def test_servers_add_patch_drain_remove(api: TestClient) -> None:
    added = api.post(
        "/api/v1/servers",
        json={
            "name": "room-a",
            "url": "http://10.0.0.5:8081/",
            "max_active_meetings": 20,
            "instant_meetings": 3,
        },
    )
    assert added.status_code == 201, added.text
    server = added.json()
    assert server["url"] == "http://10.0.0.5:8081"
    assert server["status"] == "offline" and server["instant_meetings"] == 3
    duplicate = api.post("/api/v1/servers", json={"name": "room-a", "url": "http://x:1"})
    assert duplicate.status_code == 409 and "exists already" in duplicate.json()["detail"]

    patched = api.patch(
        "/api/v1/servers/room-a", json={"instant_meetings": None, "max_users_per_meeting": 40}
    )
    assert patched.json()["instant_meetings"] is None
    assert patched.json()["max_users_per_meeting"] == 40
    assert "url" in field_errors(api.patch("/api/v1/servers/room-a", json={"url": "ftp://x"}))
    assert api.patch("/api/v1/servers/room-a", json={"url": None}).status_code == 422

    drained = api.post("/api/v1/servers/room-a/drain").json()
    assert drained["draining"] is True
    assert [s["name"] for s in api.get("/api/v1/servers").json()] == ["room-a"]
    cluster = api.get("/api/v1/cluster").json()
    assert cluster["servers"][0]["name"] == "room-a" and cluster["meetings"] == []
    assert api.delete("/api/v1/servers/room-a").status_code == 204
    assert api.get("/api/v1/servers").json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "has space", "url": "http://x:1"}, "name"),
        ({"name": "", "url": "http://x:1"}, "name"),
        ({"name": "ok", "url": "not a url"}, "url"),
        ({"name": "ok", "url": "http://x:1", "max_active_meetings": -1}, "max_active_meetings"),
        ({"name": "ok", "url": "http://x:1", "max_users_per_meeting": 0}, "max_users_per_meeting"),
        ({"name": "ok", "url": "http://x:1", "instant_meetings": -2}, "instant_meetings"),
    ],
)
def test_bad_server_input_names_the_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    assert field in field_errors(api.post("/api/v1/servers", json=body))


def test_openapi_and_health(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in [
        "/api/v1/meetings",
        "/api/v1/meetings/{meeting_id}",
        "/api/v1/meetings/{meeting_id}/end",
        "/api/v1/servers",
        "/api/v1/servers/{name}",
        "/api/v1/servers/{name}/drain",
        "/api/v1/cluster",
    ]:
        assert path in paths
    assert api.get("/healthz").text == "ok"
    assert api.get("/readyz").text.splitlines()[:2] == ["ready", "store: ok"]
    assert api.get("/docs").status_code == 200


def test_attend_asks_for_name_and_checks_the_password(api: TestClient) -> None:
    meeting = schedule(
        api, password="s3cret", start=(datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    )
    visitor = {"Authorization": ""}  # not the administrator: the password is for visitors
    form = api.get(f"/m/{meeting['id']}", headers=visitor)
    assert form.status_code == 200
    assert "Your name" in form.text and "Meeting password" in form.text
    assert 'method="post"' in form.text
    wrong = api.post(
        f"/m/{meeting['id']}",
        data=form_fields(api, name="Eve", password="guess"),
        headers=visitor,
        follow_redirects=False,
    )
    assert wrong.status_code == 403 and "Wrong or missing meeting password" in wrong.text
    # The right password gets past the check; with no room server the meeting cannot open.
    right = api.post(
        f"/m/{meeting['id']}",
        data=form_fields(api, name="Ann", password="s3cret"),
        headers=visitor,
        follow_redirects=False,
    )
    assert right.status_code == 503 and "No room server can host this meeting" in right.text
    assert api.get(f"/api/v1/meetings/{meeting['id']}").json()["status"] == "scheduled"


def test_list_range_needs_an_offset(api: TestClient) -> None:
    errors = field_errors(api.get("/api/v1/meetings", params={"from": "2026-11-30T00:00:00"}))
    assert "offset" in errors["from"]


def test_cursor_of_another_order_is_refused(api: TestClient) -> None:
    for i in range(3):
        schedule(api, name=f"m{i}")
    cursor = api.get("/api/v1/meetings", params={"limit": 1}).json()["next_cursor"]
    errors = field_errors(api.get("/api/v1/meetings", params={"cursor": cursor, "order": "desc"}))
    assert "another sort or order" in errors["cursor"]


def test_undo_a_drain(api: TestClient) -> None:
    api.post("/api/v1/servers", json={"name": "r", "url": "http://127.0.0.1:1"})
    api.post("/api/v1/servers/r/drain")
    assert api.patch("/api/v1/servers/r", json={"draining": False}).json()["draining"] is False


def test_drain_deadline_is_stored_replaced_and_cleared(api: TestClient) -> None:
    api.post("/api/v1/servers", json={"name": "r", "url": "http://127.0.0.1:1"})
    assert api.get("/api/v1/servers/r").json()["drain_deadline"] is None

    def deadline(response: Any) -> timedelta:
        assert response.status_code == 200, response.text
        at = datetime.fromisoformat(response.json()["drain_deadline"].replace("Z", "+00:00"))
        return at - datetime.now(UTC)

    default = deadline(api.post("/api/v1/servers/r/drain"))  # no body at all
    assert timedelta(hours=3, minutes=59) < default <= timedelta(hours=4)
    kept = deadline(api.post("/api/v1/servers/r/drain", json={}))  # again: unchanged
    assert abs(kept - default) < timedelta(seconds=5)
    assert deadline(api.post("/api/v1/servers/r/drain", json={"deadline_minutes": 30})) <= (
        timedelta(minutes=30)
    )
    short = deadline(api.post("/api/v1/servers/r/drain", json={"deadline_seconds": 90}))
    assert timedelta(seconds=80) < short <= timedelta(seconds=90)
    for bad in (
        {"deadline_minutes": 0},
        {"deadline_minutes": 10081},
        {"deadline_seconds": 604801},
        {"deadline_minutes": 5, "deadline_seconds": 5},
        {"evacuate": True, "deadline_minutes": 5},
        {"deadline": "4h"},
    ):
        assert api.post("/api/v1/servers/r/drain", json=bad).status_code == 422, bad
    undone = api.patch("/api/v1/servers/r", json={"draining": False}).json()
    assert undone["draining"] is False and undone["drain_deadline"] is None
    restarted = deadline(api.patch("/api/v1/servers/r", json={"draining": True}))
    assert timedelta(hours=3, minutes=59) < restarted <= timedelta(hours=4)
    # Nothing to move: evacuate drains at once, and a forced removal of an idle server works.
    evacuated = api.post("/api/v1/servers/r/drain", json={"evacuate": True})
    assert deadline(evacuated) <= timedelta(0)
    assert api.delete("/api/v1/servers/r", params={"force": "true"}).status_code == 204


def test_empty_password_is_refused_with_a_message(api: TestClient) -> None:
    meeting = schedule(api, password="s3cret")
    empty = api.post(
        f"/m/{meeting['id']}",
        data=form_fields(api, name="Eve", password=""),
        headers={"Authorization": ""},  # a visitor (the administrator needs no password)
    )
    assert empty.status_code == 403
    assert "Wrong or missing meeting password" in empty.text


def test_hand_made_cursor_with_a_naive_time_is_a_4xx(api: TestClient) -> None:
    import base64
    import json

    raw = json.dumps(
        ["start:asc", f"{monday_weeks_ahead(52).isoformat()}T09:00:00", "abc"]
    ).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "cursor" in field_errors(api.get("/api/v1/meetings", params={"cursor": cursor}))
