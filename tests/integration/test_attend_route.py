"""Attend's GET takes a fast path ahead of FastAPI's generic layers (ems/web/attend_route.py):
what every other page gets must still be there: security headers, the CSRF cookie, metrics,
the app's error pages, and clear refusals of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.infra.settings import EmsSettings


class Anonymous:
    """The API client as a new browser: no sign-in, no cookies, redirects not followed."""

    def __init__(self, api: TestClient) -> None:
        self.api = api

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._send("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._send("HEAD", url, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.api.cookies.clear()
        headers = {"Authorization": "", **kwargs.pop("headers", {})}
        return self.api.request(method, url, headers=headers, follow_redirects=False, **kwargs)


def anonymous(api: TestClient) -> Anonymous:
    return Anonymous(api)


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()


def meeting(api: TestClient) -> str:
    """A meeting of tomorrow: no room server needed to schedule it, nor to be asked in."""
    body = {"name": "Weekly sync", "moderator": "carol", "start": tomorrow()}
    created = api.post("/api/v1/meetings", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_attend_answers_with_the_headers_and_cookie_of_every_page(api: TestClient) -> None:
    meeting_id = meeting(api)
    page = anonymous(api).get(f"/m/{meeting_id}")
    assert page.status_code == 200
    assert "Weekly sync" in page.text  # the form that asks for a name
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "moot_csrf" in page.cookies


def test_attend_of_a_missing_meeting_is_a_page_that_says_so(api: TestClient) -> None:
    page = anonymous(api).get("/m/nosuchmeet", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "No such meeting" in page.text
    assert "content-security-policy" in page.headers


def test_a_name_too_long_is_refused_with_a_reason(api: TestClient) -> None:
    meeting_id = meeting(api)
    page = anonymous(api).get(f"/m/{meeting_id}", params={"name": "x" * 201})
    assert page.status_code == 422
    assert "at most 200 characters" in page.text
    key = anonymous(api).get(f"/m/{meeting_id}", params={"key": "k" * 201})
    assert key.status_code == 422


def test_a_bad_sign_in_token_is_refused_not_ignored(api: TestClient) -> None:
    meeting_id = meeting(api)
    page = anonymous(api).get(f"/m/{meeting_id}", headers={"Authorization": "Bearer not-a-token"})
    assert page.status_code == 401
    assert "sign-in token refused" in page.text


def test_head_answers_like_get(api: TestClient) -> None:
    meeting_id = meeting(api)
    head = anonymous(api).head(f"/m/{meeting_id}")
    assert head.status_code == 200
    assert head.text == ""


def test_attend_is_counted_under_its_route_template(api: TestClient) -> None:
    meeting_id = meeting(api)
    anonymous(api).get(f"/m/{meeting_id}")
    scrape = api.get("/metrics").text
    assert 'route="/m/{meeting_id}"' in scrape
    assert meeting_id not in scrape  # a template, never the address


def test_attend_under_a_root_path(database_url: str, tmp_path: object) -> None:
    """Behind a proxy that serves the Meeting Center under /moot, attend is still found."""
    settings = EmsSettings(database_url=database_url, data_dir=f"{tmp_path}/data")
    with TestClient(create_app(settings), root_path="/moot", follow_redirects=False) as client:
        created = client.post(
            "/api/v1/meetings", json={"name": "Proxied", "moderator": "dan", "start": tomorrow()}
        )
        assert created.status_code == 201, created.text
        page = client.get(f"/m/{created.json()['id']}")
        assert page.status_code == 200
        assert "Proxied" in page.text


def test_an_unexpected_error_is_a_500_page_not_a_dropped_connection(
    database_url: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug behind attend still answers 500 (and is logged), as on any other page."""
    settings = EmsSettings(database_url=database_url, data_dir=f"{tmp_path}/data")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:

        async def broken(meeting_id: str) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(app.state.ems.meetings, "attend_info", broken)
        page = client.get("/m/abcdefghij")
        assert page.status_code == 500
        assert page.text == "Internal Server Error"
