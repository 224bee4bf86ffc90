"""The stage in real browsers, a presenter's page and a participant's: a presentation (a PDF
of the meeting's files, drawn by pdf.js) followed page by page, browsed ahead and snapped
back, with notes drawn over a slide; a web page framed where its site allows it, a link and
the reason where not (real EMS and room server processes, Debian Chromium, two local web
pages on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from moot.harness import Cluster
from tests.conftest import module_cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter
from tests.e2e.test_tools_browser import drag
from tests.stage import attach, pdf_of, pptx, web_pages

pytestmark = [pytest.mark.browser, pytest.mark.processes]

# How many pixels of the slide's canvas are not white: pdf.js drew something.
INKED = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 128) inked += 1;
  return inked;
}"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    yield from module_cluster(tmp_path_factory, sqlite_template)


def slide_shows(page: Page, number: int) -> None:
    """pdf.js drew page `number`, and the whiteboard shows it (its notes go over it)."""
    canvas = page.locator("#slides-canvas")
    expect(canvas).to_have_attribute("data-page", str(number))
    assert canvas.evaluate(INKED) > 500, "the slide is blank"
    expect(page.locator("#board-page")).to_have_text(f"Notes on page {number} of Plan.pdf")
    picture = page.locator("#board .slide-bg").get_attribute("href") or ""
    assert picture.startswith("data:image/png;base64,")


@pytest.mark.screenshots
def test_a_presentation_followed_browsed_ahead_and_snapped_back(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    meeting_id = create_meeting(cluster, "Quarterly review", "Alice")
    broken = b"%PDF-1.4\n" + b"not a PDF after all " * 50
    attach(
        cluster,
        meeting_id,
        ("Plan.pdf", pdf_of(9)),
        ("Budget.pptx", pptx()),
        ("Broken.pdf", broken),
    )
    tall = {"viewport": {"width": 1280, "height": 1000}}  # the slide whole in the pictures
    alice = enter(new_context(**tall), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(**tall), cluster, meeting_id, "Bob")

    # Bob sees the files; the office file is said plainly not to be shown as slides, and
    # only a presenter has "Present".
    bob.get_by_role("button", name="Files (3)").click()
    expect(bob.locator("#files li").nth(1)).to_contain_text("Not shown as slides")
    expect(bob.get_by_role("button", name="Present Plan.pdf to everyone")).to_have_count(0)
    bob.get_by_role("button", name="Close", exact=True).click()

    alice.get_by_role("button", name="Files (3)").click()
    expect(alice.get_by_role("button", name="Present Budget.pptx to everyone")).to_have_count(0)
    # A PDF that pdf.js cannot read is said so on the presenter's page, and shown to nobody.
    alice.get_by_role("button", name="Present Broken.pdf to everyone").click()
    expect(alice.locator("#tool-message")).to_contain_text("Broken.pdf cannot be shown as slides")
    expect(bob.locator("#slides-area")).to_be_hidden()
    alice.get_by_role("button", name="Present Plan.pdf to everyone").click()
    alice.get_by_role("button", name="Close", exact=True).click()
    for page in (alice, bob):
        expect(page.locator("#slides-name")).to_have_text("Plan.pdf")
        expect(page.locator("#slides-page")).to_have_text("Page 1 of 9")
        slide_shows(page, 1)
    expect(bob.locator("#announcer")).to_have_text("Alice is presenting Plan.pdf")

    alice.get_by_role("button", name="Next slide").click()
    alice.get_by_role("button", name="Next slide").click()
    for page in (alice, bob):
        expect(page.locator("#slides-page")).to_have_text("Page 3 of 9")
        slide_shows(page, 3)

    # Bob looks ahead on his own: nobody else moves.
    bob.get_by_role("button", name="Next slide").click()
    bob.get_by_role("button", name="Next slide").click()
    expect(bob.locator("#slides-page")).to_have_text(
        "You are on page 5 of 9; the presenter is on page 3"
    )
    slide_shows(bob, 5)
    expect(alice.locator("#slides-page")).to_have_text("Page 3 of 9")
    # The presenter turns: Bob stays where he is, and is told where the presenter is.
    alice.get_by_role("button", name="Next slide").click()
    expect(bob.locator("#slides-page")).to_have_text(
        "You are on page 5 of 9; the presenter is on page 4"
    )
    bob.screenshot(path=str(screenshots / "meeting-presentation-browsing.png"))
    bob.get_by_role("button", name="Back to presenter's page (4)").click()
    expect(bob.locator("#slides-page")).to_have_text("Page 4 of 9")
    slide_shows(bob, 4)
    expect(bob.get_by_role("button", name="Back to presenter's page (4)")).to_be_hidden()

    # Alice circles something on slide 4: a note on that slide, over it, for everyone there.
    alice.get_by_role("button", name="Ellipse").click()
    drag(alice, [(0.1, 0.35), (0.45, 0.75)])
    expect(bob.locator("#board .items ellipse.el")).to_have_count(1)
    expect(bob.locator("#board")).to_have_attribute(
        "aria-label", "Notes on page 4 of Plan.pdf, 1 element"
    )
    alice.screenshot(path=str(screenshots / "meeting-presentation.png"))
    bob.get_by_role("button", name="Next slide").click()  # slide 5 has no notes
    expect(bob.locator("#board .items .el")).to_have_count(0)
    bob.get_by_role("button", name="Back to presenter's page (4)").click()
    expect(bob.locator("#board .items ellipse.el")).to_have_count(1)

    # A late joiner opens on the presenter's page.
    carol = enter(new_context(), cluster, meeting_id, "Carol")
    expect(carol.locator("#slides-page")).to_have_text("Page 4 of 9")
    slide_shows(carol, 4)

    expect(carol.locator("#board .items ellipse.el")).to_have_count(1)

    alice.get_by_role("button", name="Close presentation").click()
    for page in (alice, bob, carol):
        expect(page.locator("#slides-area")).to_be_hidden()
        # The board is the board again: its own page, without the slide's notes.
        expect(page.locator("#board-page")).to_have_text("Page 1 of 1")
        expect(page.locator("#board .items .el")).to_have_count(0)

    # Alice makes Bob presenter: his page offers "Present" at once, and he drives.
    alice.get_by_label("Moderator actions for Bob").click()
    alice.get_by_role("button", name="Make Bob presenter").click()
    bob.get_by_role("button", name="Files (3)").click()
    bob.get_by_role("button", name="Present Plan.pdf to everyone").click()
    bob.get_by_role("button", name="Close", exact=True).click()
    bob.get_by_role("button", name="Next slide").click()
    for page in (alice, carol):
        expect(page.locator("#slides-page")).to_have_text("Page 2 of 9")
    expect(carol.locator("#announcer")).to_have_text("The presentation shows page 2")


@pytest.mark.screenshots
def test_a_web_page_framed_where_allowed_and_linked_where_not(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    meeting_id = create_meeting(cluster, "Design review", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    expect(bob.get_by_role("button", name="Send web page")).to_have_count(0)  # presenters

    def send(url: str) -> None:
        alice.get_by_role("button", name="Send web page").click()
        alice.get_by_label("Web address").fill(url)
        alice.get_by_role("button", name="Show to everyone").click()

    send("javascript:alert(1)")
    expect(alice.locator("#tool-message")).to_have_text(
        "Only http:// and https:// addresses can be sent as a web page."
    )
    alice.get_by_role("button", name="Cancel").click()
    with web_pages() as site:
        send(f"{site}/open")
        for page in (alice, bob):
            expect(page.locator("#web-frame")).to_be_visible()
            heading = page.frame_locator("#web-frame").get_by_role("heading")
            expect(heading).to_have_text("Framing is allowed here")
            expect(page.locator("#web-reason")).to_be_hidden()
        alice.screenshot(path=str(screenshots / "meeting-web-page.png"))

        send(f"{site}/closed")
        for page in (alice, bob):
            expect(page.locator("#web-reason")).to_contain_text(
                "does not let other sites show it in a frame"
            )
            expect(page.locator("#web-frame")).to_be_hidden()
            link = page.get_by_role("link", name=f"{site}/closed")
            expect(link).to_have_attribute("target", "_blank")
        bob.screenshot(path=str(screenshots / "meeting-web-page-link.png"))

    alice.get_by_role("button", name="Take it off the stage").click()
    expect(bob.locator("#web-area")).to_be_hidden()


def test_a_presenter_uploads_a_pdf_from_the_meeting_page_and_presents_it(
    cluster: Cluster, new_context: NewContext, tmp_path: Path
) -> None:
    """No Meeting Center tab: the Files panel of a moderator or presenter takes a file, every
    page lists it at once, and the presenter shows it as slides."""
    meeting_id = create_meeting(cluster, "Upload here", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    deck = tmp_path / "Plan.pdf"
    deck.write_bytes(pdf_of(9))

    # A participant is offered no upload.
    bob.get_by_role("button", name="Files (0)").click()
    expect(bob.get_by_label("Add a file for everyone in the meeting")).to_be_hidden()
    bob.get_by_role("button", name="Close", exact=True).click()

    # Alice makes Bob presenter: the upload is offered to him at once; he uploads the deck.
    alice.get_by_label("Moderator actions for Bob").click()
    alice.get_by_role("button", name="Make Bob presenter").click()
    bob.get_by_role("button", name="Files (0)").click()
    bob.get_by_label("Add a file for everyone in the meeting").set_input_files(str(deck))
    bob.get_by_role("button", name="Upload").click()
    expect(bob.locator("#files-upload-status")).to_contain_text(
        "Uploaded Plan.pdf: everyone in the meeting sees it under Files."
    )
    # Alice's page lists it without a reload.
    expect(alice.get_by_role("button", name="Files (1)")).to_be_visible()
    bob.get_by_role("button", name="Present Plan.pdf to everyone").click()
    bob.get_by_role("button", name="Close", exact=True).click()
    for page in (alice, bob):
        expect(page.locator("#slides-page")).to_have_text("Page 1 of 9")
        slide_shows(page, 1)

    # A file the Meeting Center refuses: said on his page, listed nowhere.
    bad = tmp_path / "run.exe"
    bad.write_bytes(b"MZ\x90\x00")
    bob.get_by_role("button", name="Files (1)").click()
    bob.get_by_label("Add a file for everyone in the meeting").set_input_files(str(bad))
    bob.get_by_role("button", name="Upload").click()
    expect(bob.locator("#files-upload-status")).to_contain_text("Not uploaded:")
    expect(alice.get_by_role("button", name="Files (1)")).to_be_visible()
