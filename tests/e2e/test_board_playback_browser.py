"""The whiteboard after the fact, in a real browser: the whole board downloaded as one PDF
(a page for each board page), and a recorded meeting's board played back with the
scrubber (real EMS and room server processes, Debian Chromium)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from moot.harness import Cluster
from tests.conftest import module_cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import MODERATOR_KEYS, create_meeting, enter
from tests.e2e.test_tools_browser import drag, open_poll

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    yield from module_cluster(tmp_path_factory, sqlite_template)


def pdf_pages(data: bytes) -> list[bytes]:
    """The JPEG of each page of a PDF as the board writes it, after checking its frame: the
    header, the cross-reference table pointing at each object, the page tree's count."""
    assert data.startswith(b"%PDF-1.4\n") and data.rstrip().endswith(b"%%EOF")
    xref = int(re.findall(rb"startxref\n(\d+)", data)[-1])
    assert data[xref:].startswith(b"xref\n")
    table = re.findall(rb"(\d{10}) 00000 n ", data[xref:])
    for number, offset in enumerate(table, start=1):
        assert data[int(offset) :].startswith(f"{number} 0 obj".encode())
    count = int(re.search(rb"/Type /Pages /Kids \[[^\]]*\] /Count (\d+)", data).group(1))  # type: ignore[union-attr]
    assert len(re.findall(rb"/Type /Page ", data)) == count
    jpegs = [
        data[m.end() : m.end() + int(m.group(1))]
        for m in re.finditer(rb"/Filter /DCTDecode /Length (\d+) >>\nstream\n", data)
    ]
    assert len(jpegs) == count
    assert all(j.startswith(b"\xff\xd8") and j.endswith(b"\xff\xd9") for j in jpegs)
    return jpegs


def dark_pixels(page: Page, jpeg: bytes) -> int:
    """How many pixels of a JPEG are far from white, decoded by the browser."""
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    return int(
        page.evaluate(
            """async (url) => {
                const image = new Image();
                image.src = url;
                await image.decode();
                const canvas = document.createElement("canvas");
                canvas.width = image.width;
                canvas.height = image.height;
                const g = canvas.getContext("2d");
                g.drawImage(image, 0, 0);
                const px = g.getImageData(0, 0, image.width, image.height).data;
                let dark = 0;
                for (let i = 0; i < px.length; i += 4) {
                    if (px[i] + px[i + 1] + px[i + 2] < 384) dark++;
                }
                return dark;
            }""",
            url,
        )
    )


def test_the_whole_board_as_one_pdf(cluster: Cluster, new_context: NewContext) -> None:
    meeting_id = create_meeting(cluster, "Board to PDF", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    drag(alice, [(0.1, 0.2), (0.3, 0.5), (0.6, 0.4)])  # page 1: a stroke
    alice.get_by_role("button", name="Add page").click()
    expect(alice.locator("#board-page")).to_have_text("Page 2 of 2")
    alice.get_by_role("button", name="Rectangle").click()
    drag(alice, [(0.2, 0.2), (0.8, 0.8)])  # page 2: a rectangle
    alice.get_by_role("button", name="Add page").click()  # page 3: left empty
    expect(alice.locator("#board-page")).to_have_text("Page 3 of 3")
    expect(alice.locator("#board .pending")).to_have_count(0)

    with alice.expect_download() as got:
        alice.get_by_role("button", name="Download PDF").click()
    assert got.value.suggested_filename == "whiteboard.pdf"
    jpegs = pdf_pages(Path(got.value.path()).read_bytes())
    assert len(jpegs) == 3  # one page per board page, in order
    inked = [dark_pixels(alice, jpeg) for jpeg in jpegs]
    assert inked[0] > 500 and inked[1] > 500, inked  # the stroke; the rectangle's outline
    assert inked[0] != inked[1]
    assert inked[2] < 50, inked  # the empty page is white


@pytest.mark.screenshots
def test_scrub_a_recording_and_the_board_shows_what_was_drawn_by_then(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    made = httpx.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Recorded board", "moderator": "Alice", "record": True},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    meeting_id = made.json()["id"]
    MODERATOR_KEYS[meeting_id] = made.json()["moderator_key"]
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    pending = alice.locator("#board .pending")
    drag(alice, [(0.1, 0.2), (0.3, 0.5), (0.6, 0.4)])
    expect(pending).to_have_count(0)
    time.sleep(1.5)  # the second stroke a moment later: a point in between to scrub to
    drag(alice, [(0.5, 0.7), (0.7, 0.8), (0.9, 0.6)])
    alice.get_by_role("button", name="Rectangle").click()
    drag(alice, [(0.2, 0.6), (0.4, 0.9)])
    expect(pending).to_have_count(0)
    alice.get_by_role("button", name="Undo").click()  # the rectangle goes again
    expect(alice.locator("#board .items .el")).to_have_count(2)
    alice.get_by_role("button", name="Raise hand").click()
    expect(alice.locator("#hand-toggle")).to_have_attribute("aria-pressed", "true")
    open_poll(alice, "Lunch?", ["Soup", "Pie"])
    poll = alice.get_by_role("article", name="Lunch?")
    poll.get_by_label("Pie").check()
    poll.get_by_role("button", name="Vote").click()
    expect(poll).to_contain_text("You voted: Pie.")
    poll.get_by_role("button", name="Close poll").click()
    expect(poll).to_contain_text("(closed)")
    alice.get_by_role("button", name="End meeting").click()
    expect(alice.locator("#connection")).to_have_text("ended")

    recording = httpx.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/recording",
        headers=cluster.admin,
        timeout=10,
    ).json()
    strokes = [
        e["offset_seconds"]
        for s in recording["segments"]
        for e in s["events"]
        if e["kind"] == "board" and e["event"]["kind"] == "board.add"
    ]
    assert len(strokes) == 3 and strokes[1] - strokes[0] >= 1
    between = (strokes[0] + strokes[1]) / 2

    page = new_context().new_page()
    page.goto(recording["playback_url"])
    board = page.get_by_role("img", name=re.compile("^Whiteboard"))
    # At the start: nothing drawn yet.
    expect(board).to_have_attribute("aria-label", "Whiteboard, page 1 of 1, 0 elements")
    # Scrubbed to between the first two strokes: the first only.
    page.get_by_label("Position").fill(str(between))
    expect(board).to_have_attribute("aria-label", "Whiteboard, page 1 of 1, 1 element")
    expect(page.locator("#board .items path.el")).to_have_count(1)
    # To the end: both strokes; the rectangle was undone.
    page.get_by_label("Position").fill(str(recording["duration_seconds"]))
    expect(page.locator("#board .items path.el")).to_have_count(2)
    expect(page.locator("#board .items rect.el")).to_have_count(0)
    expect(page.locator("#hands li")).to_have_text(["Alice"])
    # The poll with its results (how many voted; who, in an anonymous poll, nobody).
    expect(page.locator("#polls > li")).to_have_count(1)
    expect(page.locator("#polls > li")).to_contain_text("Lunch? (closed, 1 voted)")
    expect(page.locator("#polls > li li")).to_have_text(["Soup: 0", "Pie: 1"])
    page.screenshot(path=str(screenshots / "recording-playback.png"), full_page=True)
    # Back again: the board goes back with the scrubber.
    page.get_by_label("Position").fill(str(between))
    expect(page.locator("#board .items .el")).to_have_count(1)
    expect(page.locator("#hands li")).to_have_count(0)
    expect(page.locator("#polls > li")).to_have_count(0)
    # Played fast from there to the end: the strokes come back, the transcript says the hand.
    page.get_by_label("Speed").select_option("64")
    page.get_by_role("button", name="Play").click()
    expect(page.locator("#player")).to_have_attribute("data-state", "finished")
    expect(page.locator("#board .items .el")).to_have_count(2)
    expect(page.locator("#transcript li.tool .text")).to_have_text(
        [
            "Alice raised a hand",
            "Alice opened a poll: Lunch?",
            "Alice closed the poll “Lunch?”: Soup 0, Pie 1",
        ]
    )
