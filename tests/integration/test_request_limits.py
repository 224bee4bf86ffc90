"""Every request body is capped (413 with the reason): JSON, forms, anything not an upload.

In process for each kind of body, then against a real EMS process for a chunked body, which
announces no size at all: the cap holds as the bytes stream, not from Content-Length.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.harness import Cluster
from moot.infra.settings import EmsSettings
from tests.integration.conftest import form_fields

CAP = 64 * 1024  # max_request_bytes in these tests
OVER = b"x" * (CAP + 1)


@pytest.fixture
def ems(tmp_path: Path) -> Iterator[TestClient]:
    settings = EmsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}",
        data_dir=tmp_path / "data",
        cluster_secret="secret",
        max_request_bytes=CAP,
        max_file_bytes=256 * 1024,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def chunks(body: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_json_body_over_the_cap_is_refused_with_413(ems: TestClient) -> None:
    big = b'{"name": "' + b"x" * CAP + b'"}'
    answer = ems.post("/api/v1/meetings", content=big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["detail"] == (
        "this request is larger than 64 KB, the most a request may carry here"
    )
    # Sent in chunks without a Content-Length: counted as it streams, refused the same.
    streamed = ems.post(
        "/api/v1/meetings", content=chunks(big), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413 and "64 KB" in streamed.json()["detail"]
    # Below the cap the API answers as ever.
    assert ems.post("/api/v1/meetings", json={"name": "small"}).status_code in (201, 503)


def test_a_form_over_the_cap_is_refused_with_a_sentence(ems: TestClient) -> None:
    fields = form_fields(ems, username="bob", password="x" * CAP)
    answer = ems.post("/signin", data=fields)
    assert answer.status_code == 413
    assert answer.text.startswith("Not sent: this request is larger than 64 KB")
    streamed = ems.post(
        "/signin",
        content=chunks(b"username=bob&password=" + OVER),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413


def test_multipart_gets_the_upload_cap_only_where_files_are_taken(ems: TestClient) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode()
        + b"y" * (CAP * 2)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    # To a route that takes no files (here, JSON), multipart is just a large body.
    answer = ems.post("/api/v1/meetings", content=body, headers=multipart)
    assert answer.status_code == 413 and "64 KB" in answer.json()["detail"]
    # To the files of a meeting it may carry files up to their own limits.
    created = ems.post(
        "/api/v1/meetings", json={"name": "With files"}, headers={"Authorization": "Bearer secret"}
    )
    if created.status_code == 503:  # no room server in process: schedule it instead
        created = ems.post(
            "/api/v1/meetings",
            json={"name": "With files", "start": "2999-01-01T09:00:00Z"},
            headers={"Authorization": "Bearer secret"},
        )
    meeting_id = created.json()["id"]
    uploaded = ems.post(
        f"/api/v1/meetings/{meeting_id}/files",
        content=body,
        headers={**multipart, "Authorization": "Bearer secret"},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["items"][0]["size"] == CAP * 2


def test_a_chunked_body_to_a_real_ems_is_cut_off_as_it_streams(tmp_path: Path) -> None:
    """Against uvicorn: 50 MB announced by nobody; the EMS answers 413 long before the end."""
    cluster = Cluster(workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        cluster.start_ems(MOOT_MAX_REQUEST_BYTES=str(CAP))
        with socket.create_connection(("127.0.0.1", cluster.ems_port), timeout=10) as conn:
            conn.sendall(
                b"POST /api/v1/meetings HTTP/1.1\r\nHost: ems\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            sent = 0
            answer = b""
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            conn.settimeout(0.05)
            while sent < 50 * 1024 * 1024 and b"\r\n\r\n" not in answer:
                try:
                    conn.sendall(chunk)
                except OSError:  # the EMS closed the connection after answering
                    break
                sent += 65536
                with contextlib.suppress(TimeoutError):
                    answer += conn.recv(65536)
            conn.settimeout(10)
            while b"}" not in answer:
                more = conn.recv(65536)
                if not more:
                    break
                answer += more
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"the most a request may carry here" in answer
        assert sent < 10 * 1024 * 1024, f"{sent} bytes sent before the answer"
    finally:
        cluster.stop()
