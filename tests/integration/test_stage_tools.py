"""The stage's tools with real processes: a presentation (a PDF of the meeting's files)
followed page by page, a web page framed or linked as its site allows, refusals said in
a sentence with nothing stored (the failover of both: test_tools.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from moot.harness import Cluster
from moot.protocol.tools import WebShare
from moot.room.tools.base import Actor, Refused
from moot.room.tools.web import framing
from tests.integration.test_tools import Person, new_meeting
from tests.stage import attach, pdf_of, pptx, web_pages

pytestmark = pytest.mark.processes


def test_everyone_follows_the_presenters_page_and_a_late_joiner_sees_it(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster)
    deck, office = attach(
        shared_cluster, meeting["id"], ("Plan.pdf", pdf_of(9)), ("d.pptx", pptx())
    )

    async def scenario() -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        welcome = await mia.connect()
        await ada.connect()
        # The page reads the PDF from the EMS with the link in its files: across origins.
        [link] = [f["url"] for f in welcome["files"] if f["id"] == deck["id"]]
        async with httpx.AsyncClient(timeout=5) as http:
            got = await http.get(link, headers={"origin": "http://room.example"})
        assert got.status_code == 200 and got.content == pdf_of(9)
        assert got.headers["access-control-allow-origin"] == "*"

        await ada.act("a1", {"kind": "slides.open", "file_id": deck["id"], "pages": 9})
        assert ada.errors["a1"] == "only a presenter can show a presentation"
        await mia.act("o1", {"kind": "slides.open", "file_id": office["id"], "pages": 1})
        assert "only PDF files are shown as slides; d.pptx can be downloaded" in mia.errors["o1"]
        await mia.act("o2", {"kind": "slides.open", "file_id": deck["id"], "pages": 9})
        await mia.act("p1", {"kind": "slides.page", "page": 6})
        await mia.act("p2", {"kind": "slides.page", "page": 9})
        assert mia.errors["p2"] == "this presentation has 9 pages"
        await ada.read_until(lambda: ada.states.get("slides", {}).get("page") == 6)
        assert ada.states["slides"] == {
            "open": True,
            "file_id": deck["id"],
            "name": "Plan.pdf",
            "pages": 9,
            "page": 6,
            "by": "Mia",
        }
        ben = Person(shared_cluster, meeting["id"], "Ben")
        await ben.connect()
        await ben.settle()
        assert ben.states["slides"]["page"] == 6
        await mia.act("c1", {"kind": "slides.close"})
        await ben.read_until(lambda: ben.states["slides"] == {"open": False})
        for person in (mia, ada, ben):
            await person.close()

    asyncio.run(scenario())


def test_a_web_page_is_framed_where_its_site_allows_it_and_linked_where_not(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster)

    async def scenario(base: str) -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        ada = Person(shared_cluster, meeting["id"], "Ada")
        await mia.connect()
        await ada.connect()
        await mia.act("w1", {"kind": "web.share", "url": f"{base}/open"})
        await ada.read_until(lambda: ada.states.get("web", {}).get("open") is True)
        assert ada.states["web"] == {
            "open": True,
            "url": f"{base}/open",
            "frameable": True,
            "reason": "",
            "by": "Mia",
        }
        await mia.act("w2", {"kind": "web.share", "url": f"{base}/closed"})
        await ada.read_until(lambda: ada.states["web"]["url"].endswith("/closed"))
        assert ada.states["web"]["frameable"] is False
        assert "does not let other sites show it in a frame" in ada.states["web"]["reason"]
        # A redirect to another scheme is not followed: a link, and why.
        await mia.act("w3", {"kind": "web.share", "url": f"{base}/elsewhere"})
        await ada.read_until(lambda: ada.states["web"]["url"].endswith("/elsewhere"))
        assert ada.states["web"]["frameable"] is False
        assert "not a valid http or https address" in ada.states["web"]["reason"]
        # Refusals: a sentence for the event's id, nothing shown.
        await mia.act("x1", {"kind": "web.share", "url": "javascript:alert(1)"})
        assert (
            mia.errors["x1"] == "url: only http:// and https:// addresses can be sent as a web page"
        )
        await mia.act("x2", {"kind": "web.share", "url": "https://a.example/" + "a" * 2000})
        assert "at most 2000 characters" in mia.errors["x2"]
        await ada.act("x3", {"kind": "web.share", "url": f"{base}/open"})
        assert ada.errors["x3"] == "only a presenter can send a web page"
        await mia.act("c1", {"kind": "web.close"})
        await ada.read_until(lambda: ada.states["web"] == {"open": False})
        await mia.close()
        await ada.close()

    with web_pages() as base:
        asyncio.run(scenario(base))


def test_a_meeting_without_the_tools_refuses_them(shared_cluster: Cluster) -> None:
    meeting = new_meeting(shared_cluster, tools=["chat"])
    [deck] = attach(shared_cluster, meeting["id"], ("Plan.pdf", pdf_of(2)))

    async def scenario() -> None:
        mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
        await mia.connect()
        await mia.act("s1", {"kind": "slides.open", "file_id": deck["id"], "pages": 2})
        await mia.act("w1", {"kind": "web.share", "url": "http://127.0.0.1:9/"})
        assert "does not have whiteboard" in mia.errors["s1"]
        assert "does not have send_web_page" in mia.errors["w1"]
        await mia.close()

    asyncio.run(scenario())


def test_the_framing_check_asks_the_site_and_nothing_else() -> None:
    """framing.check against real local pages: what it decides, and that a participant's
    address is refused before anything is fetched."""
    mia = Actor("Mia", "user::mia", "moderator")
    ada = Actor("Ada", "guest:a", "participant")

    async def verdict_of(url: str) -> tuple[bool, str]:
        event = await framing.check(WebShare(url=url), mia)
        assert isinstance(event, WebShare)
        return event.frameable, event.reason

    with web_pages() as base:
        assert asyncio.run(verdict_of(f"{base}/open")) == (True, "")
        assert asyncio.run(verdict_of(f"{base}/closed"))[0] is False
        assert asyncio.run(verdict_of(f"{base}/elsewhere")) == (False, framing.NOT_WEB)
        with pytest.raises(Refused, match="only a presenter"):
            asyncio.run(framing.check(WebShare(url=f"{base}/open"), ada))
    # Nothing listens there any more: the page gets the link, and why.
    assert asyncio.run(verdict_of(f"{base}/open")) == (False, framing.NOT_CHECKED)
    # A link-local address is never asked (cloud metadata).
    metadata = "http://169.254.169.254/latest/meta-data/"
    assert asyncio.run(verdict_of(metadata)) == (False, framing.NOT_ASKED)
