"""Files attached to meetings: the API and the form on SQLite and PostgreSQL, and a file added
while a meeting runs reaching the pages inside it (real EMS and room-server processes)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import signal
import tempfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from moot.ems.auth.users import add_user
from moot.ems.files import FileService, read_uploads
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import MeetingFileRow, MeetingRow
from moot.harness import Cluster
from tests.integration.conftest import csrf_of, csrf_of_async, form_fields, in_process_ems
from tests.integration.test_meeting_flow import next_of, socket_url

SECRET = "secret"
ADMIN = {"Authorization": f"Bearer {SECRET}"}
SOON = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()

# Real enough files: each passes (or fails) the content checks the way a real one would.
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 12_000 + b"\n%%EOF\n"  # 3 MB: several slices
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def pptx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("ppt/presentation.xml", "<p:presentation/>")
    return out.getvalue()


def odt() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


def ems(database_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    """The EMS in process; its client is no one in particular."""
    return in_process_ems(database_url, tmp_path / "data", SECRET, admin=False, **settings)


@pytest.fixture
def api(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The EMS in process, small limits so that refusals are cheap to provoke."""
    asyncio.run(add_user(migrated_url, "bob", "bob-password"))
    asyncio.run(add_user(migrated_url, "carol", "carol-password"))
    with ems(
        migrated_url,
        tmp_path,
        max_file_bytes=4 * 1024 * 1024,
        max_files_per_meeting=3,
        anonymous_modify_others=False,
        anonymous_delete_others=False,
    ) as client:
        yield client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token", json={"username": username, "password": f"{username}-password"}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def meeting(client: TestClient, headers: dict[str, str] | None = None, **fields: Any) -> str:
    made = client.post(
        "/api/v1/meetings",
        json={"name": "Files", "start": SOON, **fields},
        headers=headers or ADMIN,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def upload(
    client: TestClient, meeting_id: str, *files: tuple[str, bytes], **kwargs: Any
) -> httpx.Response:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in files]
    headers = kwargs.pop("headers", ADMIN)
    return client.post(f"/api/v1/meetings/{meeting_id}/files", files=parts, headers=headers)


def listed(client: TestClient, meeting_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/meetings/{meeting_id}/files", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def message_of(answer: httpx.Response) -> str:
    return str(answer.json()["detail"][0]["msg"])


def meeting_row(client: TestClient, meeting_id: str) -> MeetingRow:
    """What a capability is signed from: the meeting's id, end and epoch (read by the API)."""
    found = client.get(f"/api/v1/meetings/{meeting_id}", headers=ADMIN).json()
    return MeetingRow(
        id=found["id"], end_at=datetime.fromisoformat(found["end"]), epoch=found["epoch"]
    )


def stored_files(database_url: str) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                return int(await session.scalar(select(func.count(MeetingFileRow.id))) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(count())


# -- the API ---------------------------------------------------------------------------


def test_upload_list_download_and_delete(api: TestClient) -> None:
    meeting_id = meeting(api)
    made = upload(api, meeting_id, ("Quarter plan.pdf", PDF), ("deck.pptx", pptx()))
    assert made.status_code == 201, made.text
    items = made.json()["items"]
    assert [(i["name"], i["content_type"], i["size"]) for i in items] == [
        ("Quarter plan.pdf", "application/pdf", len(PDF)),
        (
            "deck.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            len(pptx()),
        ),
    ]
    assert items[0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert items[0]["uploaded_by"] == "cluster-administrator"
    assert [i["id"] for i in listed(api, meeting_id)] == [i["id"] for i in items]

    got = api.get(f"/api/v1/meetings/{meeting_id}/files/{items[0]['id']}", headers=ADMIN)
    assert got.status_code == 200
    assert got.content == PDF  # read back slice by slice, byte for byte
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''Quarter%20plan.pdf" in got.headers["content-disposition"]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert any(v.startswith("sandbox") for v in got.headers.get_list("content-security-policy"))
    again = api.get(
        f"/api/v1/meetings/{meeting_id}/files/{items[0]['id']}",
        headers={**ADMIN, "If-None-Match": got.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""

    removed = api.delete(f"/api/v1/meetings/{meeting_id}/files/{items[0]['id']}", headers=ADMIN)
    assert removed.status_code == 204
    assert [i["name"] for i in listed(api, meeting_id)] == ["deck.pptx"]
    gone = api.get(f"/api/v1/meetings/{meeting_id}/files/{items[0]['id']}", headers=ADMIN)
    assert gone.status_code == 404 and "not found" in gone.json()["detail"]
    assert (
        api.delete(f"/api/v1/meetings/{meeting_id}/files/{items[0]['id']}", headers=ADMIN)
    ).status_code == 404


def test_only_pictures_are_shown_inline_and_the_type_is_ours(api: TestClient) -> None:
    meeting_id = meeting(api)
    items = upload(api, meeting_id, ("photo.png", PNG), ("notes.txt", b"<script>x</script>"))
    assert items.status_code == 201, items.text
    photo, notes = items.json()["items"]
    shown = api.get(f"/api/v1/meetings/{meeting_id}/files/{photo['id']}", headers=ADMIN)
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline;")
    text = api.get(f"/api/v1/meetings/{meeting_id}/files/{notes['id']}", headers=ADMIN)
    # Sent as text/html it would still be text/plain, and downloaded, never rendered.
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("big.pdf", b"%PDF-1.4\n" + b"0" * (4 * 1024 * 1024), 413, "at most 4 MB"),
        ("page.html", b"<html><script>alert(1)</script>", 415, ".html files cannot be"),
        ("drawing.svg", b"<svg onload='alert(1)'/>", 415, ".svg files cannot be"),
        ("tool.exe", b"MZ\x90\x00", 415, "allowed: csv, doc"),
        ("README", b"hello", 415, "files without an extension"),
        ("fake.pdf", b"<html>not a pdf</html>", 415, "fake.pdf is not a PDF document"),
        ("fake.pptx", odt(), 415, "is not a PowerPoint file"),
        ("fake.odt", pptx(), 415, "is not an OpenDocument text"),
        ("binary.txt", b"text\x00\x01\x02", 415, "is not a text file"),
        ("empty.pdf", b"", 422, "empty.pdf is empty"),
    ],
)
def test_refused_files_say_why_and_store_nothing(
    api: TestClient, migrated_url: str, name: str, data: bytes, status: int, words: str
) -> None:
    meeting_id = meeting(api)
    # A good file in the same request: a batch is stored whole or not at all.
    answer = upload(api, meeting_id, ("good.odt", odt()), (name, data))
    assert answer.status_code == status, answer.text
    assert words in message_of(answer)
    assert answer.json()["detail"][0]["loc"] == ["body", "file"]
    assert listed(api, meeting_id) == []
    assert stored_files(migrated_url) == 0


def test_no_more_files_than_the_limit(api: TestClient) -> None:
    meeting_id = meeting(api)
    assert upload(api, meeting_id, ("a.txt", b"a"), ("b.txt", b"b")).status_code == 201
    answer = upload(api, meeting_id, ("c.txt", b"c"), ("d.txt", b"d"))
    assert answer.status_code == 422
    assert message_of(answer) == (
        "a meeting has at most 3 files; this one has 2 and 2 more were chosen"
    )
    four = upload(api, meeting_id, *[(f"{n}.txt", b"x") for n in "wxyz"])
    assert four.status_code == 422
    assert "at most 3 files" in message_of(four)
    assert [f["name"] for f in listed(api, meeting_id)] == ["a.txt", "b.txt"]
    assert upload(api, meeting_id, ("c.txt", b"c")).status_code == 201


@pytest.mark.parametrize("nodes", [1, 2])
def test_concurrent_uploads_never_pass_the_limit(
    migrated_url: str, tmp_path: Path, nodes: int
) -> None:
    """Ten 3-file uploads at once to a meeting that may have 20: six are stored (18 files),
    four refused, whether they reach one EMS or two (two processes' worth: own engines,
    own locks, one database)."""
    with ExitStack() as running:
        clients = [
            running.enter_context(ems(migrated_url, tmp_path, max_files_per_meeting=20))
            for _ in range(nodes)
        ]
        meeting_id = meeting(clients[0])
        batch = [(f"part{i}.pdf", PDF) for i in range(3)]
        with ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(lambda n: upload(clients[n % nodes], meeting_id, *batch), range(10))
            )
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] * 6 + [422] * 4, [a.text[:200] for a in answers]
        refusals = {message_of(a) for a in answers if a.status_code == 422}
        assert refusals == {
            "a meeting has at most 20 files; this one has 18 and 3 more were chosen"
        }
        assert len(listed(clients[0], meeting_id)) == 18
    assert stored_files(migrated_url) == 18


def test_an_upload_holds_one_file_in_memory_at_a_time(api: TestClient) -> None:
    """Files of almost 4 MB checked and stored: Python's memory grows by as much for three
    files as for one (they wait on disk, in the request's temporary files, and are read
    one at a time), not three times as much."""
    size = 4 * 1024 * 1024 - 64
    body = b"%PDF-1.7\n" + b"0" * (size - 16) + b"\n%%EOF\n"
    service: FileService = api.app.state.ems.files  # type: ignore[attr-defined]

    def spooled(name: str) -> UploadFile:
        file = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (closed below)
        for offset in range(0, len(body), 1024 * 1024):
            file.write(body[offset : offset + 1024 * 1024])
        file.seek(0)
        return UploadFile(file, size=len(body), filename=name)  # type: ignore[arg-type]

    async def check_and_store(meeting_id: str, chosen: list[UploadFile]) -> int:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        uploads = await read_uploads(chosen, service.limits)
        await service.add(meeting_id, uploads, "test")
        return tracemalloc.get_traced_memory()[1] - base

    grown = {}
    for count in (1, 3):
        meeting_id = meeting(api)
        chosen = [spooled(f"{n}.pdf") for n in range(count)]
        tracemalloc.start()
        try:
            grown[count] = api.portal.call(check_and_store, meeting_id, chosen)  # type: ignore[union-attr]
        finally:
            tracemalloc.stop()
            for file in chosen:
                file.file.close()
        assert [f["size"] for f in listed(api, meeting_id)] == [size] * count
    assert grown[1] > size  # the measure sees a file's bytes
    assert grown[3] < 1.25 * grown[1], f"1 file: {grown[1] / size:.2f}, 3: {grown[3] / size:.2f}"


def test_a_request_larger_than_any_upload_is_refused_before_it_is_read(api: TestClient) -> None:
    meeting_id = meeting(api)
    body = b"x" * (3 * 4 * 1024 * 1024 + 2 * 1024 * 1024)  # over 3 files of 4 MB and the form
    answer = api.post(
        f"/api/v1/meetings/{meeting_id}/files",
        content=body,
        headers={**ADMIN, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert answer.status_code == 413
    assert "larger than the uploads allowed" in answer.json()["detail"]


def test_who_may_attach_remove_and_download(api: TestClient) -> None:
    bob, carol = bearer(api, "bob"), bearer(api, "carol")
    mine = meeting(api, bob)  # bob moderates it
    assert upload(api, mine, ("a.txt", b"a"), headers=bob).status_code == 201
    file_id = listed(api, mine)[0]["id"]
    url = f"/api/v1/meetings/{mine}/files/{file_id}"

    # Changing the meeting's files: its moderator (and administrators), nobody else here.
    refused = upload(api, mine, ("b.txt", b"b"), headers=carol)
    assert refused.status_code == 403 and "only the moderator" in refused.json()["detail"]
    anonymous = upload(api, mine, ("b.txt", b"b"), headers={})
    assert anonymous.status_code == 401
    assert api.delete(url, headers=carol).status_code == 403
    assert api.delete(url, headers={}).status_code == 401
    # Downloading: whoever may attend (everyone here, anonymous users too).
    assert api.get(url, headers=carol).content == b"a"
    assert api.get(url, headers={}).content == b"a"

    # A restricted meeting's files are for the people it names.
    restricted = meeting(api, bob, restricted_to=["bob"])
    upload(api, restricted, ("r.txt", b"r"), headers=bob)
    r_url = f"/api/v1/meetings/{restricted}/files/{listed(api, restricted)[0]['id']}"
    assert api.get(r_url, headers=carol).status_code == 403
    assert api.get(r_url, headers={}).status_code == 401
    assert api.get(f"/api/v1/meetings/{restricted}/files", headers=carol).status_code == 403
    assert api.get(r_url, headers=bob).content == b"r"

    # A password-protected meeting's: from inside the meeting (below), or for its moderator.
    guarded = meeting(api, bob, password="s3cret")
    upload(api, guarded, ("p.txt", b"p"), headers=bob)
    p_url = f"/api/v1/meetings/{guarded}/files/{listed(api, guarded)[0]['id']}"
    refused = api.get(p_url, headers=carol)
    assert refused.status_code == 403
    assert "open from inside the meeting" in refused.json()["detail"]
    assert api.get(p_url, headers=bob).content == b"p"
    forged = api.get(p_url, params={"key": "not-a-capability"}, headers={})
    assert forged.status_code == 401

    # Inside the meeting, its page's links carry a capability the EMS signed for it.
    files = api.app.state.ems.files  # type: ignore[attr-defined]
    rows = {m: meeting_row(api, m) for m in (guarded, restricted)}
    key = files.capability(rows[guarded], rows[guarded].epoch)
    assert api.get(p_url, params={"key": key}, headers={}).content == b"p"
    other = files.capability(rows[restricted], rows[restricted].epoch)
    assert api.get(p_url, params={"key": other}, headers={}).status_code == 401
    earlier = files.capability(rows[guarded], rows[guarded].epoch - 1)  # before it moved
    assert api.get(p_url, params={"key": earlier}, headers={}).status_code == 401
    assert api.get(f"/api/v1/meetings/{guarded}/files", headers={}).status_code == 200


def test_files_go_with_their_meeting(api: TestClient, migrated_url: str) -> None:
    meeting_id = meeting(api)
    upload(api, meeting_id, ("a.txt", b"a"), ("b.pdf", PDF))
    kept = meeting(api, name="Kept")
    upload(api, kept, ("k.txt", b"k"))
    assert stored_files(migrated_url) == 3
    assert api.delete(f"/api/v1/meetings/{meeting_id}", headers=ADMIN).status_code == 204
    assert stored_files(migrated_url) == 1  # ON DELETE CASCADE
    assert api.get(f"/api/v1/meetings/{meeting_id}/files", headers=ADMIN).status_code == 404
    assert [f["name"] for f in listed(api, kept)] == ["k.txt"]


def test_an_ended_meeting_takes_no_files(api: TestClient) -> None:
    meeting_id = meeting(api)
    assert api.post(f"/api/v1/meetings/{meeting_id}/end", headers=ADMIN).status_code == 200
    answer = upload(api, meeting_id, ("late.txt", b"x"))
    assert answer.status_code == 409
    assert message_of(answer) == "an ended meeting cannot be changed"


# -- the form --------------------------------------------------------------------------


def form(client: TestClient, **fields: str) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(days=3)
    return form_fields(
        client,
        **{
            "type": "collaboration",
            "name": "Form files",
            "moderator": "Ann",
            "expected_participants": "3",
            "start_mode": "schedule",
            "date": f"{start:%Y-%m-%d}",
            "time": "10:00",
            "timezone": "UTC",
            "repeat": "none",
            "hours": "1",
            "minutes": "0",
            "tools": "chat",
            **fields,
        },
    )


def meetings_named(client: TestClient, name: str) -> list[dict[str, Any]]:
    found = client.get("/api/v1/meetings", params={"q": name}, headers=ADMIN).json()["items"]
    return [m for m in found if m["name"] == name]


def test_the_form_creates_a_meeting_with_its_files(api: TestClient) -> None:
    answer = api.post(
        "/meetings/new",
        data=form(api, name="With slides"),
        files=[
            ("files", ("slides.pdf", PDF, "application/pdf")),
            ("files", ("notes.md", b"# x", "")),
        ],
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    [made] = meetings_named(api, "With slides")
    assert [f["name"] for f in listed(api, made["id"])] == ["slides.pdf", "notes.md"]
    details = api.get(f"/meetings/{made['id']}")
    assert f'href="/api/v1/meetings/{made["id"]}/files/' in details.text
    assert "slides.pdf" in details.text and "2.9 MB" in details.text


@pytest.mark.parametrize(
    ("file", "words"),
    [
        (
            ("huge.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024 - 5)),
            "huge.pdf is 5 MB; a file may be at most 4 MB",
        ),
        (
            ("<b>page<b>.html", b"<script>alert(1)</script>"),
            "<b>page<b>.html: .html files cannot be attached; allowed: csv, doc, docx, gif, "
            "jpeg, jpg, md, odp, ods, odt, pdf, png, ppt, pptx, txt, xls, xlsx",
        ),
    ],
)
def test_a_refused_file_keeps_the_meeting_from_being_created(
    api: TestClient, file: tuple[str, bytes], words: str
) -> None:
    answer = api.post(
        "/meetings/new",
        data=form(api, name="Not half"),
        files=[("files", ("ok.txt", b"fine", "text/plain")), ("files", (*file, "text/html"))],
    )
    assert answer.status_code == 422
    error = re.search(r'<p class="error" id="files-error">(.*?)</p>', answer.text, re.S)
    assert error is not None, answer.text
    assert error.group(1) == words.replace("<", "&lt;").replace(">", "&gt;")
    assert 'aria-describedby="files-hint files-error" aria-invalid="true"' in answer.text
    assert "choose the files again: ok.txt, " in answer.text
    assert "<b>page<b>" not in answer.text  # the name is shown escaped
    assert meetings_named(api, "Not half") == []


def test_the_change_form_adds_and_removes_files_or_nothing(api: TestClient) -> None:
    meeting_id = meeting(api, moderator="Ann")
    upload(api, meeting_id, ("old.txt", b"old"))
    old_id = listed(api, meeting_id)[0]["id"]
    page = api.get(f"/meetings/{meeting_id}/edit", headers=ADMIN)
    assert "Remove old.txt" in page.text

    # A change refused (an empty name): the new file is not kept, the old one not removed.
    refused = api.post(
        f"/meetings/{meeting_id}/edit",
        data={**form(api, name=""), "remove_file": str(old_id)},
        files=[("files", ("new.txt", b"new", "text/plain"))],
        headers=ADMIN,
    )
    assert refused.status_code == 422
    assert [f["name"] for f in listed(api, meeting_id)] == ["old.txt"]

    saved = api.post(
        f"/meetings/{meeting_id}/edit",
        data={**form(api, name="Files"), "remove_file": str(old_id)},
        files=[("files", ("new.txt", b"new", "text/plain"))],
        headers=ADMIN,
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert [f["name"] for f in listed(api, meeting_id)] == ["new.txt"]


def test_a_change_refused_after_its_files_were_stored_keeps_none_of_them(
    migrated_url: str, tmp_path: Path
) -> None:
    """A change refused after its files were stored (here: a second unlisted meeting of one
    name, found only once the change is flushed) keeps none of them."""
    with ems(migrated_url, tmp_path, raise_server_exceptions=False) as client:
        meeting(client, name="Hidden", unlisted=True)
        meeting_id = meeting(client)
        answer = client.post(
            f"/meetings/{meeting_id}/edit",
            data={**form(client, name="Hidden"), "unlisted": "on"},
            files=[("files", ("new.txt", b"new", "text/plain"))],
            headers=ADMIN,
            follow_redirects=False,
        )
        assert answer.status_code == 422, answer.text[:2000]
        assert "exists already" in answer.text
        assert listed(client, meeting_id) == []
        assert client.get(f"/api/v1/meetings/{meeting_id}", headers=ADMIN).json()["name"] == (
            "Files"
        )
    assert stored_files(migrated_url) == 0


# -- inside a running meeting (real processes) --------------------------------------------


def enter(cluster: Cluster, meeting_id: str, name: str, password: str) -> str:
    """Attend with the meeting's password, through the form; the room server's page URL."""
    with httpx.Client(base_url=cluster.ems_url, timeout=10) as browser:
        entered = browser.post(
            f"/m/{meeting_id}",
            data={"csrf": csrf_of(browser), "name": name, "password": password},
        )
    assert entered.status_code == 303, entered.text
    return entered.headers["location"]


@pytest.mark.processes
def test_a_file_added_while_the_meeting_runs_reaches_its_pages(cluster: Cluster) -> None:
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Running", "moderator": "Ann", "password": "pw"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    room_page = enter(cluster, meeting_id, "Ben", "pw")

    async def scenario() -> dict[str, Any]:
        async with websockets.connect(socket_url(room_page)) as ben:
            welcome = await next_of(ben, "welcome")
            assert welcome["files"] == []
            # The organiser changes the meeting through the form and attaches a file.
            async with httpx.AsyncClient(base_url=cluster.ems_url, timeout=10) as browser:
                csrf = await csrf_of_async(browser)
                saved = await browser.post(
                    f"/meetings/{meeting_id}/edit",
                    data={
                        "csrf": csrf,
                        "name": "Running",
                        "moderator": "Ann",
                        "expected_participants": "4",
                        "tools": "chat",
                    },
                    files=[("files", ("agenda.pdf", PDF, "application/pdf"))],
                )
                assert saved.status_code in (200, 303), saved.text[:2000]
            update = await next_of(ben, "files", within=10)
            return dict(update)

    update = asyncio.run(scenario())
    [file] = update["files"]
    assert (file["name"], file["size"], file["content_type"]) == (
        "agenda.pdf",
        len(PDF),
        "application/pdf",
    )
    # The link works without any sign-in or password: it carries the meeting's capability.
    parts = urlsplit(file["url"])
    assert f"{parts.scheme}://{parts.netloc}" == cluster.ems_url and "key=" in parts.query
    got = httpx.get(file["url"], timeout=10)
    assert got.status_code == 200 and got.content == PDF
    # A page that joins later gets the list in its welcome.
    late = enter(cluster, meeting_id, "Ann", "pw")

    async def later() -> list[dict[str, Any]]:
        async with websockets.connect(socket_url(late)) as ann:
            files: list[dict[str, Any]] = (await next_of(ann, "welcome"))["files"]
            return files

    assert [f["name"] for f in asyncio.run(later())] == ["agenda.pdf"]
    assert json.dumps(update)  # plain JSON, as the page reads it


@pytest.mark.processes
def test_a_refused_change_keeps_none_of_its_files_and_the_pages_never_see_them(
    cluster: Cluster,
) -> None:
    def make(**fields: Any) -> str:
        made = cluster.client.post(f"{cluster.ems_url}/api/v1/meetings", json=fields, timeout=10)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    meeting_id = make(name="Running", moderator="Ann", password="pw")
    room_page = enter(cluster, meeting_id, "Ben", "pw")

    async def scenario() -> tuple[httpx.Response, list[str], dict[str, Any]]:
        async with websockets.connect(socket_url(room_page)) as ben:
            assert (await next_of(ben, "welcome"))["files"] == []
            async with httpx.AsyncClient(base_url=cluster.ems_url, timeout=10) as browser:
                fields = {
                    "csrf": await csrf_of_async(browser),
                    "moderator": "Ann",
                    "expected_participants": "4",
                    "tools": "chat",
                }
                # Refused by the meeting service, after the file was checked and stored:
                # a required location needs a location.
                refused = await browser.post(
                    f"/meetings/{meeting_id}/edit",
                    data={**fields, "name": "Running", "location_rule": "required"},
                    files=[("files", ("agenda.pdf", PDF, "application/pdf"))],
                )
                files_then = await browser.get(f"/api/v1/meetings/{meeting_id}/files")
                names = [f["name"] for f in files_then.json()["items"]]
                with pytest.raises(TimeoutError):  # the pages hear nothing of it
                    await next_of(ben, "files", within=3)
                # The same file with a change that is saved: the pages get it (this channel
                # would have shown the refused one).
                saved = await browser.post(
                    f"/meetings/{meeting_id}/edit",
                    data={**fields, "name": "Running"},
                    files=[("files", ("minutes.txt", b"minutes", "text/plain"))],
                    follow_redirects=False,
                )
                assert saved.status_code == 303, saved.text[:2000]
            return refused, names, await next_of(ben, "files", within=10)

    refused, names, update = asyncio.run(scenario())
    assert refused.status_code == 422
    assert "a required location needs a location" in refused.text
    assert "choose the files again: agenda.pdf" in refused.text
    assert names == []
    assert [f["name"] for f in update["files"]] == ["minutes.txt"]


@pytest.fixture
def strict_cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """An EMS whose anonymous users may not change others' meetings, with two room servers:
    there, only a meeting page's capability opens a password-protected meeting's files."""
    running = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        running.start_ems(MOOT_ANONYMOUS_MODIFY_OTHERS="false")
        running.start_rooms("room1", "room2")
        yield running
    finally:
        running.stop()


@pytest.mark.processes
def test_a_moved_meeting_gives_its_pages_new_links_and_the_old_ones_close(
    strict_cluster: Cluster,
) -> None:
    cluster = strict_cluster
    plan = odt()
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Moving", "moderator": "Ann", "password": "pw"},
        timeout=10,
    ).json()
    meeting_id, host = created["id"], created["server"]
    added = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/files",
        files=[("file", ("plan.odt", plan, "application/octet-stream"))],
        headers=cluster.admin,
        timeout=10,
    )
    assert added.status_code == 201, added.text
    page = enter(cluster, meeting_id, "Ben", "pw")

    async def welcome_files(url: str) -> list[dict[str, Any]]:
        async with websockets.connect(url) as ws:
            files: list[dict[str, Any]] = (await next_of(ws, "welcome"))["files"]
            return files

    [before] = asyncio.run(welcome_files(socket_url(page)))
    assert httpx.get(before["url"], timeout=10).content == plan
    bare = before["url"].split("?")[0]
    refused = httpx.get(bare, timeout=10)  # no key: the password stands in the way
    assert refused.status_code == 401
    assert "open from inside the meeting" in refused.json()["detail"]

    victim = next(p for p in cluster.processes if p.name == host)
    victim.popen.send_signal(signal.SIGKILL)
    cluster.wait_for(
        lambda: (
            cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}", timeout=5).json()[
                "server"
            ]
            not in (host, None)
        ),
        "the meeting to move",
        timeout=15,
    )
    token = page.split("token=")[1]
    rejoined = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/rejoin", json={"token": token}, timeout=10
    )
    assert rejoined.status_code == 200, rejoined.text
    [after] = asyncio.run(welcome_files(rejoined.json()["socket_url"]))
    assert after["name"] == "plan.odt" and after["url"] != before["url"]
    assert httpx.get(after["url"], timeout=10).content == plan
    assert httpx.get(before["url"], timeout=10).status_code == 401  # signed for the old epoch
