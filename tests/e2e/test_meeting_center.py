"""The Meeting Center's pages as people use them: schedule, find, change and attend meetings.

Real EMS and room-server processes, Debian Chromium through Playwright. Each test drives the
pages by their labels, roles and keys, in the reader's own time zone (Europe/Berlin, and
America/New_York where the day boundaries matter), and checks what a person would see.

Starting an EMS with two room servers takes seconds, so here `cluster` is one EMS for the
whole module, and the tests keep out of each other's way: each schedules its meetings in a month
of its own (`month_ahead`) and under names of its own. The phone-width test and the screenshots
share a second EMS (`quiet_cluster`), so that what they show is only their own meetings.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from playwright.sync_api import Locator, Page, expect

from moot.harness import Cluster
from tests.conftest import module_cluster
from tests.e2e.conftest import NewContext

pytestmark = [pytest.mark.browser, pytest.mark.processes]

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
PHONE = {"width": 375, "height": 740}
TABS = ("Essentials", "Files", "Security", "Tools", "Locations")


# -- the cluster, the API ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    """An EMS on SQLite with two room servers, shared by the tests of this module."""
    yield from module_cluster(tmp_path_factory, sqlite_template)


@pytest.fixture(scope="module")
def quiet_cluster(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Cluster]:
    """Another one, for pages that show every meeting (phone width, screenshots)."""
    yield from module_cluster(tmp_path_factory, sqlite_template)


def api_create(cluster: Cluster, **fields: Any) -> dict[str, Any]:
    """A meeting made through the REST API (`start` may be an aware datetime)."""
    body: dict[str, Any] = {"moderator": "Alice", "expected_participants": 2, **fields}
    if isinstance(body.get("start"), datetime):
        body["start"] = body["start"].isoformat()
    response = cluster.client.post(f"{cluster.ems_url}/api/v1/meetings", json=body, timeout=10)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def as_administrator(cluster: Cluster) -> dict[str, str]:
    """What was stored is checked as the cluster's administrator sees it (the secret's holder),
    so that restricted meetings are readable too."""
    return {"Authorization": f"Bearer {cluster.secret}"}


def api_delete(cluster: Cluster, meeting_id: str) -> None:
    response = cluster.client.delete(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}",
        headers=as_administrator(cluster),
        timeout=10,
    )
    assert response.status_code == 204, response.text


def api_meeting(cluster: Cluster, meeting_id: str) -> dict[str, Any] | None:
    response = cluster.client.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}",
        headers=as_administrator(cluster),
        timeout=5,
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def api_names(cluster: Cluster, **params: str) -> list[str]:
    """The names of the listed meetings (unlisted ones are in no list)."""
    response = cluster.client.get(
        f"{cluster.ems_url}/api/v1/meetings",
        params={"limit": "500", **params},
        headers=as_administrator(cluster),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return [m["name"] for m in response.json()["items"]]


# -- dates ---------------------------------------------------------------------------------


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


def today_in(zone: ZoneInfo) -> date:
    return datetime.now(zone).date()


def month_ahead(months: int) -> date:
    """The first day of the month `months` after this one (in Berlin)."""
    first = today_in(BERLIN).replace(day=1)
    for _ in range(months):
        first = month_after(first)
    return first


def month_after(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def first_weekday(month: date, weekday: int) -> date:
    """The first `weekday` (Monday = 0) of the month."""
    return month + timedelta(days=(weekday - month.weekday()) % 7)


def span(start: datetime, minutes: int, zone: ZoneInfo) -> str:
    """A meeting's time as the calendar list shows it, in the reader's zone."""
    begin, end = start.astimezone(zone), (start + timedelta(minutes=minutes)).astimezone(zone)
    return f"{begin:%a %d %b %Y, %H:%M}\u2013{end:%H:%M}"


# -- pages ---------------------------------------------------------------------------------


def open_home(new_context: NewContext, cluster: Cluster, **options: Any) -> Page:
    """The Meeting Center's home page in a new browser (default: a reader in Berlin)."""
    page = new_context(**{"timezone_id": "Europe/Berlin", **options}).new_page()
    page.goto(cluster.ems_url + "/")
    expect(page.get_by_role("heading", name="New meeting")).to_be_visible()
    return page


def meeting_form(page: Page) -> Locator:
    return page.locator("#new-meeting")


def tab(form: Locator, name: str) -> Locator:
    return form.get_by_role("tab", name=name, exact=True)


def schedule(form: Locator, start: datetime) -> None:
    """Choose Schedule and type the start's date and time (in the form's time zone)."""
    form.get_by_label("Schedule", exact=True).check()
    form.get_by_label("Date", exact=True).fill(f"{start:%Y-%m-%d}")
    form.get_by_label("Time", exact=True).fill(f"{start:%H:%M}")
    form.get_by_label("Time zone").fill(str(start.tzinfo))


def duration(form: Locator, hours: int, minutes: int) -> None:
    form.get_by_label("Hours", exact=True).fill(str(hours))
    form.get_by_label("Minutes", exact=True).fill(str(minutes))


def saved_meeting_id(page: Page, name: str) -> str:
    """After Save on the home page: the notice names the meeting; its id from its link."""
    notice = page.get_by_role("status")
    expect(notice).to_contain_text(f"Meeting {name} is")
    href = notice.get_by_role("link", name=f"Attend {name}").get_attribute("href")
    assert href is not None
    match = re.fullmatch(r"/m/([a-z2-9]{10})", href)
    assert match, href
    return match.group(1)


def open_calendar(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()
    expect(page.get_by_role("heading", name="Calendar", exact=True)).to_be_visible()


def show_month(page: Page, first: date) -> None:
    """Go to the month of `first` with the previous/next month links."""
    heading = page.locator("#month-h")
    months = page.get_by_role("navigation", name="Months")
    for _ in range(24):
        shown = datetime.strptime(heading.inner_text(), "%B %Y").date()
        if shown == first:
            return
        if shown < first:
            months.get_by_role("link", name=re.compile(r"\u203a$")).click()
        else:
            months.get_by_role("link", name=re.compile(r"^\u2039")).click()
        expect(heading).not_to_have_text(f"{shown:%B %Y}")
    raise AssertionError(f"cannot reach {first:%B %Y}")


def day_link(page: Page, day: date) -> Locator:
    """A day of the month grid (its link reads e.g. "4 January 1 meeting")."""
    return page.locator("table.month").get_by_role(
        "link", name=re.compile(rf"^{day.day} {day:%B}\b")
    )


def day_count(page: Page, day: date) -> Locator:
    """The count of meetings a day of the month grid shows ("1 meeting"); absent if none."""
    return day_link(page, day).locator(".count")


def open_day(page: Page, day: date) -> None:
    show_month(page, day.replace(day=1))
    day_link(page, day).click()
    expect(list_heading(page)).to_have_text(f"Meetings on {day:%A %d %B %Y}")


def list_heading(page: Page) -> Locator:
    return page.locator("#list-h")


def list_rows(page: Page) -> Locator:
    return page.locator("#calendar-list tbody tr")


def list_column(page: Page, number: int) -> Locator:
    """The cells of one column of the calendar list (1 = Date/Time)."""
    return page.locator(f"#calendar-list tbody tr td:nth-child({number})")


def nothing_injected(page: Page) -> None:
    """No element came from text people typed, and no script of theirs ran."""
    for tag in ("img", "b", "script", "i"):
        expect(page.locator(f"main {tag}")).to_have_count(0)
    assert page.evaluate("typeof window.pwned") == "undefined"


def too_wide(page: Page) -> list[str]:
    """Why the page scrolls sideways at its viewport's width (nothing if it does not)."""
    viewport = page.viewport_size
    assert viewport is not None
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth]"
    )
    culprits = page.evaluate(
        """(limit) => {
            const out = (el) => el.getBoundingClientRect().right > limit + 1;
            return [...document.querySelectorAll('body *')]
                .filter(el => out(el) && ![...el.children].some(out))
                .slice(0, 6).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                    + (el.className ? '.' + el.className : '') + ' "'
                    + el.textContent.trim().slice(0, 30) + '" right='
                    + Math.round(el.getBoundingClientRect().right));
        }""",
        viewport["width"],
    )
    if max(widths) <= viewport["width"]:
        return []
    return [f"{page.url} is {max(widths)} px wide at {viewport['width']} px: {culprits}"]


def facts(page: Page, term: str) -> Locator:
    """The value of one fact (<dt>term</dt><dd>value</dd>) on the details page."""
    return page.locator(f"dl.facts dt:text-is('{term}') + dd")


# -- 1. a weekly meeting on two days, found in the calendar --------------------------------


def test_weekly_meeting_on_two_days_is_found_on_its_days_in_the_calendar(
    cluster: Cluster, new_context: NewContext
) -> None:
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    month = month_ahead(1)
    monday = first_weekday(month, 0)
    last_thursday = monday + timedelta(days=17)
    # 00:30 in Berlin is the evening before in UTC: the days must be the reader's.
    start = at(monday, 0, 30)

    form.get_by_label("Meeting name").fill("Design sync")
    form.get_by_label("Moderator").fill("Dora")
    expect(form.get_by_label("Time zone")).to_have_value("Europe/Berlin")  # the browser's
    schedule(form, start)
    form.get_by_label("Repeats").select_option(label="Weekly")
    expect(form.locator("#interval-unit")).to_have_text("weeks")
    form.get_by_label("Mon", exact=True).check()
    form.get_by_label("Thu", exact=True).check()
    form.get_by_label("On", exact=True).check()
    form.get_by_label("Last day").fill(last_thursday.isoformat())
    duration(form, 0, 45)
    form.get_by_role("button", name="Save").click()

    meeting_id = saved_meeting_id(page, "Design sync")
    expect(page.get_by_role("status")).to_contain_text("is scheduled")
    stored = api_meeting(cluster, meeting_id)
    assert stored is not None
    assert stored["recurrence"].startswith("FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=")
    assert stored["timezone"] == "Europe/Berlin"
    assert stored["duration_minutes"] == 45
    occurrences = [monday + timedelta(days=d) for d in (0, 3, 7, 10, 14, 17)]

    open_calendar(page)
    expect(page.get_by_text("Times in Europe/Berlin.")).to_be_visible()
    show_month(page, month)
    for day in occurrences:
        expect(day_count(page, day)).to_have_text("1 meeting")
    for day in (
        monday - timedelta(days=1),
        monday + timedelta(days=2),
        last_thursday + timedelta(7),
    ):
        if day.month == month.month:  # in UTC these would be the meeting's days
            expect(day_count(page, day)).to_have_count(0)

    # A day: the list shows that day's occurrence.
    day_link(page, monday).click()
    expect(list_heading(page)).to_have_text(f"Meetings on {monday:%A %d %B %Y}")
    expect(day_link(page, monday)).to_have_attribute("aria-current", "date")
    expect(list_rows(page)).to_have_count(1)
    expect(list_rows(page).locator("td")).to_have_text(
        [span(start, 45, BERLIN), "Design sync", "Dora", "Scheduled", "Details of Design sync"]
    )
    day_link(page, monday + timedelta(days=1)).click()
    expect(list_rows(page)).to_have_text(["No meetings."])

    # Its week: Monday and Thursday.
    week = page.locator("table.month").get_by_role(
        "link", name=re.compile(rf"^W{monday.isocalendar()[1]}\b")
    )
    week.click()
    expect(list_heading(page)).to_have_text(f"Meetings in the week of {monday:%d %B %Y}")
    expect(week).to_have_attribute("aria-current", "true")
    expect(list_column(page, 1)).to_have_text(
        [span(at(d, 0, 30), 45, BERLIN) for d in occurrences[:2]]
    )

    # The whole month: all six, in order.
    page.get_by_role("link", name="The whole month").click()
    expect(list_heading(page)).to_have_text(f"Meetings in {month:%B %Y}")
    expect(page.get_by_text("6 meetings.")).to_be_visible()
    expect(list_column(page, 1)).to_have_text([span(at(d, 0, 30), 45, BERLIN) for d in occurrences])

    # Next month has none of them; back again they are all there.
    after = month_after(month)
    show_month(page, after)
    expect(list_heading(page)).to_have_text(f"Meetings in {after:%B %Y}")
    expect(list_rows(page)).to_have_text(["No meetings."])
    show_month(page, month)
    expect(list_column(page, 2)).to_have_text(["Design sync"] * 6)

    # Today: this month, today's day chosen.
    page.get_by_role("link", name="Today", exact=True).click()
    today = today_in(BERLIN)
    expect(page.locator("#month-h")).to_have_text(f"{today:%B %Y}")
    expect(list_heading(page)).to_have_text(f"Meetings on {today:%A %d %B %Y}")

    # And a row's Details link leads to the meeting.
    show_month(page, month)
    list_rows(page).first.get_by_role("link", name="Details of Design sync").click()
    expect(page.get_by_role("heading", name="Design sync")).to_be_visible()
    expect(facts(page, "Repeats")).to_contain_text("BYDAY=MO,TH")


# -- 2. across midnight ----------------------------------------------------------------------


def test_meeting_from_2330_to_0030_is_listed_on_both_days(
    cluster: Cluster, new_context: NewContext
) -> None:
    day = month_ahead(5) + timedelta(days=9)
    start = at(day, 23, 30)
    api_create(
        cluster, name="Late call", start=start, duration_minutes=60, timezone="Europe/Berlin"
    )

    berlin = open_home(new_context, cluster)
    open_calendar(berlin)
    expect(berlin.get_by_text("Times in Europe/Berlin.")).to_be_visible()
    for shown in (day, day + timedelta(days=1)):
        open_day(berlin, shown)
        expect(day_count(berlin, shown)).to_have_text("1 meeting")
        expect(list_column(berlin, 2)).to_have_text(["Late call"])
        expect(list_column(berlin, 1)).to_have_text([span(start, 60, BERLIN)])
    for empty in (day - timedelta(days=1), day + timedelta(days=2)):
        open_day(berlin, empty)
        expect(list_rows(berlin)).to_have_text(["No meetings."])

    # In New York it is 17:30 to 18:30: one day only.
    new_york = open_home(new_context, cluster, timezone_id="America/New_York")
    open_calendar(new_york)
    expect(new_york.get_by_text("Times in America/New_York.")).to_be_visible()
    open_day(new_york, day)
    expect(list_column(new_york, 1)).to_have_text([span(start, 60, NEW_YORK)])
    expect(list_column(new_york, 1)).to_contain_text(["17:30\u201318:30"])
    open_day(new_york, day + timedelta(days=1))
    expect(list_rows(new_york)).to_have_text(["No meetings."])


def test_calendar_opened_first_shows_the_readers_days(
    cluster: Cluster, new_context: NewContext
) -> None:
    """Someone whose first page is the calendar (a bookmark, a link) sees their own days."""
    day = month_ahead(6) + timedelta(days=11)
    start = at(day, 21, 0, NEW_YORK)  # 02:00 the next day in UTC
    api_create(cluster, name="Evening call", start=start, timezone="America/New_York")
    page = new_context(timezone_id="America/New_York").new_page()
    page.goto(cluster.ems_url + "/calendar")
    expect(page.get_by_text("Times in America/New_York.")).to_be_visible()
    open_day(page, day)
    expect(list_column(page, 1)).to_have_text([span(start, 60, NEW_YORK)])


# -- 3. search, sort, pages ------------------------------------------------------------------


def test_calendar_search_sort_and_pages(cluster: Cluster, new_context: NewContext) -> None:
    month = month_ahead(2)
    made = [
        (at(month + timedelta(days=i - 1), 9), f"Standup {i:02d}", ("Carol", "alice", "Bob")[i % 3])
        for i in range(1, 28)
    ]
    made += [
        (at(month + timedelta(days=3), 14), "Quarterly review", "Zoe"),
        (at(month + timedelta(days=5), 15), "budget", "Quinn"),
        (at(month + timedelta(days=8), 16), "Hiring", "Quinn Jones"),
    ]
    for start, name, moderator in made:
        api_create(
            cluster,
            name=name,
            moderator=moderator,
            start=start,
            duration_minutes=30,
            timezone="Europe/Berlin",
        )
    by_start = sorted(made)

    page = open_home(new_context, cluster)
    open_calendar(page)
    show_month(page, month)
    headers = page.locator("#calendar-list thead th")
    date_header, name_header, moderator_header = (headers.nth(i) for i in range(3))

    # By date and time, 25 a page.
    expect(page.get_by_text("30 meetings.")).to_be_visible()
    expect(date_header).to_have_attribute("aria-sort", "ascending")
    expect(list_column(page, 2)).to_have_text([n for _, n, _ in by_start[:25]])
    pages = page.get_by_role("navigation", name="Pages")
    expect(pages).to_contain_text("Page 1 of 2")
    expect(pages.get_by_role("link", name="Previous page")).to_have_count(0)
    pages.get_by_role("link", name="Next page").click()
    expect(pages).to_contain_text("Page 2 of 2")
    expect(list_column(page, 2)).to_have_text([n for _, n, _ in by_start[25:]])
    expect(pages.get_by_role("link", name="Next page")).to_have_count(0)
    pages.get_by_role("link", name="Previous page").click()
    expect(list_rows(page)).to_have_count(25)

    # By meeting name (ignoring case), then the other way round.
    by_name = [n for _, n, _ in sorted(made, key=lambda m: (m[1].casefold(), m[0]))]
    name_header.get_by_role("link").click()
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    expect(date_header).not_to_have_attribute("aria-sort", re.compile("."))
    expect(name_header).to_contain_text("\u25b2")
    expect(list_column(page, 2)).to_have_text(by_name[:25])
    pages.get_by_role("link", name="Next page").click()
    expect(list_column(page, 2)).to_have_text(by_name[25:])
    name_header.get_by_role("link").click()
    expect(name_header).to_have_attribute("aria-sort", "descending")
    expect(pages).to_contain_text("Page 1 of 2")  # a new order starts at its first page
    expect(list_column(page, 2)).to_have_text(by_name[::-1][:25])

    # By moderator.
    by_moderator = [m for _, _, m in sorted(made, key=lambda m: (m[2].casefold(), m[0]))]
    moderator_header.get_by_role("link").click()
    expect(moderator_header).to_have_attribute("aria-sort", "ascending")
    expect(name_header).not_to_have_attribute("aria-sort", re.compile("."))
    expect(list_column(page, 3)).to_have_text(by_moderator[:25])
    moderator_header.get_by_role("link").click()
    expect(moderator_header).to_have_attribute("aria-sort", "descending")
    expect(list_column(page, 3)).to_have_text(by_moderator[::-1][:25])

    # Search by moderator, by name; the grid counts only what matches.
    search = page.get_by_role("search").get_by_label("Search by meeting name or moderator")
    search.fill("quinn")
    search.press("Enter")
    expect(list_heading(page)).to_have_text(f"Meetings in {month:%B %Y} matching \u201cquinn\u201d")
    expect(list_column(page, 2)).to_have_text(["budget", "Hiring"])
    expect(list_column(page, 3)).to_have_text(["Quinn", "Quinn Jones"])
    expect(page.get_by_text("2 meetings.")).to_be_visible()
    expect(page.locator("table.month .count")).to_have_count(2)
    expect(page.get_by_role("navigation", name="Pages")).to_have_count(0)
    day_link(page, month + timedelta(days=5)).click()  # a day keeps the search
    expect(list_heading(page)).to_contain_text("matching \u201cquinn\u201d")
    expect(list_column(page, 2)).to_have_text(["budget"])

    search = page.get_by_role("search").get_by_label("Search by meeting name or moderator")
    search.fill("Review")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    page.get_by_role("link", name="The whole month").click()
    expect(list_column(page, 2)).to_have_text(["Quarterly review"])
    expect(list_column(page, 3)).to_have_text(["Zoe"])

    search = page.get_by_role("search").get_by_label("Search by meeting name or moderator")
    search.fill("standup 0")
    search.press("Enter")
    expect(list_column(page, 2)).to_have_text([f"Standup {i:02d}" for i in range(1, 10)])
    search = page.get_by_role("search").get_by_label("Search by meeting name or moderator")
    search.fill("nobody-is-called-this")
    search.press("Enter")
    expect(list_rows(page)).to_have_text(["No meetings."])
    page.get_by_role("search").get_by_role("link", name="Clear").click()
    expect(page.get_by_text("30 meetings.")).to_be_visible()


# -- 4. bad input ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    """One mistake in the new-meeting form, and where its message must appear."""

    id: str
    make: Callable[[Cluster, Locator, str], None]  # (cluster, form, a unique name)
    field: str  # the label of the field the message is about
    tab: str  # the tab holding that field
    message: str  # a regular expression the message must match


def _empty_name(_: Cluster, form: Locator, __: str) -> None:
    form.get_by_label("Meeting name").fill("   ")


def _start_in_past(_: Cluster, form: Locator, __: str) -> None:
    schedule(form, at(today_in(BERLIN) - timedelta(days=1), 10))


def _duration_zero(_: Cluster, form: Locator, __: str) -> None:
    duration(form, 0, 0)


def _duration_over_a_day(_: Cluster, form: Locator, __: str) -> None:
    duration(form, 24, 30)


def _unknown_zone(_: Cluster, form: Locator, __: str) -> None:
    form.get_by_label("Time zone").fill("Mars/Olympus_Mons")


def _weekday_not_chosen(_: Cluster, form: Locator, __: str) -> None:
    start = at(month_ahead(8) + timedelta(days=2), 10)
    schedule(form, start)
    form.get_by_label("Repeats").select_option(label="Weekly")
    other = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(start.weekday() + 1) % 7]
    form.get_by_label(other, exact=True).check()
    form.get_by_label("After", exact=True).check()


def _duplicate_unlisted(cluster: Cluster, form: Locator, name: str) -> None:
    api_create(cluster, name=name, unlisted=True, start=at(month_ahead(8) + timedelta(5), 9))
    tab(form, "Security").click()
    form.get_by_role("checkbox", name=re.compile("^Unlisted")).check()


def _restricted_name_too_long(_: Cluster, form: Locator, __: str) -> None:
    tab(form, "Security").click()
    form.get_by_label("Only these people or groups may attend").fill("Ann\n" + "g" * 201)


def _required_location_missing(_: Cluster, form: Locator, __: str) -> None:
    tab(form, "Locations").click()
    form.get_by_label("Server location").fill("")
    form.get_by_label("Required: only there").check()


BAD_INPUTS = [
    BadInput("empty-name", _empty_name, "Meeting name", "Essentials", r"empty"),
    BadInput("start-in-the-past", _start_in_past, "Date", "Essentials", r"past"),
    BadInput("duration-zero", _duration_zero, "Hours", "Essentials", r"minute|hour"),
    BadInput("duration-over-24h", _duration_over_a_day, "Hours", "Essentials", r"minute|hour"),
    BadInput("unknown-time-zone", _unknown_zone, "Time zone", "Essentials", r"unknown time zone"),
    BadInput("weekday-not-chosen", _weekday_not_chosen, "Repeats", "Essentials", r"chosen days"),
    BadInput(
        "duplicate-unlisted-name",
        _duplicate_unlisted,
        "Meeting name",
        "Essentials",
        r"unlisted meeting of this name exists",
    ),
    BadInput(
        "restricted-name-too-long",
        _restricted_name_too_long,
        "Only these people or groups may attend",
        "Security",
        r"at most 200 characters",
    ),
    BadInput(
        "required-location-missing",
        _required_location_missing,
        "Server location",
        "Locations",
        r"location",
    ),
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.id for b in BAD_INPUTS])
def test_bad_input_gets_a_message_beside_its_field_and_nothing_is_saved(
    cluster: Cluster, new_context: NewContext, bad: BadInput
) -> None:
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    name = f"Try {bad.id} {uuid.uuid4().hex[:6]}"
    form.get_by_label("Meeting name").fill(name)
    form.get_by_label("Moderator").fill("Val")
    schedule(form, at(month_ahead(8) + timedelta(days=2), 10))
    bad.make(cluster, form, name)
    listed_before = api_names(cluster)
    form.get_by_role("button", name="Save").click()

    expect(page).to_have_url(cluster.ems_url + "/meetings/new")
    page.wait_for_load_state()  # the refused form is shown, its script has run
    shown = 2_000  # ms: so what it shows is there at once
    # Nothing was saved, and what was typed is still there.
    assert api_names(cluster) == listed_before
    if bad.id != "empty-name":
        expect(meeting_form(page).get_by_label("Meeting name")).to_have_value(name, timeout=shown)
    # The message is beside its field, which says so (aria-invalid, aria-describedby), in
    # the tab now selected.
    field = meeting_form(page).get_by_label(bad.field, exact=True)
    expect(tab(meeting_form(page), bad.tab)).to_have_attribute(
        "aria-selected", "true", timeout=shown
    )
    expect(field).to_be_visible(timeout=shown)
    expect(field).to_have_attribute("aria-invalid", "true", timeout=shown)
    described_by = field.get_attribute("aria-describedby")
    assert described_by, f"{bad.field} names no message (aria-describedby)"
    message = page.locator(f"[id='{described_by}']")
    expect(message).to_be_visible(timeout=shown)
    expect(message).to_have_text(re.compile(bad.message, re.IGNORECASE), timeout=shown)
    panel = field.locator("xpath=ancestor::*[@role='tabpanel']")
    expect(panel.locator(f"[id='{described_by}']")).to_have_count(1, timeout=shown)
    expect(field).to_be_focused(timeout=shown)


def test_names_longer_than_200_characters_are_refused(
    cluster: Cluster, new_context: NewContext
) -> None:
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    stem = f"Long {uuid.uuid4().hex[:6]} "
    typed = (stem + "x" * 250)[:250]
    form.get_by_label("Meeting name").press_sequentially(typed)
    expect(form.get_by_label("Meeting name")).to_have_value(typed[:200])  # maxlength
    schedule(form, at(month_ahead(8) + timedelta(days=2), 10))
    form.get_by_role("button", name="Save").click()
    saved_meeting_id(page, typed[:200])

    # What cannot be typed, sent as it would be without the browser's limit.
    too_long = stem + "y" * (201 - len(stem))
    response = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": too_long}, timeout=10
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert "at most 200 characters" in response.json()["detail"][0]["msg"]
    # And the form's own post, from this browser (its cookies, its form's hidden token).
    page.goto(cluster.ems_url + "/")
    hidden = {
        str(f.get_attribute("name")): f.input_value()
        for f in meeting_form(page).locator("input[type=hidden]").all()
    }
    posted = page.request.post(
        f"{cluster.ems_url}/meetings/new",
        form={**hidden, "name": too_long, "moderator": "Val", "start_mode": "now", "hours": "1"},
    )
    assert posted.status == 422, posted.status
    html = posted.text()
    assert 'aria-invalid="true" aria-describedby="name-error"' in html
    assert re.search(r'id="name-error">[^<]*at most 200 characters', html), html
    assert too_long not in api_names(cluster)


def test_html_in_name_and_moderator_is_shown_as_text(
    cluster: Cluster, new_context: NewContext
) -> None:
    name = '<img src=x onerror="window.pwned=1">Ops <b>review</b>'
    moderator = "<script>window.pwned=2</script><i>Mallory</i>"
    day = month_ahead(7) + timedelta(days=4)
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    form.get_by_label("Meeting name").fill(name)
    form.get_by_label("Moderator").fill(moderator)
    schedule(form, at(day, 10))
    form.get_by_role("button", name="Save").click()

    # Home: the notice and the list of scheduled meetings.
    meeting_id = saved_meeting_id(page, name)
    expect(page.get_by_role("status").locator("strong")).to_have_text(name)
    row = page.get_by_role("table", name="Scheduled meetings").locator(f"#meeting-{meeting_id}")
    expect(row.locator("td").nth(1)).to_have_text(name)
    expect(row.locator("td").nth(2)).to_have_text(moderator)
    nothing_injected(page)

    # Details.
    row.get_by_role("link", name=f"Details of {name}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page).to_have_title(f"{name} \u00b7 Moot")
    expect(facts(page, "Moderator")).to_have_text(moderator)
    nothing_injected(page)

    # The change and delete pages, and the attend page.
    page.get_by_role("link", name="Change").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Change {name}")
    expect(meeting_form(page).get_by_label("Meeting name")).to_have_value(name)
    expect(meeting_form(page).get_by_label("Moderator")).to_have_value(moderator)
    nothing_injected(page)
    page.goto(f"{cluster.ems_url}/meetings/{meeting_id}/delete")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Delete {name}?")
    nothing_injected(page)
    page.goto(f"{cluster.ems_url}/m/{meeting_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_text(f"Moderator: {moderator}")).to_be_visible()
    nothing_injected(page)

    # The calendar, searched for it.
    page.goto(cluster.ems_url + "/calendar")
    search = page.get_by_label("Search by meeting name or moderator")
    search.fill("<b>review")
    search.press("Enter")
    expect(list_heading(page)).to_contain_text("\u201c<b>review\u201d")
    show_month(page, day.replace(day=1))
    expect(list_column(page, 2)).to_have_text([name])
    expect(list_column(page, 3)).to_have_text([moderator])
    nothing_injected(page)


def test_new_form_proposes_a_start_ahead_in_the_readers_time_zone(
    cluster: Cluster, new_context: NewContext
) -> None:
    """Choosing Schedule proposes the next hour in the reader's own zone; Save just works."""
    for zone in (BERLIN, NEW_YORK):
        page = open_home(new_context, cluster, timezone_id=zone.key)
        form = meeting_form(page)
        expect(form.get_by_label("Time zone")).to_have_value(zone.key)
        form.get_by_label("Schedule", exact=True).check()
        proposed = datetime.combine(
            date.fromisoformat(form.get_by_label("Date", exact=True).input_value()),
            time.fromisoformat(form.get_by_label("Time", exact=True).input_value()),
            zone,
        )
        now = datetime.now(UTC)
        assert now < proposed <= now + timedelta(hours=2), (
            f"in {zone.key} at {now.astimezone(zone):%H:%M} the form proposes "
            f"{proposed:%Y-%m-%d %H:%M}"
        )
        name = f"Proposed time {zone.key} {uuid.uuid4().hex[:4]}"
        form.get_by_label("Meeting name").fill(name)
        form.get_by_role("button", name="Save").click()
        api_delete(cluster, saved_meeting_id(page, name))


def test_password_set_in_the_new_form_is_asked_for_when_attending(
    cluster: Cluster, new_context: NewContext
) -> None:
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    form.get_by_label("Meeting name").fill("Salary talks")
    form.get_by_label("Moderator").fill("Hana")
    tab(form, "Security").click()
    form.get_by_label("Meeting password").fill("pay-2027")
    form.get_by_role("button", name="Save").click()
    meeting_id = saved_meeting_id(page, "Salary talks")

    guest = new_context(timezone_id="Europe/Berlin").new_page()
    guest.goto(f"{cluster.ems_url}/m/{meeting_id}")
    expect(guest.get_by_role("heading", level=1)).to_have_text("Salary talks")
    expect(guest.get_by_label("Meeting password")).to_be_visible()
    guest.get_by_label("Your name").fill("Gus")
    guest.get_by_label("Meeting password").fill("wrong")
    guest.get_by_role("button", name="Attend").click()
    expect(guest.get_by_role("alert")).to_contain_text("password")
    assert (api_meeting(cluster, meeting_id) or {})["has_password"] is True


# -- 5. change and delete ---------------------------------------------------------------------


def test_change_a_meeting_then_delete_it_through_the_confirmation(
    cluster: Cluster, new_context: NewContext
) -> None:
    start = at(month_ahead(9) + timedelta(days=7), 10)
    meeting = api_create(
        cluster, name="Roadmap", moderator="Rita", start=start, timezone="Europe/Berlin"
    )
    meeting_id = meeting["id"]
    page = open_home(new_context, cluster)
    # Rita's browser: she opened the moderator link the meeting was made with (it keeps the
    # key), so changing its password and deleting it are hers.
    page.goto(meeting["moderator_url"])
    page.goto(cluster.ems_url + "/")

    # Cancel on the new-meeting form saves nothing.
    meeting_form(page).get_by_label("Meeting name").fill("Throwaway")
    meeting_form(page).get_by_role("link", name="Cancel").click()
    expect(meeting_form(page).get_by_label("Meeting name")).to_have_value("")
    assert "Throwaway" not in api_names(cluster)

    # Change: the same form, filled in.
    page.get_by_role("link", name="Details of Roadmap").click()
    page.get_by_role("link", name="Change").click()
    expect(page.get_by_role("heading", name="Change Roadmap")).to_be_visible()
    form = meeting_form(page)
    expect(form.get_by_label("Meeting name")).to_have_value("Roadmap")
    expect(form.get_by_label("Moderator")).to_have_value("Rita")
    expect(form.get_by_label("Schedule", exact=True)).to_be_checked()
    expect(form.get_by_label("Date", exact=True)).to_have_value(f"{start:%Y-%m-%d}")
    expect(form.get_by_label("Time", exact=True)).to_have_value("10:00")
    expect(form.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    expect(form.get_by_label("Hours", exact=True)).to_have_value("1")
    expect(form.get_by_label("Minutes", exact=True)).to_have_value("0")

    # An empty name is refused beside the field; the meeting keeps its name.
    form.get_by_label("Meeting name").fill("")
    form.get_by_role("button", name="Save").click()
    form = meeting_form(page)
    expect(form.get_by_label("Meeting name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name-error")).to_have_text(re.compile("empty"))
    assert (api_meeting(cluster, meeting_id) or {})["name"] == "Roadmap"

    # New name, 1 h 30 min, and a password.
    form.get_by_label("Meeting name").fill("Roadmap 2027")
    duration(form, 1, 30)
    tab(form, "Security").click()
    form.get_by_label("Meeting password").fill("s3cret")
    form.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{cluster.ems_url}/meetings/{meeting_id}?changed=1")
    expect(page.get_by_role("status").first).to_have_text("Your changes are saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Roadmap 2027")
    expect(facts(page, "When")).to_contain_text("for 1 h 30 min")
    expect(page.locator(".status")).to_contain_text("Password protected")
    stored = api_meeting(cluster, meeting_id) or {}
    assert stored["has_password"] is True
    assert stored["duration_minutes"] == 90
    assert datetime.fromisoformat(stored["start"]) == start

    # Remove the password again.
    page.get_by_role("link", name="Change").click()
    form = meeting_form(page)
    tab(form, "Security").click()
    expect(form.get_by_label("Meeting password")).to_have_attribute(
        "placeholder", re.compile("leave empty to keep it")
    )
    form.get_by_label("Remove the password").check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Roadmap 2027")
    expect(page.locator(".status")).not_to_contain_text("Password")
    assert (api_meeting(cluster, meeting_id) or {})["has_password"] is False

    # Cancel on the change form keeps the meeting as it was.
    page.get_by_role("link", name="Change").click()
    meeting_form(page).get_by_label("Meeting name").fill("Not this")
    meeting_form(page).get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Roadmap 2027")

    # Delete: a confirmation first; Cancel keeps it.
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", name="Delete Roadmap 2027?")).to_be_visible()
    expect(page.get_by_text("This cannot be undone.")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{cluster.ems_url}/meetings/{meeting_id}")
    assert api_meeting(cluster, meeting_id) is not None
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete Roadmap 2027").click()
    expect(page.get_by_role("status")).to_have_text("Meeting Roadmap 2027 was deleted.")
    expect(page.get_by_role("table", name="Scheduled meetings")).not_to_contain_text("Roadmap")
    assert api_meeting(cluster, meeting_id) is None


def test_a_running_meeting_keeps_its_time_when_changed(
    cluster: Cluster, new_context: NewContext
) -> None:
    meeting = api_create(cluster, name="Live now", moderator="Lena")
    assert meeting["status"] == "in_progress"
    page = open_home(new_context, cluster)
    page.goto(f"{cluster.ems_url}/meetings/{meeting['id']}/edit")
    form = meeting_form(page)
    expect(form.get_by_text("The meeting is in progress: its time cannot change.")).to_be_visible()
    for label in ("Now", "Schedule", "Date", "Time", "Time zone", "Repeats", "Hours", "Minutes"):
        expect(form.get_by_label(label, exact=True)).to_be_disabled()
    expect(form.get_by_role("checkbox", name=re.compile("^Record this meeting"))).to_be_disabled()
    expect(form.get_by_label("Meeting name")).to_be_enabled()
    form.get_by_label("Meeting name").fill("Live now (renamed)")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live now (renamed)")
    expect(page.locator(".status")).to_contain_text("In progress")
    stored = api_meeting(cluster, meeting["id"]) or {}
    assert stored["start"] == meeting["start"]
    assert stored["duration_minutes"] == meeting["duration_minutes"]


# -- 6. details: copy link, .ics ----------------------------------------------------------------


def test_details_page_copies_the_link_and_downloads_the_ics(
    cluster: Cluster, new_context: NewContext
) -> None:
    start = at(first_weekday(month_ahead(3), 1), 9, 15)
    meeting = api_create(
        cluster,
        name="Team sync",
        moderator="Tom",
        expected_participants=12,
        start=start,
        duration_minutes=50,
        timezone="Europe/Berlin",
        recurrence="FREQ=WEEKLY;COUNT=4",
        tools=["chat", "whiteboard"],
        location="berlin",
    )
    context = new_context(timezone_id="Europe/Berlin")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=cluster.ems_url)
    page = context.new_page()
    page.goto(f"{cluster.ems_url}/meetings/{meeting['id']}")

    expect(page.get_by_role("heading", level=1)).to_have_text("Team sync")
    expect(page.locator(".status")).to_contain_text("Scheduled")
    # In the reader's zone and language (en-US), e.g. "Jan 5, 2027, 9:15 AM".
    shown_start = re.escape(f"{start:%b} {start.day}, {start.year}, {start:%-I:%M}") + r"\s" + "AM"
    expect(facts(page, "When")).to_contain_text(re.compile(shown_start))
    expect(facts(page, "When")).to_contain_text("for 0 h 50 min")
    expect(facts(page, "Repeats")).to_have_text("FREQ=WEEKLY;COUNT=4")
    expect(facts(page, "Type")).to_have_text("Collaboration")
    expect(facts(page, "Moderator")).to_have_text("Tom")
    expect(facts(page, "Expected participants")).to_have_text("12")
    expect(facts(page, "Tools")).to_have_text("Chat, Whiteboard")
    expect(facts(page, "Server location")).to_have_text("berlin (preferred)")

    join_url = f"{cluster.ems_url}/m/{meeting['id']}"
    expect(page.get_by_label("Link to attend")).to_have_value(join_url)
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copied")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == join_url

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Add to calendar (.ics)").click()
    download = download_info.value
    assert download.suggested_filename == f"{meeting['id']}.ics"
    calendar = icalendar.Calendar.from_ical(Path(download.path()).read_bytes())
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert str(event["SUMMARY"]) == "Team sync"
    rule = event["RRULE"]
    assert isinstance(rule, icalendar.vRecur)
    assert rule["FREQ"] == ["WEEKLY"]
    assert rule["COUNT"] == [4]
    assert event.decoded("DTSTART") == start
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=50)

    page.get_by_role("link", name="Attend", exact=True).click()
    expect(page).to_have_url(join_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Team sync")
    expect(page.get_by_label("Your name")).to_be_visible()


# -- 7. unlisted -------------------------------------------------------------------------------


def test_unlisted_meeting_is_attended_by_its_whole_name_only(
    cluster: Cluster, new_context: NewContext
) -> None:
    name = "Board of Directors, private"
    api_create(cluster, name="Board games night")  # listed, in progress
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    form.get_by_label("Meeting name").fill(name)
    form.get_by_label("Moderator").fill("Uma")
    tab(form, "Security").click()
    form.get_by_role("checkbox", name=re.compile("^Unlisted")).check()
    form.get_by_role("button", name="Save").click()
    meeting_id = saved_meeting_id(page, name)  # the one who made it is told

    # In no list, no search, no calendar.
    page.goto(cluster.ems_url + "/")
    expect(page.get_by_role("table", name="Meetings in progress")).to_contain_text(
        "Board games night"
    )
    expect(page.locator("main table", has_text="Directors")).to_have_count(0)
    assert name not in api_names(cluster) and api_names(cluster, q="Directors") == []
    open_calendar(page)
    expect(list_rows(page).filter(has_text="Directors")).to_have_count(0)
    search = page.get_by_label("Search by meeting name or moderator")
    search.fill("Board")
    search.press("Enter")
    expect(list_column(page, 2)).to_have_text(["Board games night"])

    # Attended by the whole name, exactly.
    page.goto(cluster.ems_url + "/")
    by_name = page.get_by_label("Attend a meeting by its whole name")
    by_name.fill(name)
    by_name.press("Enter")
    expect(page).to_have_url(f"{cluster.ems_url}/m/{meeting_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)

    for wrong in ("Board of Directors", name.lower()):
        page.goto(cluster.ems_url + "/")
        page.get_by_label("Attend a meeting by its whole name").fill(wrong)
        page.locator("form.by-name").get_by_role("button", name="Attend").click()
        expect(page.get_by_role("alert")).to_have_text(
            f"No meeting is called \u201c{wrong}\u201d. "
            "Type its whole name, exactly as it was given to you."
        )
        expect(page.locator("main table", has_text="Directors")).to_have_count(0)


# -- 8. keyboard only ---------------------------------------------------------------------------


def focused(page: Page) -> str:
    """What has the focus: an id, else the control's kind, name and value."""
    key: str = page.evaluate(
        """() => { const el = document.activeElement;
            if (el.id) return el.id;
            if (el.type === 'radio') return 'radio:' + el.name;
            return (el.type || el.tagName) + ':' + (el.name || el.textContent.trim()) + ':'
                + (el.type === 'checkbox' ? el.value : ''); }"""
    )
    return key


def controls_of(panel: Locator) -> set[str]:
    """The visible, enabled controls of a panel, named as `focused` names them."""
    keys: list[str] = panel.evaluate(
        """(panel) => [...panel.querySelectorAll('input, select, textarea, button')]
            .filter(el => !el.disabled && el.getClientRects().length > 0)
            .map(el => el.id ? el.id : el.type === 'radio' ? 'radio:' + el.name
                : (el.type || el.tagName) + ':' + (el.name || el.textContent.trim()) + ':'
                  + (el.type === 'checkbox' ? el.value : ''))"""
    )
    return set(keys)


def tab_to(page: Page, target: Locator, visited: list[str], *, back: bool = False) -> None:
    """Press Tab (or Shift+Tab) until `target` has the focus, noting every stop."""
    for _ in range(600):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        visited.append(focused(page))
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{target} cannot be reached with the keyboard")


def test_new_meeting_with_the_keyboard_only_and_every_control_labelled(
    cluster: Cluster, new_context: NewContext
) -> None:
    page = open_home(new_context, cluster)
    form = meeting_form(page)
    keys = page.keyboard

    # Every control of the form has a name people hear (a label or aria-label).
    unnamed = form.evaluate(
        """(form) => [...form.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => {
                const labels = [...(el.labels || [])].map(l => l.textContent.trim()).join(' ');
                const by = (el.getAttribute('aria-labelledby') || '').split(/\\s+/)
                    .map(id => document.getElementById(id)?.textContent.trim() || '').join('');
                return !(labels || el.getAttribute('aria-label') || by);
            })
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unnamed == [], f"controls without a label: {unnamed}"

    # The tabs: one Tab stop, arrow keys, Home and End move between them.
    essentials = tab(form, "Essentials")
    visited: list[str] = []
    tab_to(page, essentials, visited)
    for key, selected in [
        ("ArrowRight", "Files"),
        ("ArrowRight", "Security"),
        ("ArrowRight", "Tools"),
        ("ArrowRight", "Locations"),
        ("ArrowRight", "Essentials"),
        ("ArrowLeft", "Locations"),
        ("Home", "Essentials"),
        ("End", "Locations"),
        ("Home", "Essentials"),
    ]:
        keys.press(key)
        expect(tab(form, selected)).to_be_focused()
        expect(tab(form, selected)).to_have_attribute("aria-selected", "true")
        for other in TABS:
            panel = page.locator(f"#panel-{other.lower()}")
            if other == selected:
                expect(panel).to_be_visible()
            else:
                expect(panel).to_be_hidden()

    start_day = first_weekday(month_ahead(4), 1)  # a Tuesday
    start = at(start_day, 10, 30)
    keys.press("Tab")
    expect(form.get_by_role("radio", name=re.compile("^Collaboration"))).to_be_focused()
    keys.press("ArrowRight")
    expect(form.get_by_role("radio", name=re.compile("^Broadcast"))).to_be_checked()
    keys.press("Tab")
    expect(form.get_by_label("Meeting name")).to_be_focused()
    keys.type("Keyboard planning")
    keys.press("Tab")
    keys.type("Kim")
    expect(form.get_by_label("Moderator")).to_have_value("Kim")
    keys.press("Tab")
    keys.press("Control+A")
    keys.type("12")
    expect(form.get_by_label("Expected participants")).to_have_value("12")
    keys.press("Tab")
    expect(form.get_by_label("Now", exact=True)).to_be_focused()
    keys.press("ArrowRight")
    expect(form.get_by_label("Schedule", exact=True)).to_be_checked()
    keys.press("Tab")
    expect(form.get_by_label("Date", exact=True)).to_be_focused()
    keys.type(f"{start:%m%d%Y}")  # en-US: month, day, year
    expect(form.get_by_label("Date", exact=True)).to_have_value(f"{start:%Y-%m-%d}")
    tab_to(page, form.get_by_label("Time", exact=True), visited)
    keys.type(f"{start:%I%M}")
    keys.type("A")
    expect(form.get_by_label("Time", exact=True)).to_have_value("10:30")
    tab_to(page, form.get_by_label("Time zone"), visited)
    expect(form.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    keys.press("Tab")
    expect(form.get_by_label("Repeats")).to_be_focused()
    keys.press("ArrowDown")
    keys.press("ArrowDown")
    expect(form.get_by_label("Repeats")).to_have_value("weekly")
    keys.press("Tab")
    expect(form.get_by_label("Every", exact=True)).to_be_focused()
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        keys.press("Tab")
        expect(form.get_by_label(day, exact=True)).to_be_focused()
        if day in ("Tue", "Fri"):
            keys.press("Space")
    expect(form.get_by_label("Tue", exact=True)).to_be_checked()
    expect(form.get_by_label("Fri", exact=True)).to_be_checked()
    tab_to(page, form.get_by_label("On", exact=True), visited)
    keys.press("ArrowRight")
    expect(form.get_by_label("After", exact=True)).to_be_checked()
    keys.press("Tab")
    expect(form.get_by_label("Number of occurrences")).to_be_focused()
    keys.press("Control+A")
    keys.type("6")
    keys.press("Tab")
    expect(form.get_by_label("Hours", exact=True)).to_be_focused()
    keys.press("Control+A")
    keys.type("1")
    keys.press("Tab")
    keys.press("Control+A")
    keys.type("30")
    expect(form.get_by_label("Minutes", exact=True)).to_have_value("30")
    keys.press("Tab")
    expect(form.get_by_role("checkbox", name=re.compile("^Record this meeting"))).to_be_focused()
    keys.press("Space")
    expect(form.get_by_role("checkbox", name=re.compile("^Record this meeting"))).to_be_checked()
    save = form.get_by_role("button", name="Save")
    keys.press("Tab")
    expect(save).to_be_focused()

    # Back to the tabs, and through the other panels.
    tab_to(page, essentials, visited, back=True)
    keys.press("ArrowRight")
    expect(tab(form, "Files")).to_be_focused()
    keys.press("ArrowRight")
    expect(tab(form, "Security")).to_be_focused()
    keys.press("Tab")
    expect(form.get_by_label("Meeting password")).to_be_focused()
    keys.type("kb-secret")
    keys.press("Tab")
    keys.type("Kim, Lee")
    expect(form.get_by_label("Only these people or groups may attend")).to_have_value("Kim, Lee")
    keys.press("Tab")
    expect(form.get_by_role("checkbox", name=re.compile("^Unlisted"))).to_be_focused()
    tab_to(page, save, visited)

    tab_to(page, tab(form, "Security"), visited, back=True)
    keys.press("ArrowRight")
    keys.press("Tab")
    expect(form.get_by_label("Chat", exact=True)).to_be_focused()
    keys.press("Space")
    expect(form.get_by_label("Chat", exact=True)).not_to_be_checked()
    tab_to(page, save, visited)

    tab_to(page, tab(form, "Tools"), visited, back=True)
    keys.press("End")
    expect(tab(form, "Locations")).to_be_focused()
    keys.press("Tab")
    expect(form.get_by_label("Server location")).to_be_focused()
    keys.type("berlin")
    tab_to(page, save, visited)

    # Every control of every panel is reached by Tab alone (radio groups by arrow keys).
    tab_to(page, tab(form, "Locations"), visited, back=True)
    keys.press("Home")
    for name in TABS:
        expect(tab(form, name)).to_be_focused()
        stops: list[str] = []
        tab_to(page, save, stops)
        missing = controls_of(page.locator(f"#panel-{name.lower()}")) - set(stops)
        assert not missing, f"not reachable with Tab in {name}: {missing}"
        tab_to(page, tab(form, name), stops, back=True)
        keys.press("ArrowRight")
    tab_to(page, save, visited)
    keys.press("Enter")

    meeting_id = saved_meeting_id(page, "Keyboard planning")
    stored = api_meeting(cluster, meeting_id) or {}
    assert stored["type"] == "broadcast"
    assert stored["moderator"] == "Kim"
    assert stored["expected_participants"] == 12
    assert datetime.fromisoformat(stored["start"]) == start
    assert stored["recurrence"] == "FREQ=WEEKLY;BYDAY=TU,FR;COUNT=6"
    assert stored["duration_minutes"] == 90
    assert stored["record"] is True
    assert stored["restricted_to"] == ["Kim", "Lee"]
    assert "chat" not in stored["tools"] and len(stored["tools"]) == 5
    assert stored["location"] == "berlin" and stored["location_required"] is False
    assert stored["has_password"] is True


# -- 9. phone width ----------------------------------------------------------------------------


def test_pages_are_usable_at_phone_width(quiet_cluster: Cluster, new_context: NewContext) -> None:
    cluster = quiet_cluster
    day = month_ahead(10) + timedelta(days=2)
    api_create(
        cluster,
        name="Customer onboarding",
        moderator="Priya Raman",
        start=at(day, 9),
        recurrence="FREQ=DAILY;COUNT=5",
        timezone="Europe/Berlin",
    )
    page = open_home(new_context, cluster, viewport=PHONE)
    wide: list[str] = []

    def fits_width(page: Page) -> None:
        wide.extend(too_wide(page))

    fits_width(page)
    form = meeting_form(page)
    form.get_by_label("Meeting name").fill("Phone planning session")
    form.get_by_label("Moderator").fill("Pat")
    schedule(form, at(day, 15))
    form.get_by_label("Repeats").select_option(label="Weekly")
    form.get_by_label("After", exact=True).check()
    form.get_by_label("Number of occurrences").fill("3")
    fits_width(page)
    for name in TABS:
        tab(form, name).click()
        fits_width(page)
    form.get_by_role("button", name="Save").click()
    meeting_id = saved_meeting_id(page, "Phone planning session")
    fits_width(page)

    open_calendar(page)
    show_month(page, day.replace(day=1))
    fits_width(page)
    day_link(page, day).click()
    expect(list_column(page, 2)).to_have_text(["Customer onboarding", "Phone planning session"])
    fits_width(page)
    list_rows(page).nth(1).get_by_role("link", name="Details of Phone planning session").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Phone planning session")
    expect(page).to_have_url(f"{cluster.ems_url}/meetings/{meeting_id}")
    fits_width(page)
    page.get_by_role("link", name="Change").click()
    expect(meeting_form(page).get_by_label("Meeting name")).to_have_value("Phone planning session")
    fits_width(page)
    assert not wide, "scrolls sideways at phone width:\n" + "\n".join(dict.fromkeys(wide))


# -- 10. screenshots for the docs ------------------------------------------------------------


@pytest.mark.screenshots
def test_screenshots_of_the_main_pages(
    quiet_cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    cluster = quiet_cluster
    month = month_ahead(1)
    api_create(cluster, name="All hands", moderator="Ada", expected_participants=300)
    recurring = api_create(
        cluster,
        name="Weekly planning",
        moderator="Bruno",
        expected_participants=8,
        start=at(first_weekday(month, 0), 9, 30),
        duration_minutes=45,
        timezone="Europe/Berlin",
        recurrence="FREQ=WEEKLY;BYDAY=MO,TH;COUNT=8",
        tools=["chat", "whiteboard", "screen_sharing"],
    )
    for offset, hour, name, moderator in [
        (2, 14, "Quarterly review", "Chen"),
        (9, 11, "Customer demo", "Dana"),
        (15, 16, "Hiring panel", "Eli"),
        (15, 23, "Late call with Sydney", "Fay"),
    ]:
        api_create(
            cluster,
            name=name,
            moderator=moderator,
            start=at(month + timedelta(days=offset), hour, 30 if hour == 23 else 0),
            timezone="Europe/Berlin",
        )
    written: list[Path] = []

    def shoot(page: Page, name: str) -> None:
        path = screenshots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)

    page = open_home(new_context, cluster, viewport={"width": 1280, "height": 900})
    expect(page.get_by_role("table", name="Meetings in progress")).to_contain_text("All hands")
    expect(page.get_by_role("table", name="Scheduled meetings")).to_contain_text("Weekly planning")
    meeting_form(page).get_by_label("Meeting name").fill("Design review")
    shoot(page, "home")

    phone = open_home(new_context, cluster, viewport=PHONE)
    expect(phone.get_by_role("tab", name="Essentials")).to_be_visible()
    shoot(phone, "home-phone")

    open_calendar(page)
    show_month(page, month)
    expect(page.locator("table.month .count").first).to_be_visible()
    expect(list_rows(page)).to_have_count(12)
    shoot(page, "calendar")

    page.goto(f"{cluster.ems_url}/meetings/{recurring['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Weekly planning")
    shoot(page, "details")
    page.get_by_role("link", name="Change").click()
    expect(page.get_by_role("heading", name="Change Weekly planning")).to_be_visible()
    shoot(page, "edit")

    for path in written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, path
