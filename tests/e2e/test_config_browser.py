"""The configuration pages in Debian Chromium: a change made on /admin/config shows in the
history and takes effect in meeting pages of running room servers; an override shows as
one; a TURN credential is never shown back."""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from moot.ems.auth.users import add_user
from moot.harness import Cluster
from tests.e2e.conftest import NewContext

pytestmark = [pytest.mark.browser, pytest.mark.processes]

SECRET = "browser-s3cret"


def sign_in_as_admin(page: Page, cluster: Cluster) -> None:
    # In a thread of its own: Playwright's sync API runs an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run,
            add_user(cluster.database_url, "alice", "alice-password", groups=["stadmins"]),
        ).result()
    page.goto(cluster.ems_url + "/admin/config")  # sent to sign in, then back
    expect(page).to_have_title("Sign in · Moot")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("main").get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(cluster.ems_url + "/admin/config")


def meeting_page(cluster: Cluster, name: str) -> str:
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": name, "moderator": "Carol"},
        headers=cluster.admin,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    answer = cluster.client.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": "Carol"}, timeout=10
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_a_change_on_the_page_is_in_the_history_and_in_meeting_pages(
    cluster: Cluster, new_context: NewContext
) -> None:
    admin = new_context().new_page()
    sign_in_as_admin(admin, cluster)
    form = admin.locator("#config-form")
    expect(form.get_by_label("Longest chat line")).to_have_value("2000")
    form.get_by_label("Longest chat line").fill("12")
    form.get_by_label("Welcome message").fill("Hello from the administrators")
    form.get_by_label("Add a TURN server: URL").fill("turn:turn.example:3478")
    form.get_by_label("Username").fill("moot")
    form.get_by_label("Credential").fill(SECRET)
    form.get_by_label("Comment").fill("shorter lines")
    form.get_by_role("button", name="Save").click()

    expect(admin.locator("#saved")).to_contain_text("version 1")
    expect(admin.locator("#config-servers tbody td.state")).to_have_text(["applied", "applied"])
    expect(form.get_by_label("Longest chat line")).to_have_value("12")
    expect(admin.locator("#cfg-turn-0-url")).to_have_value("turn:turn.example:3478")
    expect(admin.locator("#cfg-turn-0-credential")).to_have_value("")
    expect(admin.get_by_text("stored, not shown")).to_be_visible()
    assert SECRET not in admin.content()

    admin.get_by_role("link", name="History of changes").click()
    newest = admin.locator("#config-history tbody tr").first
    expect(newest.locator(".who-changed")).to_have_text("alice")
    expect(newest.locator("li[data-key=max_chat_length]")).to_have_text(
        "Longest chat line: 2000 → 12"
    )
    expect(newest).to_contain_text("shorter lines")
    expect(newest.locator("time")).not_to_contain_text("UTC")  # in the reader's time zone
    assert SECRET not in admin.content()

    # A meeting page on a running room server: the new values, no restart.
    meeting = new_context().new_page()
    meeting.goto(meeting_page(cluster, "Configured"))
    expect(meeting.locator("#connection")).to_have_text("connected")
    expect(meeting.locator("#welcome")).to_have_text("Hello from the administrators")
    expect(meeting.get_by_label("Message")).to_have_attribute("maxlength", "12")
    config = json.loads(meeting.locator("#meeting-config").text_content() or "{}")
    assert config["ice_servers"] == [
        {"urls": ["turn:turn.example:3478"], "username": "moot", "credential": SECRET}
    ]
    # A line longer than the limit (past the field's own limit) is refused beside it.
    meeting.locator("#chat-input").evaluate("input => input.removeAttribute('maxlength')")
    meeting.get_by_label("Message").fill("far too long a line")
    meeting.get_by_role("button", name="Send", exact=True).click()
    refused = meeting.locator("#messages li.refused")
    expect(refused).to_contain_text("not sent: a chat line is at most 12 characters here")
    meeting.get_by_label("Message").fill("short one")
    meeting.get_by_role("button", name="Send", exact=True).click()
    expect(meeting.locator("#messages li:not(.pending):not(.refused) .text")).to_have_text(
        ["short one"]
    )


def test_an_override_is_shown_as_one(cluster: Cluster, new_context: NewContext) -> None:
    admin = new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone
    sign_in_as_admin(admin, cluster)
    admin.get_by_label("Configure").select_option(label="Room server room1")
    admin.get_by_role("button", name="Show").click()
    expect(admin).to_have_url(cluster.ems_url + "/admin/config?server=room1")
    key = admin.locator("#key-max_chat_length")
    inherit = key.get_by_label(re.compile(r"Use the cluster value \(2000\)"))
    expect(inherit).to_be_checked()
    key.get_by_label("Longest chat line").fill("300")
    expect(inherit).not_to_be_checked()  # typing a value means overriding it
    admin.get_by_role("button", name="Save").click()

    expect(admin.locator("#saved")).to_be_visible()
    expect(admin.locator("#cfg-max_chat_length-override")).to_have_text(
        "Overrides the cluster value 2000"
    )
    row = admin.locator("#config-servers tr[data-server=room1]")
    expect(row.locator("td").nth(3)).to_have_text("max_chat_length")
    expect(admin.locator("#config-servers tr[data-server=room2] td").nth(3)).to_have_text("none")
    width = admin.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"

    # Back to the cluster's value.
    admin.locator("#key-max_chat_length").get_by_label(re.compile("Use the cluster value")).check()
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#cfg-max_chat_length-override")).to_have_count(0)
    expect(row.locator("td").nth(3)).to_have_text("none")
