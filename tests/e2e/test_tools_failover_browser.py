"""Meeting tools through a SIGKILL of their room server, in real browsers: the pages come
back by themselves (no refresh) to exactly the poll, hands, board, presentation and web
page they had."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter, meeting_detail
from tests.e2e.test_failover_browser import record_states, saw_reconnecting
from tests.e2e.test_stage_browser import slide_shows
from tests.e2e.test_tools_browser import drag, open_poll
from tests.stage import attach, pdf_of, web_pages

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture
def site() -> Iterator[str]:
    with web_pages() as base:
        yield base


def test_poll_hands_and_board_come_back_after_a_sigkill(
    cluster: Cluster, new_context: NewContext, site: str
) -> None:
    meeting_id = create_meeting(cluster, "Resilient tools", "Alice")
    attach(cluster, meeting_id, ("Plan.pdf", pdf_of(9)))
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    first_url = bob.url

    open_poll(alice, "Ship on Friday?", ["Yes", "No"])
    bob_poll = bob.get_by_role("article", name="Ship on Friday?")
    bob_poll.get_by_label("No").check()
    bob_poll.get_by_role("button", name="Vote").click()
    expect(bob_poll).to_contain_text("You voted: No.")
    bob.get_by_role("button", name="Raise hand").click()
    drag(alice, [(0.1, 0.1), (0.3, 0.3), (0.5, 0.2)])
    expect(bob.locator("#board .items .el")).to_have_count(1)
    expect(alice.locator("#roster li .who")).to_have_text(["Bob", "Alice (moderator)"])
    # A presentation on page 3, and a web page its site will not let be framed.
    alice.get_by_role("button", name="Files (1)").click()
    alice.get_by_role("button", name="Present Plan.pdf to everyone").click()
    alice.get_by_role("button", name="Close", exact=True).click()
    alice.get_by_role("button", name="Next slide").click()
    alice.get_by_role("button", name="Next slide").click()
    slide_shows(bob, 3)
    alice.get_by_role("button", name="Send web page").click()
    alice.get_by_label("Web address").fill(f"{site}/closed")
    alice.get_by_role("button", name="Show to everyone").click()
    expect(bob.locator("#web-reason")).to_contain_text("does not let other sites show it")

    victim = meeting_detail(cluster, meeting_id)["server"]
    room = next(p for p in cluster.processes if p.name == victim)
    record_states(bob)
    room.popen.send_signal(signal.SIGKILL)
    saw_reconnecting(bob)
    for page in (alice, bob):
        expect(page.locator("#connection")).to_have_text("connected")
    assert bob.url == first_url  # no reload
    assert meeting_detail(cluster, meeting_id)["server"] != victim

    # The same state on the new server: nothing lost, nothing doubled.
    alice_poll = alice.get_by_role("article", name="Ship on Friday?")
    expect(alice_poll.locator(".result-list li")).to_have_text(["Yes0 votes", "No1 vote"])
    expect(bob_poll).to_contain_text("You voted: No. 1 person has voted.")
    expect(alice.get_by_role("article")).to_have_count(1)
    for page in (alice, bob):
        expect(page.locator("#roster li .who")).to_have_text(["Bob", "Alice (moderator)"])
        slide_shows(page, 3)
        expect(page.locator("#web-link")).to_have_text(f"{site}/closed")
    # A latecomer on the new server reads the PDF with the new server's links.
    carol = enter(new_context(), cluster, meeting_id, "Carol")
    slide_shows(carol, 3)
    alice.get_by_role("button", name="Next slide").click()
    slide_shows(carol, 4)
    # The presentation closed, the board shows its own page again, with its stroke.
    alice.get_by_role("button", name="Close presentation").click()
    for page in (alice, bob):
        expect(page.locator("#board .items .el")).to_have_count(1)
    expect(bob.get_by_role("button", name="Lower hand")).to_have_attribute("aria-pressed", "true")
    # And it goes on: the poll closes on the new server, results to everyone.
    alice_poll.get_by_role("button", name="Close poll").click()
    expect(bob_poll.locator(".result-list li")).to_have_text(["Yes0 votes", "No1 vote"])
