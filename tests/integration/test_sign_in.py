"""Sign-in, tokens, policies, roles and partitions through the EMS, on SQLite and PostgreSQL.

In process. Local users are made the way `moot users add` makes them; LDAP users come from
a real slapd (tests/ldap_server.py) with two partitions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from moot.ems.app import create_app
from moot.ems.auth.tokens import sign_session
from moot.ems.auth.users import add_user
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import AuditRow, LoginFailureRow, LoginRow
from moot.infra.settings import EmsSettings
from tests.integration.conftest import form_fields
from tests.ldap_server import Slapd, running_slapd

SECRET = "secret"
SOON = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat()


def ems(database_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(
            EmsSettings(
                database_url=database_url,
                data_dir=tmp_path / "data",
                cluster_secret=SECRET,
                **settings,
            )
        )
    )


def users(database_url: str) -> None:
    asyncio.run(add_user(database_url, "alice", "alice-password", groups=["stadmins"]))
    asyncio.run(add_user(database_url, "bob", "bob-password", display_name="Bob Builder"))


def bearer(client: TestClient, username: str, password: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def rows(database_url: str, model: type[Any]) -> list[Any]:
    async def read() -> list[Any]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                return list(await session.scalars(select(model)))
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    users(migrated_url)
    with ems(migrated_url, tmp_path) as running:
        yield running


def test_sign_in_page_cookie_and_sign_out(client: TestClient, migrated_url: str) -> None:
    page = client.get("/signin")
    assert page.status_code == 200 and 'name="password"' in page.text
    wrong = client.post(
        "/signin", data=form_fields(client, username="bob", password="nope", next="/")
    )
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    signed = client.post(
        "/signin",
        data=form_fields(client, username="BOB", password="bob-password", next="/calendar"),
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/calendar"
    cookie = signed.headers["set-cookie"]
    assert "moot_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/")
    assert "Signed in as" in home.text and "Bob Builder" in home.text
    assert client.get("/api/v1/auth/me").json()["username"] == "bob"
    # The new-meeting form has the signed-in user as moderator.
    assert 'name="moderator" value="bob"' in home.text
    out = client.post("/signout", data=form_fields(client), follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/api/v1/auth/me").json()["signed_in"] is False
    # Who, when, from where, why: every failure is stored for the reports; logins too.
    failures = rows(migrated_url, LoginFailureRow)
    assert [(f.username, f.reason) for f in failures] == [("bob", "wrong password")]
    assert failures[0].address == "testclient"
    assert [r.username for r in rows(migrated_url, LoginRow)] == ["bob"]


def test_tokens_forged_expired_revoked_and_of_a_retired_key(client: TestClient) -> None:
    headers = bearer(client, "bob", "bob-password")
    assert client.get("/api/v1/auth/me", headers=headers).json()["username"] == "bob"
    token = headers["Authorization"].split()[1]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    answer = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401 and "not a valid sign-in token" in answer.json()["detail"]

    auth = client.app.state.ems.auth  # type: ignore[attr-defined]
    signer = auth._signer()
    expired, _ = sign_session(
        signer,
        username="bob",
        display_name="Bob",
        groups=frozenset(),
        partition=None,
        source="local",
        ttl_seconds=60,
        now=datetime.now(UTC).timestamp() - 3600,
    )
    answer = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]

    assert client.post("/api/v1/auth/signout", headers=headers).status_code == 204
    answer = client.get("/api/v1/auth/me", headers=headers)
    assert answer.status_code == 401 and "signed out" in answer.json()["detail"]

    fresh = bearer(client, "bob", "bob-password")
    client.portal.call(lambda: auth.rotate(retire_others=True))  # type: ignore[union-attr]
    answer = client.get("/api/v1/auth/me", headers=fresh)
    assert answer.status_code == 401 and "retired key" in answer.json()["detail"]
    newest = bearer(client, "bob", "bob-password")  # the new key signs from now on
    assert client.get("/api/v1/auth/me", headers=newest).json()["username"] == "bob"


def test_failed_sign_ins_are_throttled_per_user(client: TestClient, migrated_url: str) -> None:
    for _ in range(5):
        answer = client.post("/api/v1/auth/token", json={"username": "bob", "password": "x"})
        assert answer.status_code == 401
    answer = client.post("/api/v1/auth/token", json={"username": "bob", "password": "bob-password"})
    assert answer.status_code == 429 and "too many failed sign-ins" in answer.json()["detail"]
    # Another user from elsewhere is not held up by bob's.
    assert (
        client.post(
            "/api/v1/auth/token", json={"username": "alice", "password": "alice-password"}
        ).status_code
        == 200
    )
    reasons = [f.reason for f in rows(migrated_url, LoginFailureRow)]
    assert reasons.count("wrong password") == 5 and reasons.count("throttled") == 1


# Who may call what, with the seed's default policy: anonymous users may do all but
# administer; members of stadmins administer.
ROLE_TABLE = [
    ("GET", "/api/v1/meetings", None, {"anonymous": 200, "user": 200, "admin": 200}),
    (
        "POST",
        "/api/v1/meetings",
        {"name": "x", "start": SOON},
        {"anonymous": 201, "user": 201, "admin": 201},
    ),
    ("GET", "/api/v1/servers", None, {"anonymous": 401, "user": 403, "admin": 200}),
    ("GET", "/api/v1/cluster", None, {"anonymous": 401, "user": 403, "admin": 200}),
    ("GET", "/api/v1/capacity/warnings", None, {"anonymous": 401, "user": 403, "admin": 200}),
    (
        "POST",
        "/api/v1/servers",
        {"name": "r9", "url": "http://r9.test"},
        {"anonymous": 401, "user": 403, "admin": 201},
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROLE_TABLE)
def test_role_by_endpoint(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: dict[str, int],
) -> None:
    who = {
        "anonymous": {},
        "user": bearer(client, "bob", "bob-password"),
        "admin": bearer(client, "alice", "alice-password"),
    }
    for role, status in expected.items():
        answer = client.request(method, path, json=body, headers=who[role])
        assert answer.status_code == status, (role, answer.text)
        if status in (401, 403):
            assert answer.json()["detail"]  # a reason, never an empty refusal
        if body and body.get("name") == "r9" and status == 201:
            client.delete("/api/v1/servers/r9", headers=who["admin"])


def test_administrative_actions_are_audited(client: TestClient, migrated_url: str) -> None:
    admin = bearer(client, "alice", "alice-password")
    added = client.post(
        "/api/v1/servers", json={"name": "r7", "url": "http://r7.test"}, headers=admin
    )
    assert added.status_code == 201
    assert client.delete("/api/v1/servers/r7", headers=admin).status_code == 204
    audit = rows(migrated_url, AuditRow)
    assert [(a.actor, a.action, a.target) for a in audit] == [
        ("alice", "server.add", "r7"),
        ("alice", "server.remove", "r7"),
    ]
    assert all(a.address == "testclient" and a.at is not None for a in audit)


def test_a_policy_that_refuses_anonymous_users(migrated_url: str, tmp_path: Path) -> None:
    users(migrated_url)
    with ems(migrated_url, tmp_path, anonymous_create=False, anonymous_browse=False) as client:
        refused = client.post("/api/v1/meetings", json={"name": "x", "start": SOON})
        assert refused.status_code == 401 and "sign in" in refused.json()["detail"]
        assert client.get("/api/v1/meetings").status_code == 401
        page = client.get("/")
        assert "Sign in to see the meetings" in page.text
        assert "Sign in to create meetings" in page.text
        created = client.post(
            "/api/v1/meetings",
            json={"name": "Mine", "start": SOON},
            headers=bearer(client, "bob", "bob-password"),
        )
        assert created.status_code == 201
        assert created.json()["moderator"] == "bob"  # the signed-in user moderates it


def test_forms_without_their_csrf_token_are_refused(client: TestClient) -> None:
    answer = client.post("/meetings/new", data={"name": "x"})
    assert answer.status_code == 403 and "reload the page" in answer.text
    assert (
        client.post("/signin", data={"username": "bob", "password": "bob-password"}).status_code
        == 403
    )
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as directory:
        yield directory


def test_ldap_users_see_only_their_partition(
    migrated_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    partitions = "|".join(f"{p.name}={p.search_base}" for p in slapd.partitions)
    with ems(
        migrated_url,
        tmp_path,
        ldap_url=slapd.url,
        ldap_bind_dn=slapd.bind_dn,
        ldap_bind_password=slapd.bind_password,
        ldap_partitions=partitions,
    ) as client:
        alice = bearer(client, "alice", slapd.users["alice"])  # acme, in stadmins
        bob = bearer(client, "bob", slapd.users["bob"])  # acme
        dave = bearer(client, "dave", slapd.users["dave"])  # globex
        me = client.get("/api/v1/auth/me", headers=dave).json()
        assert me["partition"] == "globex" and me["administrator"] is False
        secret = client.post(
            "/api/v1/meetings", json={"name": "Acme plans", "start": SOON}, headers=bob
        ).json()
        client.post("/api/v1/meetings", json={"name": "Globex plans", "start": SOON}, headers=dave)

        def names(headers: dict[str, str]) -> list[str]:
            items = client.get("/api/v1/meetings", headers=headers).json()["items"]
            return sorted(m["name"] for m in items)

        assert names(bob) == ["Acme plans"]
        assert names(dave) == ["Globex plans"]
        assert names(alice) == ["Acme plans", "Globex plans"]  # administrators see all
        assert names({}) == []  # anonymous users see meetings of no partition only
        # Not found at all from the other partition, not even by its id.
        assert client.get(f"/api/v1/meetings/{secret['id']}", headers=dave).status_code == 404
        assert client.get(f"/api/v1/meetings/{secret['id']}", headers=bob).status_code == 200
        day = SOON[:10]
        calendar = client.get(
            "/api/v1/calendar",
            params={"from": f"{day}T00:00:00Z", "to": f"{day}T23:59:59Z"},
            headers=dave,
        ).json()
        assert [o["name"] for o in calendar] == ["Globex plans"]
        # The moderator picker finds people of one's own partition only.
        found = client.get("/api/v1/auth/people", params={"q": ""}, headers=dave).json()
        assert {(p["username"], p["partition"]) for p in found} == {
            ("dave", "globex"),
            ("erin", "globex"),
        }
        acme = client.get("/api/v1/auth/people", params={"q": ""}, headers=bob).json()
        assert {p["username"] for p in acme} == {"alice", "bob", "carol"}
        assert client.get("/api/v1/auth/people", params={"q": "a"}).status_code == 401
        wrong = client.post("/api/v1/auth/token", json={"username": "dave", "password": "wrong"})
        assert wrong.status_code == 401


def test_users_and_keys_from_the_command_line(migrated_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    def moot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "moot", *args, "--database-url", migrated_url],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    added = moot("users", "add", "carol", "--admin")
    assert added.returncode == 0, added.stderr
    assert "user carol added (groups: stadmins)" in added.stdout
    password = added.stdout.split("password: ")[1].split()[0]
    again = moot("users", "add", "Carol")
    assert again.returncode == 1 and "exists already" in again.stderr
    piped = moot("users", "add", "dan", "--password-stdin", stdin="short\n")
    assert piped.returncode == 1 and "at least 8 characters" in piped.stderr
    listed = moot("users", "list")
    assert "carol" in listed.stdout and "stadmins" in listed.stdout

    with ems(migrated_url, tmp_path) as client:
        token = bearer(client, "carol", password)
        assert client.get("/api/v1/servers", headers=token).status_code == 200
    rotated = moot("keys", "rotate", "--retire-old")
    assert rotated.returncode == 0 and "1 old key(s) retired" in rotated.stdout
    with ems(migrated_url, tmp_path) as client:  # every EMS node reads the ring
        answer = client.get("/api/v1/servers", headers=token)
        assert answer.status_code == 401 and "retired key" in answer.json()["detail"]
    removed = moot("users", "remove", "carol")
    assert removed.returncode == 0
    assert moot("users", "remove", "carol").returncode == 1
