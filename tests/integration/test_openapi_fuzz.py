"""Schemathesis over the EMS's whole OpenAPI, in process on SQLite: no answer is a 5xx.

Every operation of /openapi.json is called with a bounded number of generated requests, as
three identities: signed out, a signed-in user (bob) and an administrator (alice, in
stadmins). An unhandled exception in the app, a 500, or a 5xx the operation does not document
fails the test; the shrunk request (as curl) and the app's traceback are in the message. No
room server runs, so creating or starting a meeting may answer its documented 503.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.schemas import OpenApiSchema

from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.ems.store.migrate import upgrade
from moot.infra.settings import EmsSettings

SECRET = "secret"
EXAMPLES = 15
BASE_URL = "http://testserver"

AnyCase = Case[Any]


@dataclass
class Fuzzed:
    client: TestClient
    schema: OpenApiSchema
    headers: dict[str, dict[str, str]]
    meetings: list[str]  # scheduled meetings, so {meeting_id} operations reach past their 404


def _bearer(client: TestClient, username: str, password: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[Fuzzed]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}"
    upgrade(url)
    asyncio.run(add_user(url, "alice", "alice-password", groups=["stadmins"]))
    asyncio.run(add_user(url, "bob", "bob-password", display_name="Bob Builder"))
    app = create_app(
        EmsSettings(database_url=url, data_dir=tmp_path / "data", cluster_secret=SECRET)
    )
    # raise_server_exceptions: an unhandled exception reaches the test with its traceback.
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=True) as client:
        raw = client.get("/openapi.json")
        assert raw.status_code == 200
        schema = schemathesis.openapi.from_dict(raw.json())
        headers = {
            "signed out": {},
            "user": _bearer(client, "bob", "bob-password"),
            "administrator": _bearer(client, "alice", "alice-password"),
        }
        soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
        meetings = []
        for name, owner in (("bob's", "user"), ("alice's", "administrator")):
            made = client.post(
                "/api/v1/meetings", json={"name": name, "start": soon}, headers=headers[owner]
            )
            assert made.status_code == 201, made.text
            meetings.append(str(made.json()["id"]))
        yield Fuzzed(client=client, schema=schema, headers=headers, meetings=meetings)


def _describe(case: AnyCase, headers: dict[str, str]) -> str:
    return case.as_curl_command(headers=headers, base_url=BASE_URL)


def _call(fuzzed: Fuzzed, case: AnyCase, headers: dict[str, str]) -> None:
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    kwargs.pop("cookies", None)
    cookies = case.cookies or {}
    # A fresh cookie jar per call: what one case set must not leak into the next.
    fuzzed.client.cookies.clear()
    for name, value in cookies.items():
        fuzzed.client.cookies.set(name, str(value))
    for key in ("verify", "allow_redirects", "timeout", "cert", "proxies", "stream"):
        kwargs.pop(key, None)
    method = kwargs.pop("method")
    url = kwargs.pop("url")
    if "data" in kwargs and not isinstance(kwargs["data"], dict):
        kwargs["content"] = kwargs.pop("data")
    try:
        response = fuzzed.client.request(method, url, follow_redirects=False, **kwargs)
    except Exception as error:  # the app raised: report the request and the app's traceback
        raise AssertionError(
            f"{case.operation.label}: the app raised\n{_describe(case, headers)}\n"
            + "".join(traceback.format_exception(error))
        ) from None
    documented = set(case.operation.definition.raw.get("responses", {}))
    # A 5xx the operation documents (503: no room server can host a meeting) is an answer; a
    # 500, or any 5xx it does not document, is a fault.
    assert response.status_code < 500 or (
        response.status_code != 500 and str(response.status_code) in documented
    ), (
        f"{case.operation.label}: {response.status_code}\n{_describe(case, headers)}\n"
        f"{response.text[:2000]}"
    )


def _operations(schema: OpenApiSchema) -> list[Any]:
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # the schema loads whole
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    # Signing out revokes the identity's token: do it last, so the other calls stay signed in.
    return sorted(operations, key=lambda operation: operation.path == "/api/v1/auth/signout")


def _strategy(operation: Any, meetings: list[str]) -> st.SearchStrategy[AnyCase]:
    generated: st.SearchStrategy[AnyCase] = operation.as_strategy()
    if "{meeting_id}" not in operation.path:
        return generated

    def seeded(case: AnyCase, meeting: str) -> AnyCase:
        case.path_parameters = {**(case.path_parameters or {}), "meeting_id": meeting}
        return case

    return st.one_of(generated, st.builds(seeded, generated, st.sampled_from(meetings)))


@pytest.mark.parametrize("identity", ["signed out", "user", "administrator"])
def test_no_server_error(fuzzed: Fuzzed, identity: str) -> None:
    headers = fuzzed.headers[identity]
    failures: list[str] = []
    operations = _operations(fuzzed.schema)
    assert len(operations) >= 29
    for operation in operations:

        @given(case=_strategy(operation, fuzzed.meetings))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        def run(case: AnyCase) -> None:
            _call(fuzzed, case, headers)

        try:
            run()
        except AssertionError as failure:
            failures.append(str(failure))
    assert not failures, f"{identity}: {len(failures)} operations answered 5xx\n\n" + "\n\n".join(
        failures
    )
