"""Meeting tools through a SIGKILL of their room server, in real browsers: the pages come
back by themselves (no refresh) to exactly the poll, hands and board they had."""

from __future__ import annotations

import signal

import pytest
from playwright.sync_api import expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter, meeting_detail
from tests.e2e.test_failover_browser import record_states, saw_reconnecting
from tests.e2e.test_tools_browser import drag, open_poll

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def test_poll_hands_and_board_come_back_after_a_sigkill(
    cluster: Cluster, new_context: NewContext
) -> None:
    meeting_id = create_meeting(cluster, "Resilient tools", "Alice")
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
        expect(page.locator("#board .items .el")).to_have_count(1)
    expect(bob.get_by_role("button", name="Lower hand")).to_have_attribute("aria-pressed", "true")
    # And it goes on: the poll closes on the new server, results to everyone.
    alice_poll.get_by_role("button", name="Close poll").click()
    expect(bob_poll.locator(".result-list li")).to_have_text(["Yes0 votes", "No1 vote"])
