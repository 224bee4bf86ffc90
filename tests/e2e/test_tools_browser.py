"""Meeting tools in real browsers, as people use them: a poll from the moderator's page and
a participant's, raised hands, reactions, and a participant removed (real EMS and room
server processes, Debian Chromium)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from moot.harness import Cluster
from tests.conftest import module_cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    yield from module_cluster(tmp_path_factory, sqlite_template)


def open_poll(page: Page, question: str, options: list[str]) -> None:
    page.get_by_role("button", name="New poll").click()
    page.get_by_label("Question").fill(question)
    page.get_by_label("Options, one a line").fill("\n".join(options))
    page.get_by_role("button", name="Open poll").click()


@pytest.mark.screenshots
def test_a_poll_from_the_moderators_page_and_a_participants(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    meeting_id = create_meeting(cluster, "Lunch vote", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    expect(bob.get_by_role("button", name="New poll")).to_have_count(0)  # moderators only

    open_poll(alice, "Where do we eat?", ["Pizza", "Soup", "Salad"])
    for page in (alice, bob):
        poll = page.get_by_role("article", name="Where do we eat?")
        expect(poll).to_contain_text("(open)")
    # Announced to screen readers, politely.
    expect(bob.locator("#announcer")).to_have_text("Alice opened a poll: Where do we eat?")
    expect(bob.locator("#announcer")).to_have_attribute("aria-live", "polite")

    bob_poll = bob.get_by_role("article", name="Where do we eat?")
    bob_poll.get_by_label("Soup").check()
    bob_poll.get_by_role("button", name="Vote").click()
    expect(bob_poll).to_contain_text("You voted: Soup.")
    expect(bob_poll).to_contain_text("Results are shown when the poll is closed.")
    # Live results on the moderator's page.
    alice_poll = alice.get_by_role("article", name="Where do we eat?")
    expect(alice_poll.locator(".result-list li")).to_have_text(
        ["Pizza0 votes", "Soup1 vote", "Salad0 votes"]
    )
    # Bob changes his mind: still one vote.
    bob_poll.get_by_label("Pizza").check()
    bob_poll.get_by_role("button", name="Change vote").click()
    expect(alice_poll.locator(".result-list li")).to_have_text(
        ["Pizza1 vote", "Soup0 votes", "Salad0 votes"]
    )
    expect(alice_poll).to_contain_text("1 person has voted.")
    bob.set_viewport_size({"width": 390, "height": 844})  # a phone
    bob.screenshot(path=str(screenshots / "meeting-poll-phone.png"), full_page=True)
    alice.screenshot(path=str(screenshots / "meeting-poll.png"))

    alice_poll.get_by_role("button", name="Close poll").click()
    for page in (alice, bob):
        poll = page.get_by_role("article", name="Where do we eat?")
        expect(poll).to_contain_text("(closed)")
        expect(poll.locator(".result-list li")).to_have_text(
            ["Pizza1 vote", "Soup0 votes", "Salad0 votes"]
        )
        expect(poll.get_by_role("button", name="Vote")).to_have_count(0)

    # The results are kept with the meeting: API and CSV, for its moderator.
    kept = httpx.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/polls", headers=cluster.admin, timeout=5
    )
    assert kept.status_code == 200, kept.text
    [result] = kept.json()
    assert (result["question"], result["status"], result["results"]) == (
        "Where do we eat?",
        "closed",
        [1, 0, 0],
    )
    assert result["ballots"] is None  # anonymous
    as_csv = httpx.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/polls.csv",
        headers=cluster.admin,
        timeout=5,
    )
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[1][3:5] == ["Pizza", "1"] and rows[2][3:5] == ["Soup", "0"]
    anonymous = httpx.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/polls", timeout=5)
    assert anonymous.status_code in (401, 403)


def test_hands_reactions_lock_and_removal(cluster: Cluster, new_context: NewContext) -> None:
    meeting_id = create_meeting(cluster, "Town hall", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    carol = enter(new_context(), cluster, meeting_id, "Carol")
    expect(alice.locator("#roster li .who")).to_have_text(["Alice (moderator)", "Bob", "Carol"])

    # Raised hands come first, in the order raised.
    carol.get_by_role("button", name="Raise hand").click()
    bob.get_by_role("button", name="Raise hand").click()
    expect(carol.get_by_role("button", name="Lower hand")).to_have_attribute("aria-pressed", "true")
    for page in (alice, bob, carol):
        expect(page.locator("#roster li .who")).to_have_text(["Carol", "Bob", "Alice (moderator)"])
    expect(alice.locator("#announcer")).to_have_text("Bob raised a hand")
    # Only a moderator has buttons on other people; the room server checks anyway.
    expect(bob.get_by_role("button", name="Lower the hand of Carol")).to_have_count(0)
    alice.get_by_role("button", name="Lower the hand of Carol").click()
    for page in (alice, bob, carol):
        expect(page.locator("#roster li .who")).to_have_text(["Bob", "Alice (moderator)", "Carol"])
    expect(carol.get_by_role("button", name="Raise hand")).to_have_attribute(
        "aria-pressed", "false"
    )

    # A reaction: shown to everyone, counted.
    bob.get_by_role("button", name="React with applause").click()
    expect(alice.locator("#reaction-bubbles")).to_contain_text("👏 Bob")
    expect(carol.get_by_role("button", name="React with applause")).to_contain_text("1")

    # Lock: nobody new; the room server and the EMS both refuse.
    alice.get_by_role("button", name="Lock meeting").click()
    expect(bob.locator("#locked-note")).to_be_visible()
    late = new_context().new_page()
    late.goto(f"{cluster.ems_url}/m/{meeting_id}?name=Dave")
    expect(late.locator("body")).to_contain_text("This meeting is locked")
    alice.get_by_role("button", name="Unlock meeting").click()
    expect(bob.locator("#locked-note")).to_be_hidden()

    # Removal: Bob's page ends, and he cannot come back in.
    alice.get_by_label("Moderator actions for Bob").click()
    alice.get_by_role("button", name="Remove Bob from the meeting").click()
    expect(bob.locator("#ended")).to_contain_text("A moderator removed you from this meeting.")
    expect(alice.locator("#roster li .who")).to_have_text(["Alice (moderator)", "Carol"])
    bob.goto(f"{cluster.ems_url}/m/{meeting_id}")
    expect(bob.locator("body")).to_contain_text("A moderator removed you from this meeting.")
    alice.get_by_role("button", name="Let Bob back in").click()
    expect(alice.locator("#removed-box")).to_be_hidden()
    bob.goto(f"{cluster.ems_url}/m/{meeting_id}")
    expect(bob.locator("#connection")).to_have_text("connected")


def drag(page: Page, points: list[tuple[float, float]]) -> None:
    """Draw on the board with the mouse, through points given as fractions of its size."""
    page.locator("#board").scroll_into_view_if_needed()  # the stage scrolls: polls above it
    box = page.locator("#board").bounding_box()
    assert box is not None
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=4)
    page.mouse.up()


@pytest.mark.screenshots
def test_the_whiteboard_in_two_browsers(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    meeting_id = create_meeting(cluster, "Design review", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    alice_items = alice.locator("#board .items .el")
    bob_items = bob.locator("#board .items .el")

    # Alice draws a pen stroke: Bob's board shows it (smoothed: a filled path).
    drag(alice, [(0.1, 0.2), (0.2, 0.3), (0.3, 0.25), (0.4, 0.4)])
    expect(bob.locator("#board .items path.el")).to_have_count(1)
    expect(alice.locator("#board .pending")).to_have_count(0)  # acknowledged
    # Bob draws a rectangle and places a text.
    bob.get_by_role("button", name="Rectangle").click()
    drag(bob, [(0.5, 0.5), (0.8, 0.8)])
    bob.get_by_role("button", name="Text", exact=True).click()
    bob.get_by_label("Text", exact=True).fill("Ship it")
    drag(bob, [(0.6, 0.2)])
    expect(alice.locator("#board .items rect.el")).to_have_count(1)
    expect(alice.locator("#board .items text.el")).to_have_text("Ship it")
    expect(alice.locator("#board")).to_have_attribute(
        "aria-label", "Whiteboard, page 1 of 1, 3 elements"
    )
    alice.screenshot(path=str(screenshots / "meeting-whiteboard.png"))

    # Alice's undo takes back her stroke only; redo brings it back.
    alice.get_by_role("button", name="Undo").click()
    expect(bob_items).to_have_count(2)
    expect(bob.locator("#board .items path.el")).to_have_count(0)
    alice.get_by_role("button", name="Redo").click()
    expect(bob_items).to_have_count(3)
    # The eraser: Bob erases his rectangle.
    bob.get_by_role("button", name="Eraser").click()
    rect = bob.locator("#board .items rect.el").bounding_box()
    assert rect is not None
    bob.mouse.click(rect["x"] + 1, rect["y"] + rect["height"] / 2)
    expect(alice.locator("#board .items rect.el")).to_have_count(0)

    # The page as SVG, from Bob's browser.
    with bob.expect_download() as got:
        bob.get_by_role("button", name="Download SVG").click()
    exported = Path(got.value.path()).read_text()
    assert exported.startswith("<svg") and "Ship it" in exported and "<path" in exported

    # Only moderators: Bob may not draw, and is told so; a moderator clears the page.
    alice.get_by_label("Only moderators and presenters draw").check()
    expect(bob.locator("#board-who")).to_have_text("Only moderators and presenters draw now.")
    bob.get_by_role("button", name="Pen").click()
    drag(bob, [(0.1, 0.8), (0.3, 0.9)])
    expect(bob.locator("#tool-message")).to_contain_text("Only moderators and presenters may draw")
    expect(alice_items).to_have_count(2)
    alice.get_by_role("button", name="Clear page").click()
    expect(bob_items).to_have_count(0)
    expect(bob.locator("#announcer")).to_have_text("Alice cleared page 1 of the board")
    # A new page: everyone follows.
    alice.get_by_role("button", name="Add page").click()
    expect(bob.locator("#board-page")).to_have_text("Page 2 of 2")
    # From the keyboard: a text placed with Enter on the focused board.
    alice.get_by_label("Text", exact=True).fill("By keyboard")
    alice.locator("#board").focus()
    alice.keyboard.press("Enter")
    expect(bob.locator("#board .items text.el")).to_have_text("By keyboard")


def test_a_page_whose_scripts_load_slowly_shows_everything_sent_meanwhile(
    cluster: Cluster, new_context: NewContext
) -> None:
    """The meeting's socket opens before the page's modules run (early-socket.js, so a late
    joiner's board travels while they load): what comes before they run (the welcome with
    the chat, the board) is shown once they do, nothing dropped."""
    import time

    from tests.e2e.test_browser import send_chat

    meeting_id = create_meeting(cluster, "Slow page", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    send_chat(alice, "Before you came")
    drag(alice, [(0.1, 0.2), (0.2, 0.3), (0.3, 0.25)])
    expect(alice.locator("#board .pending")).to_have_count(0)  # stored

    context = new_context()

    def slowly(route: Any) -> None:
        time.sleep(1.5)  # the socket's first messages arrive meanwhile
        route.continue_()

    context.route("**/static/meeting.js", slowly)
    bob = enter(context, cluster, meeting_id, "Bob")
    expect(bob.locator("#messages")).to_contain_text("Before you came")
    expect(bob.locator("#board .items path.el")).to_have_count(1)
    expect(bob.locator("#roster")).to_contain_text("Alice")
    send_chat(bob, "Hello")  # the socket it took over works both ways
    expect(alice.locator("#messages")).to_contain_text("Hello")
