"""Every route of the EMS x who asks: a table, so that a route without its check fails.

Every operation of the OpenAPI document and every page route must have a row here (the
first test fails for a route that has none); each row says what anonymous users, a
signed-in user, the meeting's moderator and an administrator get, under the locked policy
(every `anonymous_*` setting off), where each check shows. A cell is:

    Y  let through (any answer but 401, 403 or a redirect to sign in)
    A  401: sign in
    F  403: not for you
    S  303 to /signin (a page asks an anonymous reader to sign in)

Each cell is one request against the real app (in process, SQLite), with a meeting, file,
room server or message of its own, so that no cell depends on another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.infra.settings import EmsSettings
from tests.dates import today
from tests.integration.conftest import csrf_of

ROLES = ("anonymous", "user", "moderator", "admin")
USERS = {"user": "bob", "moderator": "alice", "admin": "root"}
DAY = today() + timedelta(days=5)
START = f"{DAY}T09:00:00Z"
SECRET = "cluster-secret"


@dataclass
class Request:
    method: str
    path: str
    json: Any = None
    data: dict[str, str] | None = None
    files: list[Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class Env:
    """Makes what a cell acts on, fresh for each: as the moderator or the administrator."""

    def __init__(self, client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.tokens = tokens
        self.admin = {"Authorization": f"Bearer {SECRET}"}
        self._count = 0

    def unique(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def meeting(self, **fields: Any) -> str:
        """Alice's meeting (a weekly one, so that it has exceptions to make)."""
        made = self.client.post(
            "/api/v1/meetings",
            json={
                "name": self.unique("Table "),
                "start": START,
                "recurrence": "FREQ=WEEKLY;COUNT=3",
                **fields,
            },
            headers=self.tokens["moderator"],
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def file(self, meeting_id: str) -> int:
        made = self.client.post(
            f"/api/v1/meetings/{meeting_id}/files",
            files=[("file", ("a.txt", b"agenda", "text/plain"))],
            headers=self.admin,
        )
        assert made.status_code == 201, made.text
        return int(made.json()["items"][0]["id"])

    def skipped(self, meeting_id: str) -> str:
        """An occurrence of the meeting, skipped: one to restore."""
        original = f"{DAY + timedelta(weeks=1)}T09:00:00Z"
        made = self.client.post(
            f"/api/v1/meetings/{meeting_id}/exceptions",
            json={"original_start": original, "skip": True},
            headers=self.admin,
        )
        assert made.status_code == 201, made.text
        return original

    def server(self) -> str:
        name = self.unique("r")
        made = self.client.post(
            "/api/v1/servers", json={"name": name, "url": f"http://{name}.test"}, headers=self.admin
        )
        assert made.status_code == 201, made.text
        return name

    def broadcast(self) -> int:
        made = self.client.post("/api/v1/broadcasts", json={"text": "hello"}, headers=self.admin)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def fresh_sign_in(self) -> dict[str, str]:
        """A sign-in of its own (bob's), for a request that ends it."""
        answer = self.client.post(
            "/api/v1/auth/token", json={"username": "bob", "password": "bob-password"}
        )
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def forget_cookies(self) -> None:
        """Each request is its own browser: only the CSRF cookie stays (forms need it)."""
        for name in list(self.client.cookies.keys()):
            if name != "moot_csrf":
                del self.client.cookies[name]

    def csrf(self) -> dict[str, str]:
        return {"csrf": csrf_of(self.client)}


Build = Callable[[Env], Request]
MEETING_FORM = {
    "name": "Changed",
    "moderator": "alice",
    "type": "collaboration",
    "start_mode": "schedule",
    "date": f"{DAY}",
    "time": "09:00",
    "timezone": "UTC",
    "hours": "1",
    "minutes": "0",
    "expected_participants": "4",
    "repeat": "none",
}


def meeting_route(method: str, suffix: str = "", **kwargs: Any) -> Build:
    def build(env: Env) -> Request:
        return Request(method, f"/api/v1/meetings/{env.meeting()}{suffix}", **kwargs)

    return build


def page(method: str, path: str, **kwargs: Any) -> Build:
    """A page of a fresh meeting ({id}), forms with their CSRF token."""

    def build(env: Env) -> Request:
        data = kwargs.get("data")
        extra = {"data": {**data, **env.csrf()}} if data is not None else {}
        return Request(
            method,
            path.replace("{id}", env.meeting()),
            **{k: v for k, v in kwargs.items() if k != "data"},
            **extra,
        )

    return build


def plain(method: str, path: str, **kwargs: Any) -> Build:
    return lambda env: Request(method, path, **kwargs)


def form(method: str, path: str, data: dict[str, str]) -> Build:
    return lambda env: Request(method, path, data={**data, **env.csrf()})


def on_server(method: str, path: str, **kwargs: Any) -> Build:
    def build(env: Env) -> Request:
        data = kwargs.get("data")
        extra = {"data": {**data, **env.csrf()}} if data is not None else {}
        rest = {k: v for k, v in kwargs.items() if k != "data"}
        return Request(method, path.replace("{name}", env.server()), **rest, **extra)

    return build


def file_route(method: str) -> Build:
    def build(env: Env) -> Request:
        meeting_id = env.meeting()
        return Request(method, f"/api/v1/meetings/{meeting_id}/files/{env.file(meeting_id)}")

    return build


def restore(env: Env) -> Request:
    meeting_id = env.meeting()
    original = env.skipped(meeting_id)
    return Request(
        "DELETE",
        f"/api/v1/meetings/{meeting_id}/exceptions",
        params={"original_start": original},
    )


def withdraw(api: bool) -> Build:
    def build(env: Env) -> Request:
        broadcast = env.broadcast()
        if api:
            return Request("DELETE", f"/api/v1/broadcasts/{broadcast}")
        return Request("POST", f"/admin/broadcast/{broadcast}/withdraw", data=env.csrf())

    return build


CONFIG = {"based_on": 0, "values": {}}
# (method, path as the app names it): (anonymous, user, moderator, admin), the request.
TABLE: dict[tuple[str, str], tuple[str, Build]] = {
    # -- sign-in: open to all -----------------------------------------------------------
    ("POST", "/api/v1/auth/token"): (
        "YYYY",
        plain("POST", "/api/v1/auth/token", json={"username": "bob", "password": "bob-password"}),
    ),
    # (With a sign-in of its own: signing out ends it.)
    ("POST", "/api/v1/auth/signout"): (
        "YYYY",
        lambda env: Request("POST", "/api/v1/auth/signout", headers=env.fresh_sign_in()),
    ),
    ("GET", "/api/v1/auth/me"): ("YYYY", plain("GET", "/api/v1/auth/me")),
    ("GET", "/api/v1/auth/people"): ("AYYY", plain("GET", "/api/v1/auth/people")),
    # -- community services: signed-in people only (anonymous users have none) -----------
    ("GET", "/api/v1/community/people"): (
        "AYYY",
        plain("GET", "/api/v1/community/people", params={"q": "a"}),
    ),
    ("POST", "/api/v1/community/connect"): ("AYYY", plain("POST", "/api/v1/community/connect")),
    ("POST", "/api/v1/community/meet"): (
        "AYYY",
        plain("POST", "/api/v1/community/meet", json={"members": ["/alice"], "title": "Now"}),
    ),
    # -- meetings: the locked policy leaves each action to who may do it -----------------
    ("GET", "/api/v1/meetings"): ("AYYY", plain("GET", "/api/v1/meetings")),
    ("POST", "/api/v1/meetings"): (
        "AYYY",
        plain("POST", "/api/v1/meetings", json={"name": "New", "start": START}),
    ),
    ("GET", "/api/v1/meetings/{meeting_id}"): ("AYYY", meeting_route("GET")),
    ("PATCH", "/api/v1/meetings/{meeting_id}"): (
        "AFYY",
        meeting_route("PATCH", json={"name": "Renamed"}),
    ),
    ("DELETE", "/api/v1/meetings/{meeting_id}"): ("AFYY", meeting_route("DELETE")),
    ("GET", "/api/v1/meetings/{meeting_id}/recording"): (
        "AYYY",
        meeting_route("GET", "/recording"),
    ),
    # The join token is the credential: a made-up one is refused to everyone alike.
    ("POST", "/api/v1/meetings/{meeting_id}/rejoin"): (
        "FFFF",
        meeting_route("POST", "/rejoin", json={"token": "not-a-join-token"}),
    ),
    ("POST", "/api/v1/meetings/{meeting_id}/end"): ("AFYY", meeting_route("POST", "/end")),
    ("GET", "/api/v1/meetings/{meeting_id}/polls"): ("AFYY", meeting_route("GET", "/polls")),
    ("GET", "/api/v1/meetings/{meeting_id}/polls.csv"): (
        "AFYY",
        meeting_route("GET", "/polls.csv"),
    ),
    ("POST", "/api/v1/meetings/{meeting_id}/moderator-key"): (
        "AFYY",
        meeting_route("POST", "/moderator-key"),
    ),
    ("GET", "/api/v1/calendar"): (
        "AYYY",
        plain("GET", "/api/v1/calendar", params={"from": START, "to": f"{DAY}T10:00:00Z"}),
    ),
    ("POST", "/api/v1/calendar/feed"): ("AYYY", plain("POST", "/api/v1/calendar/feed")),
    ("DELETE", "/api/v1/calendar/feed"): ("AYYY", plain("DELETE", "/api/v1/calendar/feed")),
    ("GET", "/api/v1/meetings/{meeting_id}/occurrences"): (
        "AYYY",
        meeting_route("GET", "/occurrences"),
    ),
    ("GET", "/api/v1/meetings/{meeting_id}/exceptions"): (
        "AYYY",
        meeting_route("GET", "/exceptions"),
    ),
    ("POST", "/api/v1/meetings/{meeting_id}/exceptions"): (
        "AFYY",
        meeting_route(
            "POST",
            "/exceptions",
            json={"original_start": f"{DAY + timedelta(weeks=1)}T09:00:00Z", "skip": True},
        ),
    ),
    ("DELETE", "/api/v1/meetings/{meeting_id}/exceptions"): ("AFYY", restore),
    # -- files ----------------------------------------------------------------------------
    ("GET", "/api/v1/meetings/{meeting_id}/files"): ("AYYY", meeting_route("GET", "/files")),
    ("POST", "/api/v1/meetings/{meeting_id}/files"): (
        "AFYY",
        meeting_route("POST", "/files", files=[("file", ("b.txt", b"b", "text/plain"))]),
    ),
    # From the meeting page: its join token is the credential, a made-up one is refused to
    # everyone alike (test_meeting_upload.py: who may, with real tokens).
    ("POST", "/api/v1/meetings/{meeting_id}/files/from-meeting"): (
        "FFFF",
        meeting_route(
            "POST",
            "/files/from-meeting",
            data={"token": "not-a-join-token"},
            files=[("file", ("c.txt", b"c", "text/plain"))],
        ),
    ),
    ("GET", "/api/v1/meetings/{meeting_id}/files/{file_id}"): ("AYYY", file_route("GET")),
    ("DELETE", "/api/v1/meetings/{meeting_id}/files/{file_id}"): ("AFYY", file_route("DELETE")),
    # -- administration: administrators only ----------------------------------------------
    ("GET", "/api/v1/servers"): ("AFFY", plain("GET", "/api/v1/servers")),
    ("POST", "/api/v1/servers"): (
        "AFFY",
        lambda env: Request(
            "POST", "/api/v1/servers", json={"name": env.unique("n"), "url": "http://n.test"}
        ),
    ),
    ("GET", "/api/v1/servers/{name}"): ("AFFY", on_server("GET", "/api/v1/servers/{name}")),
    ("PATCH", "/api/v1/servers/{name}"): (
        "AFFY",
        on_server("PATCH", "/api/v1/servers/{name}", json={"max_active_meetings": 3}),
    ),
    ("DELETE", "/api/v1/servers/{name}"): ("AFFY", on_server("DELETE", "/api/v1/servers/{name}")),
    ("GET", "/api/v1/servers/{name}/events"): (
        "AFFY",
        on_server("GET", "/api/v1/servers/{name}/events"),
    ),
    ("POST", "/api/v1/servers/{name}/drain"): (
        "AFFY",
        on_server("POST", "/api/v1/servers/{name}/drain"),
    ),
    ("GET", "/api/v1/cluster"): ("AFFY", plain("GET", "/api/v1/cluster")),
    ("GET", "/api/v1/capacity"): ("AFFY", plain("GET", "/api/v1/capacity")),
    ("GET", "/api/v1/capacity/warnings"): ("AFFY", plain("GET", "/api/v1/capacity/warnings")),
    ("GET", "/api/v1/config"): ("AFFY", plain("GET", "/api/v1/config")),
    ("PUT", "/api/v1/config/cluster"): (
        "AFFY",
        plain("PUT", "/api/v1/config/cluster", json=CONFIG),
    ),
    ("PATCH", "/api/v1/config/cluster"): (
        "AFFY",
        plain("PATCH", "/api/v1/config/cluster", json=CONFIG),
    ),
    ("PUT", "/api/v1/config/servers/{name}"): (
        "AFFY",
        on_server("PUT", "/api/v1/config/servers/{name}", json=CONFIG),
    ),
    ("PATCH", "/api/v1/config/servers/{name}"): (
        "AFFY",
        on_server("PATCH", "/api/v1/config/servers/{name}", json=CONFIG),
    ),
    ("DELETE", "/api/v1/config/servers/{name}"): (
        "AFFY",
        on_server("DELETE", "/api/v1/config/servers/{name}", params={"based_on": "0"}),
    ),
    ("GET", "/api/v1/config/history"): ("AFFY", plain("GET", "/api/v1/config/history")),
    ("GET", "/api/v1/broadcasts"): ("AFFY", plain("GET", "/api/v1/broadcasts")),
    ("POST", "/api/v1/broadcasts"): (
        "AFFY",
        plain("POST", "/api/v1/broadcasts", json={"text": "hi"}),
    ),
    ("DELETE", "/api/v1/broadcasts/{broadcast_id}"): ("AFFY", withdraw(api=True)),
    ("GET", "/api/v1/reports"): ("AFFY", plain("GET", "/api/v1/reports")),
    ("GET", "/api/v1/reports/{name}"): ("AFFY", plain("GET", "/api/v1/reports/logins")),
    # -- health: open to all, names nobody -------------------------------------------------
    ("GET", "/healthz"): ("YYYY", plain("GET", "/healthz")),
    ("GET", "/readyz"): ("YYYY", plain("GET", "/readyz")),
    ("GET", "/metrics"): ("YYYY", plain("GET", "/metrics")),
    # -- the pages --------------------------------------------------------------------------
    ("GET", "/"): ("YYYY", plain("GET", "/")),
    ("GET", "/test"): ("YYYY", plain("GET", "/test")),
    ("GET", "/signin"): ("YYYY", plain("GET", "/signin")),
    ("POST", "/signin"): (
        "YYYY",
        form("POST", "/signin", {"username": "bob", "password": "bob-password", "next": "/"}),
    ),
    ("POST", "/signout"): (
        "YYYY",
        lambda env: Request("POST", "/signout", data=env.csrf(), headers=env.fresh_sign_in()),
    ),
    ("POST", "/meetings/new"): (
        "AYYY",
        form("POST", "/meetings/new", {**MEETING_FORM, "name": "From the form"}),
    ),
    ("POST", "/attend-by-name"): ("YYYY", form("POST", "/attend-by-name", {"name": "nothing"})),
    ("GET", "/meetings/{meeting_id}"): ("AYYY", page("GET", "/meetings/{id}")),
    ("GET", "/meetings/{meeting_id}.ics"): ("AYYY", page("GET", "/meetings/{id}.ics")),
    ("GET", "/meetings/{meeting_id}/edit"): ("AFYY", page("GET", "/meetings/{id}/edit")),
    ("POST", "/meetings/{meeting_id}/edit"): (
        "AFYY",
        page("POST", "/meetings/{id}/edit", data=MEETING_FORM),
    ),
    ("GET", "/meetings/{meeting_id}/delete"): ("AFYY", page("GET", "/meetings/{id}/delete")),
    ("POST", "/meetings/{meeting_id}/delete"): (
        "AFYY",
        page("POST", "/meetings/{id}/delete", data={}),
    ),
    ("GET", "/m/{meeting_id}"): ("AYYY", page("GET", "/m/{id}", params={"name": "Vic"})),
    ("POST", "/m/{meeting_id}"): ("AYYY", page("POST", "/m/{id}", data={"name": "Vic"})),
    ("GET", "/recordings/{meeting_id}"): ("AYYY", page("GET", "/recordings/{id}")),
    ("GET", "/recordings/{meeting_id}/media/{media_id}"): (
        "AYYY",
        page("GET", "/recordings/{id}/media/1"),
    ),
    ("GET", "/calendar"): ("AYYY", plain("GET", "/calendar")),
    ("GET", "/community"): ("AYYY", plain("GET", "/community")),
    ("POST", "/calendar/feed"): ("AYYY", form("POST", "/calendar/feed", {})),
    ("POST", "/calendar/feed/stop"): ("AYYY", form("POST", "/calendar/feed/stop", {})),
    # One's own feed only (here alice's); the secret address is the credential.
    ("GET", "/calendar/{person}.ics"): ("AFYF", plain("GET", "/calendar/alice.ics")),
    ("GET", "/calendar/feeds/{token}.ics"): ("YYYY", plain("GET", "/calendar/feeds/nothing.ics")),
    ("GET", "/admin"): ("SFFY", plain("GET", "/admin")),
    ("GET", "/admin/servers"): ("SFFY", plain("GET", "/admin/servers")),
    ("POST", "/admin/servers"): ("AFFY", form("POST", "/admin/servers", {"name": "x"})),
    ("GET", "/admin/servers/{name}/edit"): ("SFFY", on_server("GET", "/admin/servers/{name}/edit")),
    ("POST", "/admin/servers/{name}/edit"): (
        "AFFY",
        on_server("POST", "/admin/servers/{name}/edit", data={"url": "http://x.test"}),
    ),
    ("GET", "/admin/servers/{name}/drain"): (
        "SFFY",
        on_server("GET", "/admin/servers/{name}/drain"),
    ),
    ("POST", "/admin/servers/{name}/drain"): (
        "AFFY",
        on_server("POST", "/admin/servers/{name}/drain", data={}),
    ),
    ("POST", "/admin/servers/{name}/undrain"): (
        "AFFY",
        on_server("POST", "/admin/servers/{name}/undrain", data={}),
    ),
    ("GET", "/admin/servers/{name}/remove"): (
        "SFFY",
        on_server("GET", "/admin/servers/{name}/remove"),
    ),
    ("POST", "/admin/servers/{name}/remove"): (
        "AFFY",
        on_server("POST", "/admin/servers/{name}/remove", data={}),
    ),
    ("GET", "/admin/monitor"): ("SFFY", plain("GET", "/admin/monitor")),
    ("GET", "/admin/config"): ("SFFY", plain("GET", "/admin/config")),
    ("POST", "/admin/config"): ("AFFY", form("POST", "/admin/config", {"based_on": "0"})),
    ("GET", "/admin/config/history"): ("SFFY", plain("GET", "/admin/config/history")),
    ("GET", "/admin/broadcast"): ("SFFY", plain("GET", "/admin/broadcast")),
    ("POST", "/admin/broadcast"): ("AFFY", form("POST", "/admin/broadcast", {"text": "hi"})),
    ("POST", "/admin/broadcast/{broadcast_id}/withdraw"): ("AFFY", withdraw(api=False)),
    ("GET", "/admin/reports"): ("SFFY", plain("GET", "/admin/reports")),
    ("GET", "/admin/reports/{name}.csv"): ("SFFY", plain("GET", "/admin/reports/logins.csv")),
    ("GET", "/admin/reports/{name}.svg"): ("SFFY", plain("GET", "/admin/reports/logins.svg")),
}

# Endless streams (server-sent events): checked for who may open them, no further (the
# allowed cells would never end). The public one carries only messages to all users.
STREAMS: dict[tuple[str, str], str] = {
    ("GET", "/admin/monitor/events"): "AFF-",
    ("GET", "/events/broadcasts"): "----",
}
# Not routes a person calls: the interactive docs and the schema (public by design), the
# static files, the CORS preflights of rejoin and of the meeting page's upload, and the
# room servers' control channel (it asks for the cluster secret itself:
# test_registration.py).
NOT_ROUTES = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("OPTIONS", "/api/v1/meetings/{meeting_id}/rejoin"),
    ("OPTIONS", "/api/v1/meetings/{meeting_id}/files/from-meeting"),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves over HTTP, pages and API alike."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if type(route).__name__ == "_IncludedRouter":
                walk(route.original_router.routes)
            elif isinstance(route, APIRoute) or hasattr(route, "methods"):
                for method in route.methods or ():
                    if method != "HEAD":
                        found.add((method, route.path))

    walk(list(app.routes))
    return found


@pytest.fixture(scope="module")
def ems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("routes")
    url = f"sqlite+aiosqlite:///{tmp / 'moot.db'}"
    asyncio.run(add_user(url, "alice", "alice-password"))
    asyncio.run(add_user(url, "bob", "bob-password"))
    asyncio.run(add_user(url, "root", "root-password", groups=["stadmins"]))
    settings = EmsSettings(
        database_url=url,
        data_dir=tmp / "data",
        cluster_secret=SECRET,
        anonymous_browse=False,
        anonymous_create=False,
        anonymous_attend=False,
        anonymous_modify_others=False,
        anonymous_delete_others=False,
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        tokens = {}
        for role, name in USERS.items():
            answer = client.post(
                "/api/v1/auth/token", json={"username": name, "password": f"{name}-password"}
            )
            tokens[role] = {"Authorization": f"Bearer {answer.json()['token']}"}
        yield Env(client, tokens)


def test_every_route_has_its_row(ems: Env) -> None:
    served = app_routes(ems.client.app)  # type: ignore[arg-type]
    documented = {
        (method.upper(), path)
        for path, operations in ems.client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
    }
    assert documented <= served
    missing = served - TABLE.keys() - STREAMS.keys() - NOT_ROUTES
    assert not missing, f"routes with no row in the permission table: {sorted(missing)}"
    stale = (TABLE.keys() | STREAMS.keys()) - served
    assert not stale, f"rows for routes that no longer exist: {sorted(stale)}"


def outcome(answer: Any) -> str:
    if answer.status_code == 401:
        return "A"
    if answer.status_code == 403:
        return "F"
    if answer.status_code in (302, 303) and answer.headers["location"].startswith("/signin"):
        return "S"
    return "Y"


@pytest.mark.parametrize(("method", "path"), sorted(TABLE), ids=lambda v: str(v))
def test_who_gets_what(ems: Env, method: str, path: str) -> None:
    expected, build = TABLE[(method, path)]
    got = ""
    for role in ROLES:
        request = build(ems)
        who = ems.tokens.get(role, {"Authorization": ""})
        answer = ems.client.request(
            request.method,
            request.path,
            json=request.json,
            data=request.data,
            files=request.files,
            params=request.params,
            headers={**who, **request.headers},
        )
        ems.forget_cookies()
        got += outcome(answer)
    assert got == expected, f"{method} {path}: got {got}, the table says {expected}"


@pytest.mark.parametrize(("method", "path"), sorted(STREAMS), ids=lambda v: str(v))
def test_who_may_open_a_stream(ems: Env, method: str, path: str) -> None:
    for role, mark in zip(ROLES, STREAMS[(method, path)], strict=True):
        if mark == "-":
            continue  # let through: an endless stream, not opened here
        who = ems.tokens.get(role, {"Authorization": ""})
        answer = ems.client.request(method, path, headers=who)
        assert outcome(answer) == mark, (role, answer.status_code)
