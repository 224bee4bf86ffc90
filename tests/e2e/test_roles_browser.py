"""Roles in two browsers: the moderator makes a participant presenter, then moderator (his
moderator controls appear at once, and work), takes it back (they go); mute and the
person's own unmute (real EMS and room server processes, Debian Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from moot.harness import Cluster
from tests.conftest import module_cluster
from tests.e2e.conftest import NewContext
from tests.e2e.test_browser import create_meeting, enter

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    yield from module_cluster(tmp_path_factory, sqlite_template)


@pytest.mark.screenshots
def test_make_presenter_make_moderator_take_back_and_mute(
    cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    meeting_id = create_meeting(cluster, "Roles", "Alice")
    alice = enter(new_context(), cluster, meeting_id, "Alice", as_moderator=True)
    bob = enter(new_context(), cluster, meeting_id, "Bob")
    expect(bob.get_by_role("button", name="Lock meeting")).to_have_count(0)
    expect(bob.get_by_role("button", name="Make Alice presenter")).to_have_count(0)

    # A moderator's actions on a person are behind one disclosure beside their name.
    expect(alice.get_by_role("button", name="Make Bob presenter")).to_be_hidden()
    alice.get_by_label("Moderator actions for Bob").click()
    alice.get_by_role("button", name="Make Bob presenter").click()
    for page in (alice, bob):
        expect(page.locator("#roster li .who")).to_have_text(
            ["Alice (moderator)", "Bob (presenter)"]
        )
    expect(bob.locator("#my-role")).to_have_text("(presenter)")
    expect(bob.locator("#announcer")).to_have_text("Alice made Bob presenter")
    expect(bob.get_by_role("button", name="Lock meeting")).to_have_count(0)  # not a moderator
    bob.reload()  # the role is the room server's, rebuilt from its journal: kept
    expect(bob.locator("#connection")).to_have_text("connected")
    expect(bob.locator("#my-role")).to_have_text("(presenter)")

    alice.get_by_role("button", name="Make Bob moderator").click()
    expect(bob.locator("#my-role")).to_have_text("(moderator)")
    # His moderator controls appear at once, and the room server takes them from him.
    bob.get_by_role("button", name="Lock meeting").click()
    expect(alice.locator("#locked-note")).to_be_visible()
    expect(bob.get_by_label("Moderator actions for Alice")).to_be_visible()
    expect(bob.get_by_role("button", name="End meeting")).to_be_visible()
    # The meeting's own moderator keeps her role: no button takes it.
    expect(bob.get_by_role("button", name="Take back the role of Alice")).to_have_count(0)
    bob.get_by_role("button", name="Unlock meeting").click()
    expect(alice.locator("#locked-note")).to_be_hidden()

    alice.get_by_role("button", name="Take back the role of Bob").click()
    expect(bob.locator("#my-role")).to_have_text("")
    expect(bob.get_by_role("button", name="Lock meeting")).to_have_count(0)
    expect(bob.get_by_role("button", name="End meeting")).to_have_count(0)
    for page in (alice, bob):
        expect(page.locator("#roster li .who")).to_have_text(["Alice (moderator)", "Bob"])

    # Mute: Bob is told, and only he unmutes.
    alice.get_by_role("button", name="Mute Bob").click()
    expect(bob.locator("#muted-note")).to_be_visible()
    expect(alice.locator("#roster li .who")).to_have_text(["Alice (moderator)", "Bob 🔇"])
    alice.screenshot(path=str(screenshots / "meeting-roles.png"))
    bob.screenshot(path=str(screenshots / "meeting-muted.png"))
    bob.get_by_role("button", name="Unmute").click()
    expect(bob.locator("#muted-note")).to_be_hidden()
    expect(alice.get_by_role("button", name="Mute Bob")).to_be_visible()
