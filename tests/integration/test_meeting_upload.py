"""Adding a file from inside a running meeting, with real processes: the meeting page's join
token says who uploads, the EMS decides from it and the roles granted in the meeting; every
page lists the new file at once, and a presenter can present the PDF."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from moot.harness import Cluster
from tests.integration.test_tools import Person, new_meeting
from tests.stage import pdf_of

pytestmark = pytest.mark.processes


def upload(cluster: Cluster, meeting_id: str, token: str, name: str, data: bytes) -> httpx.Response:
    """As the meeting page sends it: from another origin, the token in the form, no cookie."""
    return httpx.post(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/files/from-meeting",
        data={"token": token},
        files=[("file", (name, data, "application/pdf"))],
        headers={"Origin": "http://room.example"},
        timeout=10,
    )


def files_of(cluster: Cluster, meeting_id: str) -> list[str]:
    answer = httpx.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/files", headers=cluster.admin, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return [f["name"] for f in answer.json()["items"]]


async def listed(person: Person, name: str) -> list[dict[str, Any]]:
    """Read the page's messages until its Files list has `name`."""
    assert person.ws is not None
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await person.ws.recv())
            if message["type"] == "files" and name in [f["name"] for f in message["files"]]:
                return list(message["files"])


def test_a_presenter_uploads_a_pdf_from_the_meeting_everyone_lists_it_and_it_is_presented(
    shared_cluster: Cluster,
) -> None:
    cluster = shared_cluster
    meeting = new_meeting(cluster)
    mid = meeting["id"]

    async def scenario() -> None:
        mia = Person(cluster, mid, "Mia", meeting["moderator_key"])
        ada = Person(cluster, mid, "Ada")
        ben = Person(cluster, mid, "Ben")
        for person in (mia, ada, ben):
            await person.connect()
        await ada.settle()

        # A participant may not: refused with the reason, readable across origins.
        refused = await asyncio.to_thread(upload, cluster, mid, ada.token, "Mine.pdf", pdf_of(2))
        assert refused.status_code == 403, refused.text
        assert refused.headers["access-control-allow-origin"] == "*"
        assert "moderators and presenters" in refused.json()["detail"]
        # Nor a made-up token (a typed name is not who you are).
        forged = await asyncio.to_thread(upload, cluster, mid, "not-a-token", "F.pdf", pdf_of(1))
        assert forged.status_code == 403
        assert files_of(cluster, mid) == []

        # Made presenter in the meeting: now she may.
        await mia.act("g1", {"kind": "moderation.grant", "user": "Ada", "role": "presenter"})
        made = await asyncio.to_thread(upload, cluster, mid, ada.token, "Deck.pdf", pdf_of(3))
        assert made.status_code == 201, made.text
        [deck] = made.json()["items"]
        assert deck["name"] == "Deck.pdf" and deck["uploaded_by"] == "Ada"
        # Every page lists it at once, without a reload.
        for person in (mia, ben):
            assert deck["id"] in [f["id"] for f in await listed(person, "Deck.pdf")]
        await listed(ada, "Deck.pdf")
        # And she presents it.
        await ada.act("s1", {"kind": "slides.open", "file_id": deck["id"], "pages": 3})
        assert "s1" in ada.acked, ada.errors

        # The role taken back: refused again.
        await mia.act("t1", {"kind": "moderation.take_back", "user": "Ada"})
        again = await asyncio.to_thread(upload, cluster, mid, ada.token, "More.pdf", pdf_of(1))
        assert again.status_code == 403, again.text
        # The meeting's moderator may, by who they are.
        by_mia = await asyncio.to_thread(upload, cluster, mid, mia.token, "Mia.pdf", pdf_of(1))
        assert by_mia.status_code == 201, by_mia.text
        for person in (mia, ada, ben):
            await person.close()

    asyncio.run(scenario())
    assert files_of(cluster, mid) == ["Deck.pdf", "Mia.pdf"]


def test_an_upload_from_the_meeting_of_a_refused_type_says_why_and_stores_nothing(
    shared_cluster: Cluster,
) -> None:
    meeting = new_meeting(shared_cluster)
    mia = Person(shared_cluster, meeting["id"], "Mia", meeting["moderator_key"])
    answer = httpx.post(
        f"{shared_cluster.ems_url}/api/v1/meetings/{meeting['id']}/files/from-meeting",
        data={"token": mia.token},
        files=[("file", ("run.exe", b"MZ\x90\x00", "application/octet-stream"))],
        timeout=10,
    )
    assert answer.status_code == 415, answer.text
    assert answer.json()["detail"] and answer.headers["access-control-allow-origin"] == "*"
    assert files_of(shared_cluster, meeting["id"]) == []
