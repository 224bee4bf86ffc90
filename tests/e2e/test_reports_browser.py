"""Reports in a real browser: choose a report and days, see the table and the chart, download
the CSV, a refused range, a reader who is no administrator.

Real processes: an EMS on SQLite (server samples every second) with two room servers, over a
database holding the generated history of tests/integration/report_history.py.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from moot.harness import Cluster
from tests.conftest import ClusterOptions, User, module_cluster
from tests.dates import today
from tests.e2e.conftest import NewContext
from tests.integration.report_history import EXPECTED, FIRST, LAST, write_history

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    """One EMS for the module's tests, which only read its reports."""
    options = ClusterOptions(
        ems_env={"MOOT_SAMPLE_INTERVAL": "1"},
        users=(User("alice", ("stadmins",)), User("bob")),
    )
    yield from module_cluster(tmp_path_factory, sqlite_template, options, prepare=write_history)


def sign_in(page: Page, cluster: Cluster, username: str, password: str, then: str) -> None:
    page.goto(cluster.ems_url + then)
    expect(page).to_have_title("Sign in · Moot")  # administration pages send you to sign in
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("main").get_by_role("button", name="Sign in").click()


def chart_width(page: Page) -> int:
    width: int = page.locator("#chart").evaluate("img => img.complete ? img.naturalWidth : 0")
    return width


@pytest.mark.screenshots
def test_choose_a_report_see_table_and_chart_download_csv(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    page = new_context(
        timezone_id="Europe/Paris", viewport={"width": 1200, "height": 900}
    ).new_page()
    sign_in(page, cluster, "alice", "alice-password", "/admin/reports")
    expect(page).to_have_title("Reports · Moot")
    # The reader's own zone by default (times.js tells the server on the first page).
    page.reload()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    page.get_by_label("Report", exact=True).select_option(label="Community statistics")
    page.get_by_label("From").fill(FIRST)
    page.get_by_label("To (included)").fill(LAST)
    page.get_by_role("button", name="Show report").click()
    expect(page.get_by_role("heading", level=2)).to_have_text(
        f"Community statistics, {FIRST} to {LAST}"
    )
    table = page.locator("#report-table")
    rows, summary = EXPECTED["logins"]["Europe/Paris"]
    for i, row in enumerate(rows):
        cells = table.locator("tbody tr").nth(i)
        expect(cells.locator("th")).to_have_text(str(row["day"]))
        expect(cells.locator("td").nth(0)).to_have_text(str(row["logins"]))
        expect(cells.locator("td").nth(1)).to_have_text(str(row["distinct_users"]))
        expect(cells.locator("td").nth(2)).to_have_text(str(row["peak_concurrent_users"]))
    expect(table.locator("tfoot tr").first.locator("td").nth(1)).to_have_text(
        str(summary[0]["distinct_users"])
    )
    chart = page.locator("#chart")
    expect(chart).to_have_attribute(
        "alt",
        f"Chart of community statistics from {FIRST} to {LAST}; "
        "the table below holds the same figures.",
    )
    expect(page.locator("#chart")).to_have_js_property("complete", True)
    assert chart_width(page) > 0, "the chart did not load"
    page.screenshot(path=str(screenshots / "admin-reports.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"moot-logins-{FIRST}-to-{LAST}.csv"
    lines = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert lines[0] == list(rows[0])
    assert [line[1] for line in lines[1:]] == [str(r["logins"]) for r in rows + summary]
    # The range's distinct users and peak, as under the table, not to be summed from days.
    assert lines[-1][:4] == [
        "all days",
        str(summary[0]["logins"]),
        str(summary[0]["distinct_users"]),
        str(summary[0]["peak_concurrent_users"]),
    ]

    # Each room server's peak: the sampler has written rows for both within seconds.
    deadline = time.monotonic() + 15
    while True:
        page.get_by_label("Report", exact=True).select_option("server_peaks")
        page.get_by_label("From").fill(str(today() - timedelta(days=1)))
        page.get_by_label("To (included)").fill(str(today() + timedelta(days=1)))
        page.get_by_role("button", name="Show report").click()
        expect(page.locator("#report-h")).to_contain_text("Peak usage of each server")
        found = page.locator("#report-table tbody th").all_inner_texts()
        if {"room1", "room2"} <= set(found) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"room1", "room2"} <= set(found)
    expect(page.locator("#chart")).to_have_js_property("complete", True)
    assert chart_width(page) > 0


def test_a_bad_range_is_explained_beside_the_field(
    cluster: Cluster, new_context: NewContext
) -> None:
    page = new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone
    sign_in(page, cluster, "alice", "alice-password", "/admin/reports")
    page.get_by_label("From").fill("2026-10-26")
    page.get_by_label("To (included)").fill("2026-10-24")
    page.get_by_label("To (included)").press("Enter")  # the keyboard sends the form
    to = page.get_by_label("To (included)")
    expect(to).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#to-error")).to_have_text(
        "the last day (2026-10-24) is before the first (2026-10-26)"
    )
    expect(page.locator("#report-table")).to_have_count(0)
    expect(page.locator("#chart")).to_have_count(0)


def test_only_administrators(cluster: Cluster, new_context: NewContext) -> None:
    page = new_context().new_page()
    sign_in(page, cluster, "bob", "bob-password", "/admin/reports")
    expect(page.get_by_role("main")).to_contain_text("administ")
    expect(page.locator("#report-form")).to_have_count(0)
    answer = page.request.get(cluster.ems_url + f"/admin/reports/logins.csv?from={FIRST}&to={LAST}")
    assert answer.status == 403
