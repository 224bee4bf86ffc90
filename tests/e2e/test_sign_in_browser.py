"""Signing in with LDAP in a real browser: the header, policies and partitions as people see them.

Real processes: an EMS on SQLite with one room server (moot.harness) and a real slapd with
the partitions acme (alice in stadmins, bob, carol) and globex (dave, erin), see
tests/ldap_server.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext
from tests.ldap_server import Slapd, running_slapd

pytestmark = [pytest.mark.browser, pytest.mark.processes]

SESSION_COOKIE = "moot_session"

# start(**MOOT_env) -> a running cluster signing people in against the module's slapd.
StartCluster = Callable[..., Cluster]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as directory:
        yield directory


@pytest.fixture
def start_cluster(tmp_path: Path, slapd: Slapd) -> Iterator[StartCluster]:
    """Starts an EMS (LDAP sign-in, any more MOOT_* settings) and one room server."""
    started: list[Cluster] = []

    def start(**env: str) -> Cluster:
        running = Cluster(
            workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}"
        )
        started.append(running)
        running.start_ems(
            MOOT_LDAP_URL=slapd.url,
            MOOT_LDAP_BIND_DN=slapd.bind_dn,
            MOOT_LDAP_BIND_PASSWORD=slapd.bind_password,
            MOOT_LDAP_PARTITIONS="|".join(f"{p.name}={p.search_base}" for p in slapd.partitions),
            **env,
        )
        running.start_room("room1")
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()


def session_cookies(context: BrowserContext) -> list[str]:
    return [c["name"] for c in context.cookies() if c["name"] == SESSION_COOKIE]


def sign_in_form(page: Page, username: str, password: str) -> None:
    """On the sign-in page: fill in the form and press Sign in."""
    expect(page).to_have_title("Sign in · Moot")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("main").get_by_role("button", name="Sign in").click()


def sign_in(page: Page, cluster: Cluster, username: str, password: str) -> None:
    """From the home page's header: Sign in, then back at the home page, signed in."""
    page.goto(cluster.ems_url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    sign_in_form(page, username, password)
    expect(page).to_have_url(cluster.ems_url + "/")


def create_meeting_now(page: Page, name: str) -> str:
    """On the home page: a new meeting that starts now; returns its id."""
    form = page.locator("#new-meeting")
    form.get_by_label("Meeting name").fill(name)
    expect(form.get_by_label("Now")).to_be_checked()
    form.get_by_role("button", name="Save").click()
    notice = page.get_by_role("status")
    expect(notice).to_contain_text(name)
    href = notice.get_by_role("link", name=f"Attend {name}").get_attribute("href")
    assert href is not None
    match = re.fullmatch(r"/m/([^/?#]+)", href)
    assert match, href
    return match.group(1)


def test_ldap_user_signs_in_creates_attends_and_signs_out(
    start_cluster: StartCluster, slapd: Slapd, new_context: NewContext
) -> None:
    cluster = start_cluster()
    context = new_context()
    page = context.new_page()
    sign_in(page, cluster, "bob", slapd.users["bob"])

    header = page.get_by_role("navigation", name="Main")
    expect(header).to_contain_text("Signed in as Bob Baker")
    expect(header.get_by_role("button", name="Sign out")).to_be_visible()
    expect(header.get_by_role("link", name="Sign in")).to_have_count(0)
    assert session_cookies(context) == [SESSION_COOKIE]

    # The new-meeting form has the signed-in user as moderator.
    form = page.locator("#new-meeting")
    expect(form.get_by_label("Moderator")).to_have_value("bob")
    meeting_id = create_meeting_now(page, "Bob's standup")

    # Attending: no name is asked for; the meeting page says who you are.
    page.get_by_role("status").get_by_role("link", name="Attend Bob's standup").click()
    expect(page).to_have_url(re.compile(re.escape(f"/meeting/{meeting_id}?token=") + ".+"))
    expect(page.get_by_label("Your name")).to_have_count(0)
    expect(page.locator("#me")).to_have_text("bob")
    expect(page.get_by_text(re.compile(r"^You are bob"))).to_be_visible()
    expect(page.locator("#connection")).to_have_text("connected")

    # Sign out: the header offers Sign in again and the sign-in cookie is gone.
    page.goto(cluster.ems_url + "/")
    header.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(cluster.ems_url + "/")
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()
    expect(header).not_to_contain_text("Signed in as")
    expect(page.locator("#new-meeting").get_by_label("Moderator")).to_have_value("")
    assert session_cookies(context) == []


def test_wrong_password_is_refused_beside_the_form(
    start_cluster: StartCluster, new_context: NewContext
) -> None:
    cluster = start_cluster()
    context = new_context()
    page = context.new_page()
    page.goto(cluster.ems_url + "/signin")
    sign_in_form(page, "bob", "not-bobs-password")

    expect(page).to_have_url(cluster.ems_url + "/signin")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    username = page.get_by_label("User name")
    expect(username).to_have_value("bob")
    expect(username).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("navigation", name="Main")).not_to_contain_text("Signed in as")
    assert session_cookies(context) == []


def test_anonymous_users_are_asked_to_sign_in_where_the_policy_says_so(
    start_cluster: StartCluster, slapd: Slapd, new_context: NewContext
) -> None:
    cluster = start_cluster(MOOT_ANONYMOUS_CREATE="false", MOOT_ANONYMOUS_BROWSE="false")
    context = new_context()
    page = context.new_page()

    page.goto(cluster.ems_url + "/")
    main = page.get_by_role("main")
    expect(main).to_contain_text("Sign in to see the meetings.")
    expect(main).to_contain_text("Sign in to create meetings.")
    expect(page.locator("#new-meeting")).to_have_count(0)
    expect(page.get_by_label("Meeting name")).to_have_count(0)

    # The calendar: a "Please sign in" page, whose Sign in link comes back here.
    response = page.goto(cluster.ems_url + "/calendar")
    assert response is not None
    assert response.status == 401
    expect(page.get_by_role("heading", name="Please sign in")).to_be_visible()
    expect(page.get_by_role("alert")).not_to_be_empty()
    expect(page.get_by_role("heading", name="Calendar")).to_have_count(0)
    main.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(
        re.compile(re.escape(cluster.ems_url + "/signin?next=") + "(/|%2F)calendar$")
    )
    sign_in_form(page, "carol", slapd.users["carol"])
    expect(page).to_have_url(cluster.ems_url + "/calendar")
    expect(page.get_by_role("heading", name="Calendar")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Signed in as Carol Çelik")

    # Signed in, the home page has the lists and the form.
    page.goto(cluster.ems_url + "/")
    expect(main).not_to_contain_text("Sign in to see the meetings.")
    expect(page.locator("#new-meeting").get_by_label("Moderator")).to_have_value("carol")


def search_calendar(page: Page, cluster: Cluster, text: str) -> None:
    page.goto(cluster.ems_url + "/calendar")
    page.get_by_role("search").get_by_label("Search by meeting name or moderator").fill(text)
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"[?&]q=" + re.escape(text) + "(&|$)"))


def test_a_partition_does_not_see_the_other_partitions_meetings(
    start_cluster: StartCluster, slapd: Slapd, new_context: NewContext
) -> None:
    cluster = start_cluster()
    bob = new_context().new_page()
    sign_in(bob, cluster, "bob", slapd.users["bob"])
    meeting_id = create_meeting_now(bob, "Acme roadmap")
    details_url = f"{cluster.ems_url}/meetings/{meeting_id}"
    expect(bob.locator(f"#meeting-{meeting_id}")).to_contain_text("Acme roadmap")

    # Dave (globex), in a browser of his own: not in his lists, calendar or by its address.
    dave = new_context().new_page()
    sign_in(dave, cluster, "dave", slapd.users["dave"])
    expect(dave.get_by_role("navigation", name="Main")).to_contain_text(
        "Signed in as Dave Dietrich"
    )
    expect(dave.get_by_role("table", name="Meetings in progress")).to_contain_text(
        "No meeting is in progress."
    )
    expect(dave.get_by_role("main").get_by_text("Acme roadmap")).to_have_count(0)
    search_calendar(dave, cluster, "Acme")
    expect(dave.locator("#calendar-list tbody tr")).to_have_text(["No meetings."])
    expect(dave.get_by_role("main")).to_contain_text("0 meetings.")
    response = dave.goto(details_url)
    assert response is not None
    assert response.status == 404
    expect(dave.get_by_role("heading", name="No such meeting")).to_be_visible()
    expect(dave.get_by_text("Acme roadmap")).to_have_count(0)

    # Bob's own calendar search finds it (the search works).
    search_calendar(bob, cluster, "Acme")
    expect(bob.locator("#calendar-list tbody tr")).to_have_count(1)
    expect(bob.locator("#calendar-list")).to_contain_text("Acme roadmap")

    # Alice (acme, an administrator) sees it in her lists and by its address.
    alice = new_context().new_page()
    sign_in(alice, cluster, "alice", slapd.users["alice"])
    expect(alice.locator(f"#meeting-{meeting_id}")).to_contain_text("Acme roadmap")
    response = alice.goto(details_url)
    assert response is not None
    assert response.status == 200
    expect(alice.get_by_role("heading", name="Acme roadmap")).to_be_visible()
    expect(alice.locator(".facts")).to_contain_text("bob")
