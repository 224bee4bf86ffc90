"""A message to all users in a real browser: sent from /admin/broadcast, it appears within
2 s on an open Meeting Center page and on two meeting pages hosted by two different room
servers; it is shown as text, can be dismissed, and pages opened later show it too.

Real processes: an EMS on SQLite with two room servers (tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from moot.ems.auth.users import add_user
from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter, meeting_detail

pytestmark = [pytest.mark.browser, pytest.mark.processes]

TEXT = "<script>window.pwned = 1</script> The cluster restarts at 18:00: save your work."
DELIVERY_MS = 2000

# Notes when the first banner appears on the page, by the page's own clock (which is the
# machine's: every page runs in the one browser on this machine).
WATCH = """() => {
  window.broadcastShownAt = null;
  new MutationObserver(() => {
    if (window.broadcastShownAt === null && document.querySelector(".broadcast")) {
      window.broadcastShownAt = Date.now();
    }
  }).observe(document.body, { childList: true, subtree: true });
}"""


# Notes every message to all users a Meeting Center page is handed, from its own stream or
# from the tab of the same browser that holds the stream: the positive signal that a page
# got a message it shows no banner for.
SEEN = """(() => {
  const note = (kind, data) => {  // on the page's root element, for Playwright to wait on
    if (kind !== "broadcast") return;
    const root = document.documentElement;
    root.dataset.broadcastsSeen = `${root.dataset.broadcastsSeen || ""} ${data.id} `;
  };
  const Source = window.EventSource;
  window.EventSource = class extends Source {
    constructor(...args) {
      super(...args);
      this.addEventListener("broadcast", (event) => note("broadcast", JSON.parse(event.data)));
    }
  };
  const Channel = window.BroadcastChannel;
  if (Channel) window.BroadcastChannel = class extends Channel {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => note(event.data?.kind, event.data?.data));
    }
  };
})();"""


def add_local_user(cluster: Cluster, username: str, password: str, **options: Any) -> None:
    """As `moot users add` does; in a thread of its own (Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, add_user(cluster.database_url, username, password, **options)
        ).result()


def sign_in_to(page: Page, cluster: Cluster, path: str, username: str, password: str) -> None:
    page.goto(cluster.ems_url + path)
    expect(page).to_have_title("Sign in · Moot")  # an administration page asks first
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("main").get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(cluster.ems_url + path)


def banner(page: Page) -> object:
    return page.get_by_role("alert").filter(has_text="Message from the administrators")


def open_pages_here(admin: Page) -> int:
    """The administration page's count of Meeting Center pages open on this node."""
    admin.reload()
    text = admin.locator("#listeners").inner_text()
    found = re.search(r"(\d+)", text)
    assert found, text
    return int(found.group(1))


def test_message_to_all_reaches_open_pages_on_both_room_servers(
    cluster: Cluster, new_context: NewContext
) -> None:
    add_local_user(cluster, "alice", "alice-password", groups=["stadmins"])
    first, second = create_meeting(cluster, "Design", "Ann"), create_meeting(cluster, "Ops", "Ben")
    hosts = {meeting_detail(cluster, m)["server"] for m in (first, second)}
    assert hosts == {"room1", "room2"}, hosts

    viewer = new_context()
    viewer.add_init_script(SEEN)
    center = viewer.new_page()
    center.goto(cluster.ems_url + "/")
    calendar = viewer.new_page()  # a second tab of the same browser
    calendar.goto(cluster.ems_url + "/calendar")
    ann = enter(new_context(), cluster, first, "Ann")
    ben = enter(new_context(), cluster, second, "Ben")
    assert ann.url.split("/meeting/")[0] != ben.url.split("/meeting/")[0]  # two servers
    pages = {
        "Meeting Center": center,
        "its second tab": calendar,
        "meeting on one server": ann,
        "on the other": ben,
    }
    for page in pages.values():
        page.evaluate(WATCH)
        expect(page.locator(".broadcast")).to_have_count(0)

    admin = new_context().new_page()
    sign_in_to(admin, cluster, "/admin/broadcast", "alice", "alice-password")
    expect(admin.get_by_role("navigation", name="Administration")).to_be_visible()
    expect(admin.get_by_label("Show for")).to_have_value("60")  # 1 hour unless chosen
    # The viewer's stream is open, one for both tabs (and the admin page's own).
    for _ in range(50):
        if open_pages_here(admin) >= 2:
            break
    else:
        raise AssertionError("the Meeting Center page's stream did not open")
    assert open_pages_here(admin) == 2

    admin.get_by_label("Message", exact=True).fill(TEXT)
    sent_at = admin.evaluate("Date.now()")
    admin.get_by_role("button", name="Send to all users").click()
    for name, page in pages.items():
        shown = banner(page)
        expect(shown).to_be_visible()
        expect(shown.locator(".text")).to_have_text(TEXT)  # as text: the tag is shown
        expect(shown.locator("script")).to_have_count(0)
        assert page.evaluate("window.pwned") is None, name
        delay = page.evaluate("window.broadcastShownAt") - sent_at
        assert delay < DELIVERY_MS, f"{name}: shown {delay} ms after Send"
        print(f"message to all: {name} shown {delay} ms after Send")  # the figure, with -s
    expect(admin.locator("#sent-notice")).to_contain_text("is sent")
    expect(admin.locator("#current-broadcasts")).to_contain_text(TEXT)

    # Dismissed: gone, and not back after a reload (the browser remembers it).
    banner(center).get_by_role("button", name="Dismiss the message from the administrators").click()
    expect(banner(center)).to_have_count(0)
    expect(banner(calendar)).to_have_count(0)  # the same browser's other tab too
    [showing] = cluster.client.get(
        f"{cluster.ems_url}/api/v1/broadcasts", headers=cluster.admin, timeout=5
    ).json()
    center.reload()
    expect(center.get_by_role("heading", level=1).first).to_be_visible()
    # Handed the message again (its stream gives what is showing), and it stays hidden.
    expect(center.locator("html")).to_have_attribute(
        "data-broadcasts-seen", re.compile(rf" {showing['id']} ")
    )
    expect(banner(center)).to_have_count(0)
    banner(ann).get_by_role("button", name="Dismiss the message from the administrators").click()
    expect(banner(ann)).to_have_count(0)
    expect(banner(ben)).to_be_visible()  # someone else's dismissal is theirs only

    # Opened afterwards, before it expires: the Test Meeting page and a meeting page.
    later = new_context().new_page()
    later.goto(cluster.ems_url + "/test")
    expect(banner(later).locator(".text")).to_have_text(TEXT)
    cat = enter(new_context(), cluster, second, "Cat")
    expect(banner(cat).locator(".text")).to_have_text(TEXT)

    # Withdrawn from the administration page: the pages take it away.
    admin.get_by_role("button", name=re.compile(r"Withdraw message \d+")).click()
    expect(admin.locator("#withdrawn-notice")).to_contain_text("is withdrawn")
    for page in (ben, later, cat):
        expect(banner(page)).to_have_count(0)


def test_the_form_says_what_is_wrong_and_fits_a_phone(
    cluster: Cluster, new_context: NewContext
) -> None:
    add_local_user(cluster, "alice", "alice-password", groups=["stadmins"])
    add_local_user(cluster, "bob", "bob-password")
    admin = new_context(viewport={"width": 390, "height": 800}).new_page()
    sign_in_to(admin, cluster, "/admin/broadcast", "alice", "alice-password")
    admin.get_by_label("Message", exact=True).fill("   ")
    admin.get_by_role("button", name="Send to all users").click()
    expect(admin.locator("#broadcast-text-error")).to_have_text("Write the message to send.")
    expect(admin.get_by_label("Message", exact=True)).to_have_attribute("aria-invalid", "true")
    width = admin.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"the page is {width} px wider than the phone"
    # Keyboard only: type, Tab to the duration, Tab to Send, Enter.
    admin.get_by_label("Message", exact=True).fill("Typed and sent with the keyboard")
    admin.get_by_label("Message", exact=True).press("Tab")
    expect(admin.get_by_label("Show for")).to_be_focused()
    admin.keyboard.press("Tab")
    admin.keyboard.press("Enter")
    expect(admin.locator("#sent-notice")).to_be_visible()
    expect(banner(admin).locator(".text")).to_have_text("Typed and sent with the keyboard")

    # Not an administrator: the page refuses.
    bob = new_context().new_page()
    sign_in_to(bob, cluster, "/admin/broadcast", "bob", "bob-password")
    expect(bob.get_by_role("heading", name="Not allowed")).to_be_visible()


# The page's clock an hour behind the EMS's: Date.now() runs late, as on a laptop whose
# clock is wrong. A withdrawal's `expires_at` (the EMS's now) is then an hour ahead of it.
CLOCK_BEHIND = """(() => {
  const real = Date.now.bind(Date);
  Date.now = () => real() - 3600 * 1000;
})();"""


def test_a_withdrawn_message_leaves_a_meeting_page_whose_clock_is_behind(
    cluster: Cluster, new_context: NewContext
) -> None:
    meeting = create_meeting(cluster, "Late clock", "Ann")
    context = new_context()
    context.add_init_script(CLOCK_BEHIND)
    ann = enter(context, cluster, meeting, "Ann")
    assert ann.evaluate("Date.now()") < ann.evaluate("new Date().getTime()") - 3500 * 1000

    with httpx.Client(base_url=cluster.ems_url, headers=cluster.admin, timeout=10) as admin:
        sent = admin.post("/api/v1/broadcasts", json={"text": "Back in five", "show_minutes": 30})
        assert sent.status_code == 201, sent.text
        expect(banner(ann).locator(".text")).to_have_text("Back in five")
        withdrawn = admin.delete(f"/api/v1/broadcasts/{sent.json()['id']}")
        assert withdrawn.status_code == 204
    # Taken away because it is withdrawn, not because a clock says it expired.
    expect(banner(ann)).to_have_count(0, timeout=5000)
    # And the room server no longer keeps it for pages that join now.
    late = enter(new_context(), cluster, meeting, "Ben")
    expect(late.locator("#connection")).to_have_text("connected")
    # The room server sends a page that joins the messages it keeps before anything else:
    # once Ben's own chat line is acknowledged, any such message would be on his page.
    late.get_by_role("textbox", name="Message").fill("Hello")
    late.get_by_role("button", name="Send", exact=True).click()
    expect(late.locator("#messages li:not(.pending) .text")).to_have_text(["Hello"])
    expect(banner(late)).to_have_count(0)
