"""The Meeting Center and the meeting page in a real browser, against real processes.

The tests share one EMS with two room servers: each makes and ends meetings of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from moot.harness import Cluster
from tests.conftest import module_cluster
from tests.e2e.conftest import NewContext

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    yield from module_cluster(tmp_path_factory, sqlite_template)


def meeting_detail(cluster: Cluster, meeting_id: str) -> dict[str, Any]:
    response = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}", timeout=5)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def room_url(cluster: Cluster, meeting_id: str) -> str:
    """The base address of the room server hosting the meeting."""
    server = meeting_detail(cluster, meeting_id)["server"]
    assert server in {"room1", "room2"}
    response = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/{server}", timeout=5, headers=cluster.admin
    )
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


# The moderator keys of the meetings made here, by meeting id (the API shows each once).
MODERATOR_KEYS: dict[str, str] = {}


def create_meeting(cluster: Cluster, name: str, moderator: str) -> str:
    """A meeting that starts now, made through the REST API without signing in; returns its
    id (its moderator key goes to MODERATOR_KEYS: enter(..., as_moderator=True) uses it)."""
    response = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": name, "moderator": moderator, "expected_participants": 2},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    MODERATOR_KEYS[response.json()["id"]] = response.json()["moderator_key"]
    return str(response.json()["id"])


def meeting_page_url(cluster: Cluster, meeting_id: str) -> re.Pattern[str]:
    return re.compile(
        "^" + re.escape(f"{room_url(cluster, meeting_id)}/meeting/{meeting_id}?token=") + ".+"
    )


def give_name_and_attend(page: Page, name: str) -> None:
    """On the Meeting Center's attend page: say who you are and go in."""
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Attend").click()


def enter(
    context: BrowserContext,
    cluster: Cluster,
    meeting_id: str,
    name: str,
    *,
    as_moderator: bool = False,
) -> Page:
    """Open the meeting's Meeting Center address in `context` and attend as `name`; as its
    moderator through the moderator link its creator was given."""
    page = context.new_page()
    key = f"?key={MODERATOR_KEYS[meeting_id]}" if as_moderator else ""
    page.goto(f"{cluster.ems_url}/m/{meeting_id}{key}")
    give_name_and_attend(page, name)
    expect(page).to_have_url(meeting_page_url(cluster, meeting_id))
    expect(page.locator("#connection")).to_have_text("connected")
    return page


def send_chat(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def test_create_attend_chat_and_end_in_two_browsers(
    cluster: Cluster, new_context: NewContext
) -> None:
    alice_context = new_context()
    alice = alice_context.new_page()

    # The Meeting Center: a new meeting that starts now.
    alice.goto(cluster.ems_url + "/")
    form = alice.locator("#new-meeting")
    form.get_by_label("Meeting name").fill("Browser standup")
    form.get_by_label("Moderator").fill("Alice")
    expect(form.get_by_label("Now")).to_be_checked()
    form.get_by_role("button", name="Save").click()

    notice = alice.get_by_role("status")
    expect(notice).to_contain_text("Browser standup")
    expect(notice).to_contain_text("in progress")
    attend_link = notice.get_by_role("link", name="Attend Browser standup")
    href = attend_link.get_attribute("href")
    assert href is not None
    match = re.fullmatch(r"/m/([^/?#]+)", href)
    assert match, href
    meeting_id = match.group(1)
    expect(alice).to_have_url(re.compile(re.escape(f"?created={meeting_id}") + "$"))

    # Alice attends: the Meeting Center asks for her name, then sends her to a room server.
    attend_link.click()
    expect(alice).to_have_url(f"{cluster.ems_url}/m/{meeting_id}")
    give_name_and_attend(alice, "Alice")
    expect(alice).to_have_url(meeting_page_url(cluster, meeting_id))
    assert not alice.url.startswith(cluster.ems_url)
    expect(alice).to_have_title("Browser standup · Moot")
    expect(alice.locator("#me")).to_have_text("Alice")
    expect(alice.locator("#connection")).to_have_text("connected")
    expect(alice.locator("#roster li .who")).to_have_text(["Alice (moderator)"])

    # Bob attends from another browser context (his own cookies).
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    expect(bob.locator("#me")).to_have_text("Bob")
    expect(bob.get_by_role("button", name="End meeting")).to_have_count(0)
    for page in (alice, bob):
        expect(page.locator("#roster li .who")).to_have_text(["Alice (moderator)", "Bob"])

    # Bob's chat line reaches both pages.
    send_chat(bob, "hello from Bob")
    for page in (alice, bob):
        expect(page.locator("#messages li .sender")).to_have_text(["Bob"])
        expect(page.locator("#messages li .text")).to_have_text(["hello from Bob"])
    expect(bob.get_by_label("Message")).to_have_value("")

    # The moderator ends the meeting: both pages show the ended overlay.
    for page in (alice, bob):
        expect(page.locator("#ended")).to_be_hidden()
    alice.get_by_role("button", name="End meeting").click()
    for page in (alice, bob):
        overlay = page.locator("#ended")
        expect(overlay).to_be_visible()
        expect(overlay).to_contain_text("The meeting has ended (ended by Alice).")
        expect(overlay.get_by_role("link", name="Back to the Meeting Center")).to_have_attribute(
            "href", cluster.ems_url + "/"
        )
        expect(page.locator("#connection")).to_have_text("ended")

    # The EMS has recorded the end and who attended.
    def stored_as_ended() -> bool:
        detail = meeting_detail(cluster, meeting_id)
        return detail["status"] == "ended" and all(a["left_at"] for a in detail["attendance"])

    cluster.wait_for(stored_as_ended, "the meeting to be stored as ended", timeout=10)
    detail = meeting_detail(cluster, meeting_id)
    assert detail["name"] == "Browser standup"
    assert detail["moderator"] == "Alice"
    assert detail["ended_at"] is not None
    people = sorted((a["user"], a["role"]) for a in detail["attendance"])
    assert people == [("Alice", "moderator"), ("Bob", "participant")]


def test_chat_html_is_shown_as_text(cluster: Cluster, new_context: NewContext) -> None:
    meeting_id = create_meeting(cluster, "Escaping", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    expect(alice.locator("#roster li .who")).to_have_text(["Alice (moderator)", "Bob"])

    hostile = "<b>bold</b><script>window.pwned=1</script>"
    send_chat(bob, hostile)
    for page in (alice, bob):
        expect(page.locator("#messages li .text")).to_have_text([hostile])
        expect(page.locator("#messages b")).to_have_count(0)
        expect(page.locator("#messages script")).to_have_count(0)
        assert page.evaluate("typeof window.pwned") == "undefined"

    # A sender name is text too.
    mallory = enter(new_context(), cluster, meeting_id, "<i>Mallory</i>")
    expect(mallory.locator("#me")).to_have_text("<i>Mallory</i>")
    expect(alice.locator("#roster li .who")).to_have_text(
        ["Alice (moderator)", "<i>Mallory</i>", "Bob"]
    )
    expect(alice.locator("#roster i")).to_have_count(0)


def test_forged_token_is_refused(cluster: Cluster, new_context: NewContext) -> None:
    meeting_id = create_meeting(cluster, "Guarded", "Alice")
    page = new_context().new_page()
    response = page.goto(f"{room_url(cluster, meeting_id)}/meeting/{meeting_id}?token=abc")
    assert response is not None
    assert response.status == 403
    expect(page).to_have_title("Cannot enter · Moot")
    expect(page.get_by_role("heading", name="Cannot enter")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("The join token is not valid.")
    expect(page.get_by_role("link", name="Go to the Meeting Center")).to_have_attribute(
        "href", cluster.ems_url + "/"
    )
    # Nothing of the meeting leaks onto the refusal page.
    expect(page.get_by_text("Guarded")).to_have_count(0)
    expect(page.locator("#chat-form")).to_have_count(0)
