"""The lobby that opens by itself at a meeting's start, and the Test Meeting page.

A browser with a fake camera and microphone (Chromium's own fakes), against real
processes: an EMS whose meeting clock ticks every half second.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from moot.harness import Cluster
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.processes]

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def media_browser() -> Iterator[Browser]:
    """Chromium whose camera and microphone are fakes that always say yes."""
    _require_chromium()
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + FAKE_MEDIA
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def punctual(tmp_path: Path) -> Iterator[Cluster]:
    """An EMS that lets nobody in early and whose clock ticks every 0.5 s, with one room."""
    running = Cluster(workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        running.start_ems(MOOT_EARLY_JOIN_MINUTES="0", MOOT_CLOCK_INTERVAL="0.5")
        running.start_room("room1")
        yield running
    finally:
        running.stop()


def test_who_comes_early_waits_in_the_lobby_which_opens_by_itself(
    punctual: Cluster, media_browser: Browser
) -> None:
    start = datetime.now(UTC) + timedelta(seconds=6)
    created = punctual.client.post(
        f"{punctual.ems_url}/api/v1/meetings",
        json={"name": "Kick-off", "start": start.isoformat(), "duration_minutes": 30},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    page = media_browser.new_context().new_page()
    page.goto(f"{punctual.ems_url}/m/{meeting_id}?name=Ann")
    expect(page.get_by_role("heading", name="Kick-off")).to_be_visible()
    expect(page.locator("#lobby-state")).to_contain_text("The meeting opens in")
    # Nobody does anything: at the start the meeting opens and the page goes in.
    expect(page).to_have_url(re.compile(rf"/meeting/{meeting_id}\?token="), timeout=20_000)
    expect(page.locator("#connection")).to_have_text("connected")
    expect(page.locator("#me")).to_have_text("Ann")
    detail = punctual.client.get(
        f"{punctual.ems_url}/api/v1/meetings/{meeting_id}", timeout=5
    ).json()
    assert detail["status"] == "in_progress"
    assert datetime.fromisoformat(detail["started_at"].replace("Z", "+00:00")) >= start


def test_the_test_page_says_in_words_what_works(punctual: Cluster, media_browser: Browser) -> None:
    page = media_browser.new_context().new_page()
    page.goto(f"{punctual.ems_url}/")
    page.get_by_role("link", name="Test meeting").click()
    expect(page.get_by_role("heading", name="Test meeting")).to_be_visible()
    page.get_by_role("button", name="Start the test").click()
    socket = page.locator("#check-socket")
    media = page.locator("#check-media")
    expect(socket).to_have_attribute("data-result", "ok")
    expect(socket).to_contain_text(
        re.compile(r"Works: this browser reached a meeting server in \d+ ms")
    )
    expect(media).to_have_attribute("data-result", "ok")
    expect(media).to_contain_text("Works: permission given for your camera and your microphone")
    expect(page.locator("#preview")).to_be_visible()

    # With no room server running, the page says so and what to do.
    for process in punctual.processes[1:]:
        process.stop()
    punctual.wait_for(lambda: punctual.server_status("room1") != "online", "room1 to stop")
    page.reload()
    page.get_by_role("button", name="Start the test").click()
    expect(socket).to_have_attribute("data-result", "failed")
    expect(socket).to_contain_text("No meeting server is available right now")
