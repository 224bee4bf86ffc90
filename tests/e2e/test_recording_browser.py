"""A recorded meeting in the browser: told on entering, found afterwards, played back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import give_name_and_attend, meeting_detail, send_chat

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def test_record_a_meeting_then_play_it_back(cluster: Cluster, new_context: NewContext) -> None:
    page = new_context().new_page()
    page.goto(cluster.ems_url + "/")
    form = page.locator("#new-meeting")
    form.get_by_label("Meeting name").fill("Recorded review")
    form.get_by_label("Moderator").fill("Alice")
    form.get_by_label("Record this meeting").check()
    form.get_by_role("button", name="Save").click()
    page.get_by_role("status").get_by_role("link", name="Attend Recorded review").click()
    give_name_and_attend(page, "Alice")
    expect(page.locator("#connection")).to_have_text("connected")
    # Everyone in a recorded meeting sees that it is recorded.
    expect(page.locator("#recording")).to_have_text("● Recording")

    lines = ["first point", "<img src=x onerror=window.pwned=1>", "last point"]
    for text in lines:
        send_chat(page, text)
        # Acknowledged (no longer pending): stored in the journal, so part of the recording.
        expect(page.locator("#messages li:not(.pending) .text").last).to_have_text(text)
    page.get_by_role("button", name="End meeting").click()
    expect(page.locator("#connection")).to_have_text("ended")

    # Afterwards it is listed among the recorded meetings of the Meeting Center, once the
    # EMS has heard the end from the room server (the pages are told first, at once).
    meeting_id = page.url.split("/meeting/")[1].split("?")[0]
    cluster.wait_for(
        lambda: meeting_detail(cluster, meeting_id)["status"] == "ended",
        "the EMS to hear the end",
        timeout=10,
    )
    page.goto(cluster.ems_url + "/")
    recorded = page.get_by_role("table", name="Recorded meetings")
    expect(recorded.locator("tbody tr")).to_have_count(1)
    expect(recorded.locator("tbody tr td").nth(1)).to_have_text("Recorded review")
    expect(recorded.locator("tbody tr td").nth(3)).to_have_text("Recorded")
    recorded.get_by_role("link", name="Play recording of Recorded review").click()

    expect(page.get_by_role("heading", name="Recording of Recorded review")).to_be_visible()
    transcript = page.locator("#transcript li.chat .text")
    expect(transcript).to_have_text(lines)  # readable at once, without playing
    expect(page.locator("#transcript li.segment")).to_have_count(1)
    expect(page.locator("#transcript li.segment")).to_contain_text("recorded on room")

    # Play from the start, by keyboard, fast: the lines come back one after another.
    expect(page.locator("#player")).to_have_attribute("data-ready", "true")  # its script ran
    page.get_by_label("Speed").select_option("64")
    page.get_by_role("button", name="Play").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#player")).to_have_attribute("data-state", "finished")
    expect(transcript).to_have_text(lines)
    expect(page.locator("#transcript li.chat:visible")).to_have_count(3)
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    # Back to the start with the position slider: nothing said yet.
    page.get_by_label("Position").fill("0")
    expect(page.locator("#transcript li.chat:visible")).to_have_count(0)
    expect(page.locator("#transcript img")).to_have_count(0)
    assert page.evaluate("typeof window.pwned") == "undefined"
