"""The live monitoring page in a real browser: it follows the cluster without a reload.

Real processes (moot.harness): an EMS on SQLite with room1 and room2; a participant
attends a meeting in another browser; a room server is killed; a server's limit is reached.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_admin_servers_browser import (
    PHONE,
    no_page_scroll,
    running_admin_cluster,
    sign_in,
)
from tests.e2e.test_browser import create_meeting, enter, meeting_detail

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture
def admin_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_admin_cluster(tmp_path) as running:
        yield running


def mark_page(page: Page) -> None:
    """A mark a reload would wipe out: the page must still have it at the end."""
    page.evaluate("() => { window.notReloaded = true; }")


def still_the_same_page(page: Page) -> None:
    assert page.evaluate("() => window.notReloaded === true"), "the page was reloaded"


def test_the_page_follows_meetings_participants_failures_and_limits(
    admin_cluster: Cluster, new_context: NewContext
) -> None:
    cluster = admin_cluster
    page = new_context().new_page()
    sign_in(page, cluster, "alice", "/admin/monitor")
    expect(page.locator("#monitor-connection")).to_have_text("Live: this page updates itself.")
    cards = page.locator("#monitor-servers")
    expect(cards.locator("#monitor-room1 [data-role=status]")).to_have_text("online")
    expect(cards.locator("#monitor-room2 [data-role=status]")).to_have_text("online")
    expect(page.locator("#total-meetings")).to_have_text("0")
    mark_page(page)

    # A meeting starts and Carol attends it in another browser: both show up, live.
    meeting_id = create_meeting(cluster, "Design <review>", "Carol")
    enter(new_context(), cluster, meeting_id, "Carol")
    host = meeting_detail(cluster, meeting_id)["server"]
    other = "room2" if host == "room1" else "room1"
    row = cards.locator(f"#monitor-{host} tr[data-meeting='{meeting_id}']")
    expect(row.get_by_role("rowheader")).to_have_text("Design <review>")
    expect(row.locator("td.people")).to_contain_text("Carol")
    expect(row.locator("td.count")).to_have_text("1")
    expect(page.locator("#total-participants")).to_have_text("1")
    expect(cards.locator(f"#monitor-{host} [data-role=meetings]")).to_have_text("1 of 100")
    still_the_same_page(page)

    # The host's limit of participants per meeting is reached: it stands out, in words.
    with cluster.http() as http:
        changed = http.patch(
            f"{cluster.ems_url}/api/v1/servers/{host}", json={"max_users_per_meeting": 1}
        )
        assert changed.status_code == 200
    alert_text = f"meeting Design <review> on {host} has 1 participants: the limit is 1 per meeting"
    alert = page.locator("#alerts li.alert-critical", has_text=alert_text)
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Critical:")
    # Said to screen readers too, by the live region (role=alert).
    expect(page.get_by_role("alert")).to_contain_text(f"Critical: {alert_text}.")
    expect(cards.locator(f"#monitor-{host}")).to_have_attribute("data-level", "critical")
    expect(cards.locator(f"#monitor-{host} .level-word")).to_have_text("critical")
    # Red on the page: the card's border and the alert's colour differ from a calm one.
    border = cards.locator(f"#monitor-{host}").evaluate("el => getComputedStyle(el).borderTopColor")
    assert border == "rgb(179, 38, 30)", border
    still_the_same_page(page)

    # The other server is killed: the page says it failed, without a reload.
    victim = next(p for p in cluster.processes if p.name == other)
    victim.popen.send_signal(signal.SIGKILL)
    victim.popen.wait()
    expect(cards.locator(f"#monitor-{other} [data-role=status]")).to_have_text(
        "failed", timeout=20_000
    )
    failed = f"Critical: {other} has failed: its meetings move to other servers"
    expect(page.locator("#alerts")).to_contain_text(failed)
    expect(page.get_by_role("alert")).to_contain_text(failed)
    expect(page.locator("#total-online")).to_have_text("1 of 2")
    status = cluster.client.get(f"{cluster.ems_url}/api/v1/servers/{other}", headers=cluster.admin)
    assert status.json()["status"] == "failed"
    still_the_same_page(page)

    # One server only, chosen with the keyboard.
    page.get_by_label("Show").focus()
    page.keyboard.press("End")  # the last server in the list
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{cluster.ems_url}/admin/monitor?server=room2")
    expect(page.get_by_role("heading", level=1)).to_have_text("Monitoring: room2")
    expect(cards.locator("article")).to_have_count(1)
    expect(cards.locator("#monitor-room2")).to_be_visible()


def test_phone_width_and_a_full_server(admin_cluster: Cluster, new_context: NewContext) -> None:
    cluster = admin_cluster
    with cluster.http() as http:
        for name in ("room1", "room2"):
            changed = http.patch(
                f"{cluster.ems_url}/api/v1/servers/{name}", json={"max_active_meetings": 1}
            )
            assert changed.status_code == 200
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, cluster, "alice", "/admin/monitor")
    mark_page(page)
    meeting_id = create_meeting(cluster, "A meeting with a rather long name, to wrap", "Dan")
    enter(new_context(), cluster, meeting_id, "Dan", as_moderator=True)
    host = meeting_detail(cluster, meeting_id)["server"]
    full = f"Critical: {host} is at its limit: 1 of 1 meetings"
    expect(page.locator("#alerts li.alert-critical")).to_contain_text([full])
    expect(page.get_by_role("alert")).to_contain_text(full)
    expect(page.locator(f"#monitor-{host} tr[data-meeting='{meeting_id}'] td.people")).to_have_text(
        "Dan (moderator)"
    )
    no_page_scroll(page)
    still_the_same_page(page)
