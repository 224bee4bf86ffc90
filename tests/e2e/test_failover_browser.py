"""A meeting page recovers by itself when its room server is killed: no refresh."""

from __future__ import annotations

import signal
import time

import pytest
from playwright.sync_api import Page, expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter, meeting_detail, send_chat

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def record_states(page: Page) -> None:
    """Record every state the page shows as it changes: "reconnecting…" may last only a
    moment, shorter than one poll of expect()."""
    page.evaluate(
        """() => {
            const el = document.getElementById("connection");
            window.statesSeen = [];
            new MutationObserver(() => window.statesSeen.push(el.textContent))
                .observe(el, {childList: true, characterData: true, subtree: true});
        }"""
    )


def saw_reconnecting(page: Page) -> None:
    """Asked from here: page.evaluate goes through the DevTools protocol, which the meeting
    page's Content-Security-Policy does not bind, while wait_for_function's polling evals
    its expression in the page, which the policy refuses (no 'unsafe-eval')."""
    deadline = time.monotonic() + 8
    while "reconnecting…" not in page.evaluate("window.statesSeen"):
        assert time.monotonic() < deadline, page.evaluate("window.statesSeen")
        page.wait_for_timeout(50)


def test_page_reconnects_to_the_new_room_server(cluster: Cluster, new_context: NewContext) -> None:
    meeting_id = create_meeting(cluster, "Resilient", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice")
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    send_chat(bob, "before the crash")
    expect(alice.locator("#messages")).to_contain_text("before the crash")
    first_url = alice.url
    victim = meeting_detail(cluster, meeting_id)["server"]
    room = next(p for p in cluster.processes if p.name == victim)

    record_states(alice)
    room.popen.send_signal(signal.SIGKILL)
    saw_reconnecting(alice)
    expect(alice.locator("#connection")).to_have_text("connected")
    expect(bob.locator("#connection")).to_have_text("connected")

    # Same page, no reload; the meeting runs on the other server now.
    assert alice.url == first_url
    moved = meeting_detail(cluster, meeting_id)
    assert moved["server"] != victim and moved["epoch"] == 2
    expect(alice.locator("#roster")).to_contain_text("Bob")
    send_chat(alice, "after the crash")
    expect(bob.locator("#messages")).to_contain_text("after the crash")
    # Nothing Alice sent stays unacknowledged.
    expect(alice.locator("#messages .pending")).to_have_count(0)
    assert (
        cluster.client.get(
            f"{cluster.ems_url}/api/v1/servers/{victim}", headers=cluster.admin
        ).json()["status"]
        == "failed"
    )


def test_page_leaves_a_hung_room_server_by_itself(
    cluster: Cluster, new_context: NewContext
) -> None:
    """SIGSTOP closes no socket: the page's keep-alive notices the silence and rejoins."""
    meeting_id = create_meeting(cluster, "Patient", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice")
    send_chat(alice, "before the hang")
    victim = meeting_detail(cluster, meeting_id)["server"]
    room = next(p for p in cluster.processes if p.name == victim)
    record_states(alice)
    room.popen.send_signal(signal.SIGSTOP)
    try:
        cluster.wait_for(
            lambda: meeting_detail(cluster, meeting_id)["server"] != victim,
            "the meeting to move off the hung server",
            timeout=8,
        )
        saw_reconnecting(alice)
        expect(alice.locator("#connection")).to_have_text("connected", timeout=8000)
        expect(alice.locator("#messages")).to_contain_text("before the hang")
        send_chat(alice, "after the hang")
        expect(alice.locator("#messages .pending")).to_have_count(0)
    finally:
        room.popen.send_signal(signal.SIGCONT)
