"""The administration home and the room-server pages in a real browser.

Real processes (moot.harness): an EMS on SQLite with two room servers, and the local
users alice (administrator) and bob. Everything is done through the pages as a person does
it, and checked as they would see it, and against the REST API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from moot.ems.auth.users import add_user
from moot.ems.store.migrate import upgrade
from moot.harness import Cluster
from tests.e2e.conftest import NewContext

pytestmark = [pytest.mark.browser, pytest.mark.processes]

PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
PHONE = {"width": 375, "height": 740}


@contextmanager
def running_admin_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An EMS on SQLite with room1 and room2; alice administers, bob does not."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}"

    def make_users() -> None:  # in a thread: Playwright's sync API runs the test's loop
        upgrade(database_url)
        asyncio.run(add_user(database_url, "alice", PASSWORDS["alice"], groups=["stadmins"]))
        asyncio.run(add_user(database_url, "bob", PASSWORDS["bob"], display_name="Bob Builder"))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(make_users).result()
    running = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        running.start_ems()
        running.start_rooms("room1", "room2")
        yield running
    finally:
        running.stop()


@pytest.fixture
def admin_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_admin_cluster(tmp_path) as running:
        yield running


def sign_in(page: Page, cluster: Cluster, username: str, then: str = "/") -> None:
    """Through the sign-in page, then at `then`."""
    page.goto(f"{cluster.ems_url}/signin?next={then}")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("main").get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(cluster.ems_url + then)


def server(cluster: Cluster, name: str) -> dict[str, Any] | None:
    """The server as the REST API gives it; None once it is gone."""
    answer = cluster.client.get(f"{cluster.ems_url}/api/v1/servers/{name}", headers=cluster.admin)
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def no_page_scroll(page: Page) -> None:
    """At phone width the page itself never scrolls sideways (tables scroll in their box)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    client = page.evaluate("document.documentElement.clientWidth")
    assert width <= client, f"the page is {width}px wide in a {client}px window"


def field_error(page: Page, label: str) -> str:
    """The message beside the field with this label (its aria-describedby)."""
    field = page.locator("form.server-form").get_by_label(label, exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby")
    assert described, f"{label} names no message"
    return page.locator(f"#{described}").inner_text()


def test_only_administrators_reach_the_administration(
    admin_cluster: Cluster, new_context: NewContext
) -> None:
    cluster = admin_cluster
    # Anonymous: sent to sign in, and back to the page after.
    anonymous = new_context().new_page()
    anonymous.goto(cluster.ems_url + "/admin/servers")
    expect(anonymous).to_have_url(f"{cluster.ems_url}/signin?next=/admin/servers")
    expect(anonymous.get_by_role("navigation", name="Main")).not_to_contain_text("Administration")

    # Bob signs in: no Administration link; the pages say no, and why.
    bob = new_context().new_page()
    sign_in(bob, cluster, "bob")
    nav = bob.get_by_role("navigation", name="Main")
    expect(nav).to_contain_text("Signed in as Bob Builder")
    expect(nav.get_by_role("link", name="Administration")).to_have_count(0)
    for path in ("/admin", "/admin/servers", "/admin/monitor", "/admin/servers/room1/edit"):
        answer = bob.goto(cluster.ems_url + path)
        assert answer is not None and answer.status == 403, path
        expect(bob.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(bob.get_by_role("alert")).to_contain_text("stadmins")
    # Nor may he post a form (a forged one, with his own CSRF token, from a page of his).
    token = bob.locator('input[name="csrf"]').first.get_attribute("value")
    assert token
    posted = bob.request.post(
        cluster.ems_url + "/admin/servers/room1/remove", form={"csrf": token, "force": "1"}
    )
    assert posted.status == 403
    assert server(cluster, "room1") is not None

    # Alice: the link, the home page and its links to every administration page.
    alice = new_context().new_page()
    sign_in(alice, cluster, "alice")
    alice.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    expect(alice).to_have_url(cluster.ems_url + "/admin")
    main = alice.get_by_role("main")
    for name, path in (
        ("Room servers", "/admin/servers"),
        ("Monitoring", "/admin/monitor"),
        ("Configuration", "/admin/config"),
        ("Message to all users", "/admin/broadcast"),
        ("Reports", "/admin/reports"),
    ):
        link = main.get_by_role("navigation", name="Administration").get_by_role("link", name=name)
        expect(link).to_have_attribute("href", path)
        expect(main.locator("ul.admin-home").get_by_role("link", name=name)).to_have_count(1)
    sub = main.get_by_role("navigation", name="Administration")
    expect(sub.get_by_role("link", name="Administration")).to_have_attribute("aria-current", "page")
    # A form without its CSRF token (sent from elsewhere) is refused, and changes nothing.
    forged = alice.request.post(
        cluster.ems_url + "/admin/servers/room1/remove", form={"force": "1"}
    )
    assert forged.status == 403 and "not sent from the Meeting Center" in forged.text()
    assert server(cluster, "room1") is not None
    # A server that does not exist: said so, not a stack trace.
    for path in (
        "/admin/servers/nope/edit",
        "/admin/servers/nope/remove",
        "/admin/monitor?server=nope",
    ):
        answer = alice.goto(cluster.ems_url + path)
        assert answer is not None and answer.status == 404, path
        expect(alice.get_by_role("alert")).to_contain_text(
            "No room server is called \u201cnope\u201d"
        )


def test_add_change_drain_and_remove_a_room_server(
    admin_cluster: Cluster, new_context: NewContext
) -> None:
    cluster = admin_cluster
    page = new_context().new_page()
    sign_in(page, cluster, "alice", "/admin/servers")
    table = page.locator("#servers")
    expect(table.locator("#server-room1")).to_contain_text("online")
    expect(table.locator("#server-room2")).to_contain_text("online")
    expect(table.locator("#server-room1")).to_contain_text("0 of 100")

    # Wrong entries: every message beside its field, nothing saved.
    form = page.locator("form.server-form")
    form.get_by_label("Name", exact=True).fill("room 3")
    form.get_by_label("Address").fill("ftp://room3.example.com")
    form.get_by_label("Most meetings at once").fill("-1")
    form.get_by_label("Most participants per meeting").fill("many")
    form.get_by_label("Unlimited").uncheck()
    form.get_by_role("button", name="Add room server").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    assert "letters, digits" in field_error(page, "Name")
    assert "http:// or https://" in field_error(page, "Address")
    assert field_error(page, "Most meetings at once") == "must be at least 0"
    assert field_error(page, "Most participants per meeting") == "give a whole number"
    assert "tick Unlimited" in field_error(page, "At most instant meetings")
    # What was typed stays, to be put right.
    expect(form.get_by_label("Name", exact=True)).to_have_value("room 3")
    assert server(cluster, "room 3") is None

    # A name that exists already.
    form.get_by_label("Name", exact=True).fill("room1")
    form.get_by_label("Address").fill("https://room1.example.com")
    form.get_by_label("Most meetings at once").fill("5")
    form.get_by_label("Most participants per meeting").fill("50")
    form.get_by_label("Unlimited").check()
    form.get_by_role("button", name="Add room server").click()
    assert "exists already" in field_error(page, "Name")
    assert server(cluster, "room1")["url"] != "https://room1.example.com"  # type: ignore[index]

    # Right: room3, with its capacity.
    form.get_by_label("Name", exact=True).fill("room3")
    form.get_by_label("Address").fill("https://room3.example.com")
    form.get_by_label("Unlimited").uncheck()
    form.get_by_label("At most instant meetings").fill("2")
    form.get_by_label("Location").fill("Berlin <east>")
    form.get_by_role("button", name="Add room server").click()
    expect(page).to_have_url(f"{cluster.ems_url}/admin/servers?done=added&server=room3")
    expect(page.get_by_role("status")).to_contain_text("Room server room3 added")
    row = table.locator("#server-room3")
    expect(row).to_contain_text("offline")
    expect(row).to_contain_text("0 of 5")
    expect(row).to_contain_text("Location: Berlin <east>")  # shown as typed, escaped
    added = server(cluster, "room3")
    assert added is not None
    assert (added["url"], added["max_active_meetings"], added["max_users_per_meeting"]) == (
        "https://room3.example.com",
        5,
        50,
    )
    assert (added["instant_meetings"], added["location"]) == (2, "Berlin <east>")

    # Change it: a wrong number first.
    row.get_by_role("link", name="Change room3").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change room server room3")
    form = page.locator("form.server-form")
    expect(form.get_by_label("Most meetings at once")).to_have_value("5")
    expect(form.get_by_label("At most instant meetings")).to_have_value("2")
    form.get_by_label("Most meetings at once").fill("-3")
    form.get_by_role("button", name="Save").click()
    assert field_error(page, "Most meetings at once") == "must be at least 0"
    assert server(cluster, "room3")["max_active_meetings"] == 5  # type: ignore[index]
    form.get_by_label("Most meetings at once").fill("7")
    form.get_by_label("Unlimited").check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Room server room3 changed")
    changed = server(cluster, "room3")
    assert changed is not None
    assert (changed["max_active_meetings"], changed["instant_meetings"]) == (7, None)
    expect(table.locator("#server-room3")).to_contain_text("0 of 7")

    # Drain it: a deadline and "now" together are refused; then a deadline of 30 minutes.
    table.locator("#server-room3").get_by_role("link", name="Drain room3").click()
    page.get_by_label("Deadline, in minutes from now").fill("30")
    page.get_by_label("Move its meetings to other servers now").check()
    page.get_by_role("button", name="Drain room3").click()
    expect(page.locator("#drain-minutes-error")).to_contain_text("leave the deadline empty")
    assert server(cluster, "room3")["draining"] is False  # type: ignore[index]
    page.get_by_label("Deadline, in minutes from now").fill("0")
    page.get_by_role("button", name="Drain room3").click()
    expect(page.locator("#drain-minutes-error")).to_have_text("must be at least 1")
    page.get_by_label("Deadline, in minutes from now").fill("30")
    page.get_by_role("button", name="Drain room3").click()
    expect(page.get_by_role("status")).to_contain_text("room3 is draining")
    drained = server(cluster, "room3")
    assert drained is not None and drained["draining"] is True
    assert drained["drain_deadline"] is not None
    expect(table.locator("#server-room3").get_by_role("link", name="Drain room3")).to_have_text(
        "Drain again"
    )
    table.locator("#server-room3").get_by_role("button", name="End the drain of room3").click()
    expect(page.get_by_role("status")).to_contain_text("room3 drains no more")
    assert server(cluster, "room3")["draining"] is False  # type: ignore[index]

    # Remove it, after the confirmation.
    table.locator("#server-room3").get_by_role("link", name="Remove room3").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove room server room3?")
    expect(page.get_by_role("main")).to_contain_text("It hosts no meeting now")
    page.get_by_role("button", name="Remove room3").click()
    expect(page.get_by_role("status")).to_contain_text("Room server room3 removed")
    expect(table.locator("#server-room3")).to_have_count(0)
    assert server(cluster, "room3") is None


def test_remove_with_force_moves_the_meetings(
    admin_cluster: Cluster, new_context: NewContext
) -> None:
    cluster = admin_cluster
    with cluster.http() as http:
        drained = http.post(f"{cluster.ems_url}/api/v1/servers/room1/drain")
        assert drained.status_code == 200
        made = http.post(f"{cluster.ems_url}/api/v1/meetings", json={"name": "Weekly"})
        meeting_id = made.json()["id"]
        opened = http.get(
            f"{cluster.ems_url}/m/{meeting_id}", params={"name": "Ann"}, follow_redirects=False
        )
        assert opened.status_code == 303
        assert http.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}").json()["server"] == (
            "room2"
        )
        # room1 takes meetings again: room2's can move there.
        ended = http.patch(f"{cluster.ems_url}/api/v1/servers/room1", json={"draining": False})
        assert ended.status_code == 200
    page = new_context().new_page()
    sign_in(page, cluster, "alice", "/admin/servers")
    page.locator("#server-room2").get_by_role("link", name="Remove room2").click()
    expect(page.get_by_role("main")).to_contain_text("It hosts 1 meeting(s) now")
    page.get_by_role("button", name="Remove room2").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "room2 still hosts meetings, so it was not removed: drain it first"
    )
    assert server(cluster, "room2") is not None
    page.get_by_label("Move its meetings to other servers first").check()
    page.get_by_role("button", name="Remove room2").click()
    expect(page.get_by_role("status")).to_contain_text("Room server room2 removed")
    assert server(cluster, "room2") is None
    with cluster.http() as http:
        moved = http.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}").json()
    assert moved["server"] == "room1" and moved["status"] == "in_progress"
    # The removed server's process is refused from now on; stop it before the EMS.
    next(p for p in cluster.processes if p.name == "room2").stop()


def test_keyboard_only_and_phone_width(admin_cluster: Cluster, new_context: NewContext) -> None:
    cluster = admin_cluster
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, cluster, "alice", "/admin/servers")
    no_page_scroll(page)

    def tab_to(selector: str, limit: int = 80) -> None:
        target = page.locator(selector)
        for _ in range(limit):
            page.keyboard.press("Tab")
            if target.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    # Add a server with the keyboard alone: Tab to the form, type, Enter.
    tab_to("#srv-name")
    page.keyboard.type("room4")
    page.keyboard.press("Tab")
    page.keyboard.type("http://room4.example.com:8443")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type("3")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type("20")
    page.keyboard.press("Enter")  # instant meetings: Unlimited, as the form offers
    expect(page.get_by_role("status")).to_contain_text("Room server room4 added")
    added = server(cluster, "room4")
    assert added is not None and added["max_active_meetings"] == 3
    assert added["max_users_per_meeting"] == 20 and added["instant_meetings"] is None
    no_page_scroll(page)

    # Remove it with the keyboard: its Remove link, then the button, by Tab and Enter.
    tab_to('#server-room4 a[aria-label="Remove room4"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove room server room4?")
    no_page_scroll(page)
    tab_to("form button.danger")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Room server room4 removed")
    assert server(cluster, "room4") is None

    for path in ("/admin", "/admin/servers/room1/edit", "/admin/servers/room1/drain"):
        page.goto(cluster.ems_url + path)
        no_page_scroll(page)
    started = time.monotonic()
    page.goto(cluster.ems_url + "/admin/monitor")
    expect(page.locator("#monitor-room1")).to_be_visible()
    no_page_scroll(page)
    assert time.monotonic() - started < 10
