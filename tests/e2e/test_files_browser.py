"""Files attached to meetings, as people use them in Debian Chromium: attached on the form's
Files tab, listed on the details page, downloaded from the Files panel inside the meeting.

A real EMS (files up to 1 MB here, so that an oversized one is small to make) with two room
servers; names with markup must show as typed and run nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from moot.harness import Cluster
from tests.conftest import ClusterOptions, module_cluster
from tests.e2e.conftest import NewContext

pytestmark = [pytest.mark.browser, pytest.mark.processes]

LIMIT = 1024 * 1024
PDF = b"%PDF-1.5\n" + bytes(range(256)) * 2000 + b"\n%%EOF\n"  # 512 kB
NOTES = b"Agenda\n1. <b>Budget</b>\n2. Plans\n"
MARKUP_NAME = "<img src=x onerror=alert(1)> <script>notes.txt"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    options = ClusterOptions(ems_env={"MOOT_MAX_FILE_BYTES": str(LIMIT)})
    yield from module_cluster(tmp_path_factory, sqlite_template, options)


def open_form(new_context: NewContext, cluster: Cluster) -> tuple[Page, Locator, list[str]]:
    """The home page's New meeting form; the list collects any dialog a page opens."""
    page = new_context(timezone_id="Europe/Berlin").new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(cluster.ems_url + "/")
    form = page.locator("form#new-meeting")
    expect(form).to_be_visible()
    return page, form, dialogs


def file_payload(name: str, data: bytes, mime: str) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def meetings_named(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    found = cluster.client.get(
        f"{cluster.ems_url}/api/v1/meetings",
        params={"q": name, "limit": "500"},
        headers=cluster.admin,
        timeout=5,
    ).json()["items"]
    return [m for m in found if m["name"] == name]


@pytest.mark.screenshots
def test_attach_files_see_them_and_download_one_inside_the_meeting(
    new_context: NewContext, cluster: Cluster, tmp_path: Path, screenshots: Path
) -> None:
    page, form, dialogs = open_form(new_context, cluster)
    form.get_by_label("Meeting name").fill("Budget review")
    form.get_by_label("Moderator").fill("Ada")
    form.get_by_role("tab", name="Files", exact=True).click()
    files = form.get_by_label("Attach presentations and documents")
    expect(files).to_be_visible()
    expect(form.locator("#files-hint")).to_contain_text("at most 1 MB each")
    files.set_input_files(
        [
            file_payload("Budget 2027.pdf", PDF, "application/pdf"),
            file_payload(MARKUP_NAME, NOTES, "text/plain"),
        ]
    )
    form.get_by_role("button", name="Save").click()
    notice = page.get_by_role("status").filter(has_text="Meeting Budget review is")
    expect(notice).to_be_visible()
    [meeting] = meetings_named(cluster, "Budget review")

    # The details page lists them, names as typed (markup shown, not run).
    page.goto(f"{cluster.ems_url}/meetings/{meeting['id']}")
    table = page.get_by_role("table", name="Files")
    expect(table.get_by_role("row")).to_have_count(3)
    expect(table.get_by_role("link", name="Budget 2027.pdf")).to_be_visible()
    expect(table.get_by_role("link", name=MARKUP_NAME, exact=True)).to_be_visible()
    expect(table).to_contain_text("500 KB")
    assert page.locator("table.files img").count() == 0

    # Attend; the Files panel inside the meeting has both, and the links download.
    page.get_by_role("link", name="Attend", exact=True).click()
    page.get_by_label("Your name").fill("Ben")
    page.get_by_role("button", name="Attend").click()
    expect(page.locator("#connection")).to_have_text("connected")
    toggle = page.get_by_role("button", name=re.compile(r"^Files \(2\)$"))
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    panel = page.get_by_role("region", name="Files")
    expect(panel).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(panel.locator("#files").get_by_role("link")).to_have_count(2)
    markup = panel.get_by_role("link", name=MARKUP_NAME, exact=True)
    expect(markup).to_be_visible()
    expect(panel).to_contain_text("(500 KB)")
    assert panel.locator("img, script").count() == 0
    page.screenshot(path=str(screenshots / "meeting-files.png"))
    with page.expect_download() as download_info:
        markup.click()
    assert Path(download_info.value.path()).read_bytes() == NOTES
    with page.expect_download() as download_info:
        panel.get_by_role("link", name="Budget 2027.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "Budget 2027.pdf"
    assert Path(download.path()).read_bytes() == PDF

    # A file attached while the meeting runs shows up at once, without a reload.
    added = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}/files",
        files=[("file", ("Late addition.md", b"# late", "text/markdown"))],
        timeout=10,
    )
    assert added.status_code == 201, added.text
    expect(panel.get_by_role("link", name="Late addition.md")).to_be_visible()
    expect(page.get_by_role("button", name="Files (3)")).to_be_visible()
    # Keyboard: Escape closes the panel and gives the focus back to its button.
    panel.get_by_role("link", name="Late addition.md").focus()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Files (3)")).to_be_focused()
    assert dialogs == []


@pytest.mark.parametrize(
    ("name", "data", "mime", "message"),
    [
        (
            "Huge deck.pdf",
            b"%PDF-1.5\n" + b"0" * (LIMIT + 200 * 1024),
            "application/pdf",
            "Huge deck.pdf is 1.2 MB; a file may be at most 1 MB",
        ),
        (
            "<b>page</b>.html",
            b"<script>alert(1)</script>",
            "text/html",
            "b>.html: .html files cannot be attached; allowed: csv,",
        ),
        (
            "<i>slides</i>.pdf",
            b"<html><script>alert(1)</script></html>",
            "application/pdf",
            "i>.pdf is not a PDF document, as its name says",
        ),
    ],
)
@pytest.mark.screenshots
def test_a_refused_file_is_named_beside_the_field_and_nothing_is_saved(
    new_context: NewContext,
    cluster: Cluster,
    screenshots: Path,
    name: str,
    data: bytes,
    mime: str,
    message: str,
) -> None:
    page, form, dialogs = open_form(new_context, cluster)
    title = f"Refused {name}"
    form.get_by_label("Meeting name").fill(title)
    form.get_by_role("tab", name="Files", exact=True).click()
    form.get_by_label("Attach presentations and documents").set_input_files(
        [file_payload("fine.txt", b"fine", "text/plain"), file_payload(name, data, mime)]
    )
    form.get_by_role("button", name="Save").click()

    # Back on the form, on its Files tab, with the message beside the field.
    form = page.locator("form#new-meeting")
    expect(form.get_by_role("tab", name="Files", exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    field = form.get_by_label("Attach presentations and documents")
    expect(field).to_be_visible()
    expect(field).to_have_attribute("aria-invalid", "true")
    error = form.locator("#files-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(message)
    assert "files-error" in (field.get_attribute("aria-describedby") or "")
    expect(form.locator("#files-again")).to_contain_text("choose the files again: fine.txt")
    expect(form.get_by_label("Meeting name")).to_have_value(title)  # the rest as typed
    assert form.locator("#files-error b, #files-error i").count() == 0
    if name.startswith("Huge"):
        form.locator("#panel-files").screenshot(path=str(screenshots / "form-files-refused.png"))
    assert meetings_named(cluster, title) == []
    assert dialogs == []
