"""Chromium on a mistyped address: a page that says so, with the way back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from moot.harness import Cluster
from tests.e2e.conftest import NewContext

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def test_a_mistyped_address_leads_back_to_the_meeting_center(
    cluster: Cluster, new_context: NewContext
) -> None:
    page = new_context().new_page()
    answer = page.goto(f"{cluster.ems_url}/calendar/today/please")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Back to the Meeting Center").click()
    expect(page).to_have_url(f"{cluster.ems_url}/")

    room = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/room1", headers=cluster.admin
    ).json()
    answer = page.goto(f"{room['url']}/no-such-meeting")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Go to the Meeting Center").click()
    expect(page).to_have_url(f"{cluster.ems_url}/")
