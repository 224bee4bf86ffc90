"""The name or moderator search and the calendar page's counts, on SQLite and PostgreSQL.

In process, through the API and the calendar page, on the migrated schema: on SQLite the
search reads the FTS5 trigram table that triggers keep (migration 0012), on PostgreSQL the
trigram indexes (0010); text of 1 or 2 characters finds what starts with it.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from moot.ems.store import occurrences
from moot.ems.store.occurrences import DAY_COUNT_CAP
from moot.ems.web import calendar as web_calendar
from tests.dates import monday_weeks_ahead

BERLIN = ZoneInfo("Europe/Berlin")
DAY = monday_weeks_ahead(3)  # a Monday, worked out from today (no start may lie in the past)


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), BERLIN).isoformat()


_LATER = itertools.count()


def create(api: TestClient, name: str, moderator: str = "alice", **fields: Any) -> str:
    """A meeting on DAY; each one made later than the one before unless `start` is given."""
    start = datetime.combine(DAY, time(7), BERLIN) + timedelta(minutes=next(_LATER) % 900)
    body = {"name": name, "moderator": moderator, "start": start.isoformat(), **fields}
    response = api.post("/api/v1/meetings", json=body)
    assert response.status_code == 201, response.text
    meeting_id: str = response.json()["id"]
    return meeting_id


def search(api: TestClient, q: str, **params: Any) -> list[str]:
    """The names the meeting search finds, in its order (every page)."""
    found: list[str] = []
    cursor = None
    while True:
        answer = api.get(
            "/api/v1/meetings", params={"q": q, **params, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status_code == 200, (q, answer.text)
        body = answer.json()
        found += [m["name"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def in_calendar(api: TestClient, q: str) -> list[str]:
    """The names the calendar of DAY's week finds for `q`."""
    answer = api.get(
        "/api/v1/calendar",
        params={"from": at(DAY, 0), "to": at(DAY + timedelta(days=7), 0), "q": q},
    )
    assert answer.status_code == 200, (q, answer.text)
    return [e["name"] for e in answer.json()]


def fts_rows(database_url: str) -> int | None:
    """How many meetings SQLite's search table holds (None on PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    with sqlite3.connect(str(url.database)) as con:
        count: int = con.execute("SELECT count(*) FROM meetings_search").fetchone()[0]
    return count


def test_found_after_create_and_rename_not_after_delete(api: TestClient, database_url: str) -> None:
    meeting = create(api, "Quarterly Zephyrine review", moderator="bob.weber")
    create(api, "Team lunch")
    assert search(api, "zephyr") == ["Quarterly Zephyrine review"]
    assert search(api, "WEBER") == ["Quarterly Zephyrine review"]
    assert in_calendar(api, "zephyr") == ["Quarterly Zephyrine review"]

    renamed = api.patch(f"/api/v1/meetings/{meeting}", json={"name": "Budget Quokkafest"})
    assert renamed.status_code == 200, renamed.text
    assert search(api, "zephyr") == []
    assert in_calendar(api, "zephyr") == []
    assert search(api, "quokka") == ["Budget Quokkafest"]
    assert in_calendar(api, "quokka") == ["Budget Quokkafest"]
    assert search(api, "weber") == ["Budget Quokkafest"]  # the moderator stayed

    moved = api.patch(f"/api/v1/meetings/{meeting}", json={"moderator": "carol.nguyen"})
    assert moved.status_code == 200, moved.text
    assert search(api, "weber") == []
    assert search(api, "nguyen") == ["Budget Quokkafest"]

    assert fts_rows(database_url) in (2, None)
    assert api.delete(f"/api/v1/meetings/{meeting}").status_code == 204
    assert search(api, "quokka") == []
    assert in_calendar(api, "quokka") == []
    assert search(api, "lunch") == ["Team lunch"]
    assert fts_rows(database_url) in (1, None)  # the deleted meeting left the index too


def test_unlisted_meetings_are_in_no_search(api: TestClient) -> None:
    create(api, "Secret Xylophone merger", unlisted=True)
    create(api, "Xylophone lessons")
    for q in ("xylophone", "Secret Xylophone merger", "merger", "Se", "S"):
        assert "Secret Xylophone merger" not in search(api, q), q
        assert "Secret Xylophone merger" not in in_calendar(api, q), q
    assert search(api, "xylo") == ["Xylophone lessons"]


def test_search_ignores_case(api: TestClient) -> None:
    create(api, "ROADMAP Review", moderator="Dana.Smith")
    create(api, "roadmap sync", moderator="erik")
    assert search(api, "RoAdMaP") == ["ROADMAP Review", "roadmap sync"]
    assert search(api, "dana.SMITH") == ["ROADMAP Review"]
    assert search(api, "rO") == ["ROADMAP Review", "roadmap sync"]
    assert in_calendar(api, "REVIEW") == ["ROADMAP Review"]


def test_one_or_two_characters_find_names_and_moderators_that_start_with_them(
    api: TestClient,
) -> None:
    create(api, "QA weekly", moderator="zoe")
    create(api, "Platform QA review", moderator="quentin")  # contains "qa", starts otherwise
    create(api, "Qatar office", moderator="bob")
    create(api, "Standup", moderator="qasim")
    assert search(api, "qa") == ["QA weekly", "Qatar office", "Standup"]
    assert search(api, "Q") == ["QA weekly", "Platform QA review", "Qatar office", "Standup"]
    assert search(api, "pl") == ["Platform QA review"]
    assert search(api, "x") == []
    assert in_calendar(api, "qa") == ["QA weekly", "Qatar office", "Standup"]
    # Three characters: contained anywhere, as before.
    assert search(api, "qa ") == ["QA weekly", "Platform QA review"]


HOSTILE_NAMES = [
    '50% off "launch"',
    "a_b review",
    "axb review",
    "back\\slash sync",
    "it's time",
    "NEAR(alpha beta)",
    "col: name* AND more",
    "{name moderator} : x",
    "plain meeting",
]


def test_query_syntax_characters_are_taken_literally(api: TestClient) -> None:
    for name in HOSTILE_NAMES:
        create(api, name)
    expected = {
        "50%": ['50% off "launch"'],
        '"launch"': ['50% off "launch"'],
        '"': [],  # starts with a quote: none
        "%": [],
        "_": [],
        "a_b": ["a_b review"],  # not "axb review": _ is no wildcard
        "_b r": ["a_b review"],
        "k\\s": ["back\\slash sync"],
        "\\": [],
        "'s t": ["it's time"],
        "it'": ["it's time"],
        "NEAR(": ["NEAR(alpha beta)"],
        "near(alpha": ["NEAR(alpha beta)"],
        "name*": ["col: name* AND more"],
        "AND": ["col: name* AND more"],
        "col:": ["col: name* AND more"],
        "{name moderator}": ["{name moderator} : x"],
        "} : x": ["{name moderator} : x"],
        '" OR "': [],
        "alpha OR plain": [],
        "alpha*": [],
        "-alpha": [],
        "^plain": [],
        "*": [],
        "'; DROP TABLE meetings; --": [],
        "') OR 1=1 --": [],
        "ab\x00cd": [],  # a NUL character: in no name
        "\x00": [],
    }
    for q, names in expected.items():
        assert search(api, q) == names, q
        assert in_calendar(api, q) == names, q
        page = api.get("/calendar", params={"q": q, "week": DAY.isoformat(), "tz": "UTC"})
        assert page.status_code == 200, q
        assert f"{len(names)} meeting{'' if len(names) == 1 else 's'}." in page.text, q
    assert len(search(api, "e")) == 0  # nothing starts with "e"
    assert len(api.get("/api/v1/meetings").json()["items"]) == len(HOSTILE_NAMES)


def test_results_and_order_are_those_of_contains_ignoring_case(api: TestClient) -> None:
    """What the plain ILIKE '%text%' gave, in every sort and order, across pages."""
    words = ["Budget review", "budget REVIEW 2027", "Review board", "Design sync", "Retro"]
    moderators = ["reviewer.anna", "bob", "carol", "Previewteam", "dave"]
    made = []
    for i in range(15):
        name = f"{words[i % 5]} {i:02d}"
        moderator = moderators[(i * 2) % 5]
        start = datetime.combine(DAY, time(0), BERLIN) + timedelta(hours=(i * 7) % 15 * 5)
        create(api, name, moderator=moderator, start=start.isoformat())
        made.append((start, name, moderator))
    for q in ("review", "VIEW", "get re", "eam", "sync 0", "zzz"):
        hits = [m for m in made if q.lower() in m[1].lower() or q.lower() in m[2].lower()]
        assert search(api, q) == [m[1] for m in sorted(hits)], q
        assert search(api, q, limit=2, order="desc") == [m[1] for m in sorted(hits)][::-1], q
        by_name = sorted(m[1] for m in hits)
        assert search(api, q, sort="name", limit=3) == by_name, q
        assert search(api, q, sort="name", order="desc", limit=3) == by_name[::-1], q
        moderator_of = {m[1]: m[2] for m in hits}
        found = search(api, q, sort="moderator", limit=2)
        assert sorted(found) == by_name, q
        assert [moderator_of[n] for n in found] == sorted(m[2] for m in hits), q


def test_the_calendar_api_pages_with_a_link_header(api: TestClient) -> None:
    for i in range(5):
        create(api, f"Sync {i}", start=at(DAY, 9 + i))
    params = {"from": at(DAY, 0), "to": at(DAY + timedelta(days=1), 0), "limit": 2}
    seen: list[str] = []
    answer = api.get("/api/v1/calendar", params=params)
    while True:
        assert answer.status_code == 200, answer.text
        seen += [e["name"] for e in answer.json()]
        link = answer.headers.get("link")
        if link is None:
            break
        following = re.fullmatch(r'<(/api/v1/calendar\?[^>]+)>; rel="next"', link)
        assert following is not None, link
        answer = api.get(following.group(1))
    assert seen == [f"Sync {i}" for i in range(5)]
    everything = api.get("/api/v1/calendar", params={**params, "limit": 2000})
    assert "link" not in everything.headers and len(everything.json()) == 5
    for cursor in ("nonsense", "W10", "WyJ4IiwgMV0"):
        bad = api.get("/api/v1/calendar", params={**params, "cursor": cursor})
        assert bad.status_code == 422 and "cursor is not valid" in bad.text
    assert api.get("/api/v1/calendar", params={**params, "limit": 2001}).status_code == 422


def test_the_calendar_page_counts_busy_days_up_to_its_cap(api: TestClient) -> None:
    busy = DAY + timedelta(days=1)
    create(api, "Alone", start=at(DAY + timedelta(days=2), 10))
    # More occurrences in a day than the cap: "100+" in the grid, the list counts them.
    for i in range(DAY_COUNT_CAP + 2):
        create(api, f"Slot {i:03d}", start=at(busy, 8, 0), duration_minutes=15)
    page = api.get(
        "/calendar",
        params={"day": busy.isoformat(), "month": f"{busy:%Y-%m}", "tz": "Europe/Berlin"},
    )
    assert page.status_code == 200
    assert f"{DAY_COUNT_CAP}+ meetings" in page.text
    assert ">1 meeting<" in page.text  # the day of "Alone"
    assert f"{DAY_COUNT_CAP + 2} meetings." in page.text
    pages = -(-(DAY_COUNT_CAP + 2) // 25)
    assert f"Page 1 of {pages}" in page.text
    names = re.findall(r"<td>(Slot \d{3})</td>", page.text)
    assert names == [f"Slot {i:03d}" for i in range(25)]
    last = api.get(
        "/calendar",
        params={
            "day": busy.isoformat(),
            "month": f"{busy:%Y-%m}",
            "tz": "Europe/Berlin",
            "page": 9,
        },
    )
    assert f"Page {pages} of {pages}" in last.text  # a page beyond the last shows the last
    assert re.findall(r"<td>(Slot \d{3})</td>", last.text) == [
        f"Slot {i:03d}" for i in range((pages - 1) * 25, DAY_COUNT_CAP + 2)
    ]


def test_a_list_too_long_to_count_pages_on_and_sorts_by_time(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past LIST_COUNT_CAP the list says "N meetings or more" and keeps date order."""
    for module in (occurrences, web_calendar):
        monkeypatch.setattr(module, "LIST_COUNT_CAP", 6)
    monkeypatch.setattr(web_calendar, "PAGE_SIZE", 4)
    occurrences._counts.cache_clear()  # the statement holds the cap
    try:
        day = DAY + timedelta(days=3)
        for i, name in enumerate(["delta", "Alpha", "echo", "Charlie", "bravo", "foxtrot", "golf"]):
            create(api, name, start=at(day, 9 + i))
        params = {"day": day.isoformat(), "month": f"{day:%Y-%m}", "tz": "Europe/Berlin"}
        page = api.get("/calendar", params={**params, "sort": "name"})
        assert page.status_code == 200
        assert "6 meetings or more." in page.text
        assert "Too many meetings to sort by meeting name" in page.text
        assert re.findall(r"<td>([A-Za-z]+)</td>\s*<td>alice", page.text) == [
            "delta",
            "Alpha",
            "echo",
            "Charlie",
        ]
        assert "Page 1<" in page.text and "Next page" in page.text
        second = api.get("/calendar", params={**params, "sort": "name", "page": 2})
        assert re.findall(r"<td>([A-Za-z]+)</td>\s*<td>alice", second.text) == [
            "bravo",
            "foxtrot",
            "golf",
        ]
        assert "Next page" not in second.text
        # Few enough: sorted by name, ignoring case.
        other = day + timedelta(days=1)
        for i, name in enumerate(["zulu", "Yankee", "xray"]):
            create(api, name, start=at(other, 9 + i))
        few = api.get("/calendar", params={**params, "day": other.isoformat(), "sort": "name"})
        assert "Too many" not in few.text and "3 meetings." in few.text
        assert re.findall(r"<td>([A-Za-z]+)</td>\s*<td>alice", few.text) == [
            "xray",
            "Yankee",
            "zulu",
        ]
    finally:
        occurrences._counts.cache_clear()
