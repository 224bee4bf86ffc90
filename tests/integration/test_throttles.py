"""Throttles that hold: sign-in and meeting passwords, on SQLite and PostgreSQL.

An attempt is reserved in the store before its password is checked, so parallel guesses
cannot all be evaluated; a refused attempt does not count, so retrying during the pause
never makes it last for ever.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import LoginFailureRow
from moot.infra.settings import EmsSettings
from tests.dates import today
from tests.integration.conftest import form_fields


def ems(database_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(
            EmsSettings(
                database_url=database_url,
                data_dir=tmp_path / "data",
                cluster_secret="secret",
                **settings,
            )
        )
    )


def failure_reasons(database_url: str) -> Counter[str]:
    async def read() -> Counter[str]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                rows = await session.scalars(select(LoginFailureRow))
                return Counter(r.reason for r in rows)
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def with_bob(migrated_url: str) -> str:
    asyncio.run(add_user(migrated_url, "bob", "bob-password"))
    return migrated_url


def token(client: TestClient, password: str) -> int:
    answer = client.post("/api/v1/auth/token", json={"username": "bob", "password": password})
    return answer.status_code


def test_forty_parallel_wrong_passwords_evaluate_only_five(with_bob: str, tmp_path: Path) -> None:
    with ems(with_bob, tmp_path) as client, ThreadPoolExecutor(40) as pool:
        answers = Counter(pool.map(lambda _: token(client, "guess"), range(40)))
        # Five were checked (and refused); the other 35 were turned away unchecked.
        assert answers == {401: 5, 429: 35}
        reasons = failure_reasons(with_bob)
        assert reasons == {"wrong password": 5, "throttled": 35}
        # bob's own password waits too, with the reason.
        answer = client.post(
            "/api/v1/auth/token", json={"username": "bob", "password": "bob-password"}
        )
        assert answer.status_code == 429
        assert answer.json()["detail"] == (
            "too many failed sign-ins: wait 15 minutes and try again"
        )


def test_retrying_during_the_pause_does_not_prolong_it(with_bob: str, tmp_path: Path) -> None:
    """A 3 s window: 2 failures pause bob; tries during the pause are refused but do not
    count, so once the window of the first failure has passed, bob gets in."""
    with ems(with_bob, tmp_path, login_throttle_seconds=3, login_failures_per_user=2) as client:
        began = time.monotonic()
        assert token(client, "guess") == 401
        assert token(client, "guess") == 401
        while time.monotonic() - began < 2.5:  # an attacker keeps knocking
            assert token(client, "guess") == 429
            time.sleep(0.2)
        deadline = began + 10  # the window is 3 s; a slow machine may take longer to answer
        while (status := token(client, "bob-password")) == 429 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        assert time.monotonic() - began < 6, "the pause lasted far longer than its window"
        # The pause counted nothing: a new window lets bob fail twice again before pausing.
        assert [token(client, "guess") for _ in range(3)] == [401, 401, 429]


# -- meeting passwords ----------------------------------------------------------------------


def password_meeting(client: TestClient) -> str:
    """A meeting with a password, scheduled for tomorrow (its lobby proves a right one)."""
    answer = client.post(
        "/api/v1/meetings",
        json={
            "name": "Board",
            "start": f"{today() + timedelta(days=1)}T09:00:00Z",
            "password": "s3cret",
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def guess(client: TestClient, meeting_id: str, password: str) -> tuple[int, str]:
    answer = client.post(
        f"/m/{meeting_id}", data=form_fields(client, name="Mallory", password=password)
    )
    return answer.status_code, answer.text


def test_meeting_password_guesses_are_throttled_per_meeting_and_address(
    migrated_url: str, tmp_path: Path
) -> None:
    app_settings = {"meeting_password_failures_per_address": 3}
    with ems(migrated_url, tmp_path, **app_settings) as client:
        meeting_id = password_meeting(client)
        other_id = password_meeting(client)
        for _ in range(3):
            status, page = guess(client, meeting_id, "wrong")
            assert status == 403 and "Wrong or missing meeting password" in page
        status, page = guess(client, meeting_id, "s3cret")  # even the right one waits now
        assert status == 403
        assert "Too many wrong passwords for this meeting from your address: wait 15" in page
        # Another meeting from the same address, and this one from another address: not held.
        assert guess(client, other_id, "s3cret")[0] == 200  # its lobby
        elsewhere = TestClient(client.app, client=("10.9.8.7", 4000))
        with elsewhere:
            status, page = guess(elsewhere, meeting_id, "s3cret")
        assert status == 200 and "You are in the lobby" in page


def test_healthz_answers_while_a_meeting_password_is_hashed(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash of a guess is held until /healthz has answered: on the event loop, holding
    it holds /healthz too, and it never answers in time."""
    with ems(migrated_url, tmp_path) as client:
        meeting_id = password_meeting(client)
        hashing = threading.Event()
        healthz_answered = threading.Event()
        served_during_hash: list[bool] = []
        real_scrypt = hashlib.scrypt

        def gated_scrypt(*args: Any, **kwargs: Any) -> bytes:
            hashing.set()
            served_during_hash.append(healthz_answered.wait(timeout=5))
            return real_scrypt(*args, **kwargs)

        monkeypatch.setattr(hashlib, "scrypt", gated_scrypt)
        with ThreadPoolExecutor(1) as pool:
            guessed = pool.submit(guess, client, meeting_id, "wrong")
            assert hashing.wait(timeout=10), "the guess never reached its hash"
            assert client.get("/healthz").text == "ok"
            healthz_answered.set()
            assert guessed.result(timeout=20)[0] == 403
        assert served_during_hash == [True]
