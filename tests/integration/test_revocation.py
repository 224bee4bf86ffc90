"""Tokens are checked again: sign-ins end with their user (removed, groups changed, in the
local database or in the directory), and renewing a join token (rejoin) decides again
whether its person may still attend, and as what.

Sign-in tokens in process on SQLite and PostgreSQL, the users changed with the real `moot
users` command and a real slapd; rejoin against real EMS and room-server processes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.harness import Cluster
from moot.infra.settings import EmsSettings
from tests.conftest import ClusterOptions, User
from tests.ldap_server import Slapd, running_slapd


def moot_users(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "moot", "users", *args, "--database-url", database_url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def bearer(client: TestClient | httpx.Client, username: str, password: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@pytest.fixture
def local(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    asyncio.run(add_user(migrated_url, "alice", "alice-password", groups=["stadmins"]))
    asyncio.run(add_user(migrated_url, "bob", "bob-password"))
    settings = EmsSettings(database_url=migrated_url, data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        yield client


def test_removing_a_user_ends_their_sign_ins(local: TestClient, migrated_url: str) -> None:
    bob = bearer(local, "bob", "bob-password")
    assert local.get("/api/v1/auth/me", headers=bob).json()["username"] == "bob"
    removed = moot_users(migrated_url, "remove", "bob")
    refused = local.get("/api/v1/auth/me", headers=bob)
    assert refused.status_code == 401
    assert refused.json()["detail"] == (
        "sign-in token refused: the user of this sign-in no longer exists or is disabled:"
        " sign in again"
    )
    assert "their sign-ins end with them" in removed.stdout
    # A new user of the same name is not the old one: the old token stays refused.
    moot_users(migrated_url, "add", "bob", "--password-stdin", stdin="bob-password\n")
    assert local.get("/api/v1/auth/me", headers=bob).status_code == 401


def test_a_change_of_groups_ends_their_sign_ins(local: TestClient, migrated_url: str) -> None:
    alice = bearer(local, "alice", "alice-password")
    assert local.get("/api/v1/servers", headers=alice).status_code == 200
    changed = moot_users(migrated_url, "groups", "alice", "--remove", "stadmins", "--add", "hr")
    assert "alice is in hr now; their sign-ins end" in changed.stdout
    refused = local.get("/api/v1/servers", headers=alice)
    assert refused.status_code == 401 and "groups have changed" in refused.json()["detail"]
    again = bearer(local, "alice", "alice-password")  # signed in anew: with her groups now
    assert local.get("/api/v1/servers", headers=again).status_code == 403
    assert local.get("/api/v1/auth/me", headers=again).json()["groups"] == ["hr"]


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A directory of its own: the test changes it."""
    with running_slapd(tmp_path / "slapd") as directory:
        yield directory


def test_directory_changes_end_sign_ins(migrated_url: str, tmp_path: Path, slapd: Slapd) -> None:
    partitions = "|".join(f"{p.name}={p.search_base}" for p in slapd.partitions)
    settings = EmsSettings(
        database_url=migrated_url,
        data_dir=tmp_path / "data",
        ldap_url=slapd.url,
        ldap_bind_dn=slapd.bind_dn,
        ldap_bind_password=slapd.bind_password,
        ldap_partitions=partitions,
        directory_recheck_seconds=0,  # asked at every use, for the test
    )
    with TestClient(create_app(settings)) as client:
        bob = bearer(client, "bob", slapd.users["bob"])  # acme, in staff
        carol = bearer(client, "carol", slapd.users["carol"])
        assert client.get("/api/v1/auth/me", headers=bob).json()["groups"] == ["staff"]
        slapd.modify(
            "acme",
            "dn: cn=staff,ou=groups,dc=acme,dc=test\nchangetype: modify\n"
            "delete: member\nmember: uid=bob,ou=people,dc=acme,dc=test\n",
        )
        refused = client.get("/api/v1/auth/me", headers=bob)
        assert refused.status_code == 401 and "groups have changed" in refused.json()["detail"]
        assert client.get("/api/v1/auth/me", headers=carol).json()["username"] == "carol"
        slapd.modify("acme", "dn: uid=carol,ou=people,dc=acme,dc=test\nchangetype: delete\n")
        gone = client.get("/api/v1/auth/me", headers=carol)
        assert gone.status_code == 401 and "no longer exists" in gone.json()["detail"]


# -- rejoin -----------------------------------------------------------------------------------


@pytest.fixture
def cluster_url(sqlite_url: str) -> str:
    return sqlite_url  # what is tested here does not depend on the store


@pytest.fixture
def cluster_options() -> ClusterOptions:
    """One room server; an administrator and bob, with local accounts."""
    return ClusterOptions(rooms=("room1",), users=(User("admin", ("stadmins",)), User("bob")))


def join_token(cluster: Cluster, meeting_id: str, **params: Any) -> str:
    headers = params.pop("headers", {})
    answer = cluster.client.get(f"{cluster.ems_url}/m/{meeting_id}", params=params, headers=headers)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].split("token=", 1)[1]


def rejoin(cluster: Cluster, meeting_id: str, token: str) -> httpx.Response:
    return cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/rejoin", json={"token": token}
    )


def role_of(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["token"], options={"verify_signature": False})
    return str(claims["role"])


def test_rejoin_lets_in_only_who_may_still_attend(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.ems_url) as http:
        admin = bearer(http, "admin", "admin-password")
        bob = bearer(http, "bob", "bob-password")

    def meeting(**fields: Any) -> str:
        made = cluster.client.post(
            f"{cluster.ems_url}/api/v1/meetings", json={"name": "Rejoin", **fields}, headers=admin
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def change(meeting_id: str, **fields: Any) -> None:
        changed = cluster.client.patch(
            f"{cluster.ems_url}/api/v1/meetings/{meeting_id}", json=fields, headers=admin
        )
        assert changed.status_code == 200, changed.text

    # Still allowed: in again, in the same role.
    open_meeting = meeting()
    guest = join_token(cluster, open_meeting, name="Vic")
    assert role_of(rejoin(cluster, open_meeting, guest)) == "participant"
    own = join_token(cluster, open_meeting, headers=admin)
    assert role_of(rejoin(cluster, open_meeting, own)) == "moderator"

    # A password set since the token was given: its holder opens the meeting again.
    guarded = meeting()
    visitor = join_token(cluster, guarded, name="Vic")
    moderator = join_token(cluster, guarded, headers=admin)
    change(guarded, password="s3cret")
    refused = rejoin(cluster, guarded, visitor)
    assert refused.status_code == 403
    assert "password has changed since you entered" in refused.json()["detail"]
    assert refused.headers["access-control-allow-origin"] == "*"  # the page reads why
    assert role_of(rejoin(cluster, guarded, moderator)) == "moderator"  # it is theirs to set

    # A restriction added since: only the people it names.
    restricted = meeting()
    visitor = join_token(cluster, restricted, name="Vic")
    bobs = join_token(cluster, restricted, headers=bob)
    change(restricted, restricted_to=["bob"])
    refused = rejoin(cluster, restricted, visitor)
    assert refused.status_code == 403 and "restricted to named people" in refused.json()["detail"]
    assert role_of(rejoin(cluster, restricted, bobs)) == "participant"

    # The user removed since: out, and never back in with that token.
    moot_users(cluster.database_url, "remove", "bob")
    refused = rejoin(cluster, restricted, bobs)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "your user no longer exists or is disabled"


def test_rejoin_after_signing_out_or_a_new_moderator_key(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.ems_url) as http:
        admin = bearer(http, "admin", "admin-password")
    made = cluster.client.post(f"{cluster.ems_url}/api/v1/meetings", json={"name": "Keys"}).json()
    holder = join_token(cluster, made["id"], name="Kim", key=made["moderator_key"])
    signed = join_token(cluster, made["id"], headers=admin)
    assert role_of(rejoin(cluster, made["id"], holder)) == "moderator"

    # The key given anew (the link went to the wrong people): the old key moderates no more.
    renewed = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{made['id']}/moderator-key",
        headers={"X-Moderator-Key": made["moderator_key"]},
    )
    assert renewed.status_code == 201 and renewed.json()["moderator_key"] != made["moderator_key"]
    assert role_of(rejoin(cluster, made["id"], holder)) == "participant"

    assert (
        cluster.client.post(f"{cluster.ems_url}/api/v1/auth/signout", headers=admin).status_code
        == 204
    )
    refused = rejoin(cluster, made["id"], signed)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "you have signed out: sign in and open the meeting again"
