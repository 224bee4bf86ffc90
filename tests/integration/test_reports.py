"""Every report against a generated history whose figures are known (report_history.py),
as JSON, CSV, chart and page, on SQLite and PostgreSQL; and the refusals.

In process: the EMS app over a real database; the history is written with the ORM.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from moot.core import reports as pure
from moot.core.placement import ServerState
from moot.ems.app import create_app
from moot.ems.auth.users import add_user
from moot.ems.cluster.registry import LiveServer, Registry
from moot.ems.cluster.samples import Sampler
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import AttendanceRow, MeetingRow, ServerSampleRow
from moot.ems.store.reports import Reports, report_stays
from moot.infra.settings import EmsSettings
from moot.protocol.control import MeetingStatus, Participant, ServerLimits
from tests.integration.report_history import EXPECTED, FIRST, LAST, write_history

SECRET = "secret"
ADMIN = {"Authorization": f"Bearer {SECRET}"}
ZONES = ("UTC", "Europe/Paris")


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    write_history(migrated_url)
    asyncio.run(add_user(migrated_url, "bob", "bob-password"))
    settings = EmsSettings(
        database_url=migrated_url, data_dir=tmp_path / "data", cluster_secret=SECRET
    )
    with TestClient(create_app(settings)) as running:
        yield running


def report(client: TestClient, name: str, tz: str, **extra: str) -> Any:
    answer = client.get(
        f"/api/v1/reports/{name}",
        params={"from": FIRST, "to": LAST, "tz": tz, **extra},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("tz", ZONES)
def test_report_figures(client: TestClient, name: str, tz: str) -> None:
    body = report(client, name, tz)
    rows, summary = EXPECTED[name][tz]
    assert (body["name"], body["from"], body["to"], body["tz"]) == (name, FIRST, LAST, tz)
    assert [c["key"] for c in body["columns"]] == list(rows[0])
    assert body["rows"] == rows
    assert body["summary"] == summary


@pytest.mark.parametrize("name", list(EXPECTED))
def test_csv_is_the_table(client: TestClient, name: str) -> None:
    answer = client.get(
        f"/admin/reports/{name}.csv",
        params={"from": FIRST, "to": LAST, "tz": "Europe/Paris"},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="moot-{name}-{FIRST}-to-{LAST}.csv"'
    )
    lines = list(csv.reader(io.StringIO(answer.text)))
    rows, summary = EXPECTED[name]["Europe/Paris"]
    assert lines[0] == list(rows[0])
    expected = [
        ["" if v is None else ("'" + v if str(v).startswith("@") else str(v)) for v in r.values()]
        for r in rows + summary  # the "all days" lines, as under the page's table
    ]
    assert lines[1:] == expected
    if name == "logins":  # range figures that the days cannot give: there in the CSV
        assert lines[-1][:3] == ["all days", "7", "4"]
    if name == "server_peaks":  # a cell a spreadsheet would run as a formula is defused
        assert lines[1][0] == "'@evil"


def test_chart_is_svg_without_script(client: TestClient) -> None:
    answer = client.get(
        "/admin/reports/logins.svg", params={"from": FIRST, "to": LAST, "tz": "UTC"}, headers=ADMIN
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    svg = answer.text
    assert svg.startswith("<?xml") and "<svg" in svg
    assert "<script" not in svg and "kozea.github.io" not in svg
    assert "Community statistics, 2026-10-24 to 2026-10-26 (UTC)" in svg
    assert "Peak concurrent users" in svg  # the legend


def test_page_shows_table_chart_and_download(client: TestClient) -> None:
    page = client.get(
        "/admin/reports",
        params={"report": "meetings", "from": FIRST, "to": LAST, "tz": "Europe/Paris"},
        headers=ADMIN,
    )
    assert page.status_code == 200, page.text
    html = page.text
    assert "Meeting statistics, 2026-10-24 to 2026-10-26" in html
    query = f"from={FIRST}&amp;to={LAST}&amp;tz=Europe%2FParis"
    assert f'src="/admin/reports/meetings.svg?{query}"' in html
    assert f'href="/admin/reports/meetings.csv?{query}"' in html
    assert "Average participants per meeting" in html
    assert '<option value="Europe/Paris" selected>' in html


def test_page_defaults_to_the_readers_zone_and_30_days(client: TestClient) -> None:
    client.cookies.set("moot_tz", "Asia/Kolkata")
    page = client.get("/admin/reports", headers=ADMIN)
    client.cookies.delete("moot_tz")
    assert page.status_code == 200
    today = datetime.now(UTC).astimezone().date()  # within a day of Kolkata's today
    assert '<option value="Asia/Kolkata" selected>' in page.text
    assert "Community statistics, " in page.text
    first = page.text.split('id="from" name="from" type="date" value="')[1][:10]
    last = page.text.split('id="to" name="to" type="date" value="')[1][:10]
    assert (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days == 29
    assert abs((datetime.fromisoformat(last).date() - today).days) <= 1


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2026-10-26", "to": "2026-10-24"}, "to", "before the first"),
        ({"from": "2023-01-01", "to": "2026-10-24"}, "to", "at most 1096 days"),
        ({"from": "2025-13-01", "to": "2025-10-24"}, "from", "is not a date"),
        ({"tz": "Mars/Olympus"}, "tz", "is not a time zone"),
        ({"tz": "../../etc/passwd"}, "tz", "is not a time zone"),
    ],
)
def test_bad_ranges_are_refused(
    client: TestClient, params: dict[str, str], field: str, words: str
) -> None:
    answer = client.get("/api/v1/reports/logins", params=params, headers=ADMIN)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["query", field] and words in error["msg"]
    page = client.get("/admin/reports", params={"report": "logins", **params}, headers=ADMIN)
    assert page.status_code == 422
    assert f'<p class="error" id="{field}-error">' in page.text and words in page.text
    assert 'id="report-table"' not in page.text  # no table from a range that was refused
    download = client.get("/admin/reports/logins.csv", params=params, headers=ADMIN)
    assert download.status_code == 422 and words in download.text


def test_three_years_are_allowed(client: TestClient) -> None:
    body = report(
        client, "logins", "America/New_York", **{"from": "2024-01-01", "to": "2026-12-31"}
    )
    assert len(body["rows"]) == 1096
    assert body["summary"][0]["logins"] == 9  # every login of the history
    by_day = {r["day"]: r["logins"] for r in body["rows"] if r["logins"]}
    # New York is 4 hours behind UTC (EDT): 21:59 UTC on the 23rd is 17:59 there, 23:30 UTC
    # on the 24th, 25th and 26th are 19:30 the same day.
    assert by_day == {"2026-10-23": 1, "2026-10-24": 4, "2026-10-25": 2, "2026-10-26": 2}


def test_unknown_report(client: TestClient) -> None:
    answer = client.get("/api/v1/reports/nope", headers=ADMIN)
    assert answer.status_code == 404 and "login_failures" in answer.json()["detail"]
    assert client.get("/admin/reports/nope.csv", headers=ADMIN).status_code == 404
    page = client.get("/admin/reports", params={"report": "nope"}, headers=ADMIN)
    assert page.status_code == 422 and 'id="report-error"' in page.text


def test_report_list(client: TestClient) -> None:
    answer = client.get("/api/v1/reports", headers=ADMIN)
    assert [r["name"] for r in answer.json()] == [
        "logins",
        "login_failures",
        "meetings",
        "capacity_warnings",
        "server_peaks",
        "community",
    ]


def test_administrators_only(client: TestClient) -> None:
    assert client.get("/api/v1/reports/logins").status_code == 401
    assert client.get("/api/v1/reports").status_code == 401
    token = client.post(
        "/api/v1/auth/token", json={"username": "bob", "password": "bob-password"}
    ).json()["token"]
    bob = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/reports/logins", headers=bob).status_code == 403
    for path in ("/admin/reports", "/admin/reports/logins.csv", "/admin/reports/logins.svg"):
        anonymous = client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
            "/signin?next=/admin/reports"
        )
        refused = client.get(path, headers=bob)
        assert refused.status_code == 403 and "Download CSV" not in refused.text


def _samples(database_url: str) -> list[ServerSampleRow]:
    async def read() -> list[ServerSampleRow]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                found = await session.scalars(
                    select(ServerSampleRow).order_by(
                        ServerSampleRow.at, ServerSampleRow.server_name
                    )
                )
                return list(found)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_sampler_writes_the_highest_figures_of_each_interval(migrated_url: str) -> None:
    """Observed every heartbeat, written once per interval: a peak between two samples
    is kept; a server that is not online is not sampled; old rows go."""
    limits = ServerLimits(max_active_meetings=10, max_users_per_meeting=100)

    def meeting(mid: str, people: int) -> MeetingStatus:
        return MeetingStatus(
            meeting_id=mid,
            epoch=1,
            participants=[Participant(user=f"p{i}", role="participant") for i in range(people)],
            tools=[],
        )

    async def run() -> None:
        engine = create_engine(migrated_url)
        sessions = session_factory(engine)
        try:
            registry = Registry()
            one = LiveServer(name="room1", url="http://r1", limits=limits, state=ServerState.ONLINE)
            two = LiveServer(name="room2", url="http://r2", limits=limits, state=ServerState.FAILED)
            registry.put(one)
            registry.put(two)
            sampler = Sampler(sessions, registry, interval=60, retention_days=30, observe_every=1)
            old = datetime.now(UTC) - timedelta(days=31)
            async with sessions() as session:
                session.add(
                    ServerSampleRow(
                        server_name="room1",
                        at=old,
                        active_meetings=9,
                        meetings_at=old,
                        participants=9,
                        participants_at=old,
                        cpu_percent=9,
                        memory_percent=9,
                    )
                )
                await session.commit()
            one.meetings = {"a": meeting("a", 4)}
            one.cpu_percent, one.memory_percent = 70.0, 20.0
            sampler.observe(SEEN_FIRST)
            one.meetings = {"a": meeting("a", 2), "b": meeting("b", 1)}
            one.cpu_percent, one.memory_percent = 10.0, 30.0
            sampler.observe(SEEN_FIRST + timedelta(seconds=20))
            sampler.observe(SEEN_FIRST + timedelta(seconds=40))  # the same again: not later
            assert await sampler.flush(WRITTEN) == 1
            sampler.observe(WRITTEN + timedelta(seconds=5))
            assert await sampler.flush(WRITTEN + timedelta(minutes=1)) == 1
        finally:
            await engine.dispose()

    asyncio.run(run())
    samples = _samples(migrated_url)
    assert [
        (s.server_name, s.active_meetings, s.participants, s.cpu_percent, s.memory_percent)
        for s in samples
    ] == [("room1", 2, 4, 70.0, 30.0), ("room1", 2, 3, 10.0, 30.0)]
    # When each highest figure was first seen, not when its row was written.
    assert [(s.at, s.meetings_at, s.participants_at) for s in samples] == [
        (WRITTEN, SEEN_FIRST + timedelta(seconds=20), SEEN_FIRST),
        (WRITTEN + timedelta(minutes=1),) + (WRITTEN + timedelta(seconds=5),) * 2,
    ]


SEEN_FIRST = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
WRITTEN = SEEN_FIRST + timedelta(seconds=55)


def test_sampler_writes_the_last_interval_when_it_stops(migrated_url: str) -> None:
    """The EMS cancels the task at shutdown: what it saw since the last row is written,
    not lost (with a minute's interval, a restart would drop up to a minute of peaks)."""
    limits = ServerLimits(max_active_meetings=10, max_users_per_meeting=100)

    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            registry = Registry()
            registry.put(
                LiveServer(name="room1", url="http://r1", limits=limits, state=ServerState.ONLINE)
            )
            sampler = Sampler(
                session_factory(engine),
                registry,
                interval=3600,
                retention_days=30,
                observe_every=0.05,
            )
            task = asyncio.create_task(sampler.run())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await engine.dispose()

    asyncio.run(run())
    assert [s.server_name for s in _samples(migrated_url)] == ["room1"]


def test_peaks_in_sql_are_the_sweep_over_every_stay(migrated_url: str) -> None:
    """The database's sweep gives the peaks that moot.core.reports.daily_peaks (held to a count
    at every quarter hour in the unit tests) finds in every stay: on a minute grid, so
    people come and go at the same instants; with people in two meetings at once, a
    failover's second stay, stays over midnight and the clock change, and open stays."""
    rnd = random.Random(20261025)
    base = datetime(2026, 10, 23, 20, 0, tzinfo=UTC)
    now = base + timedelta(days=3, hours=10)  # the open stays last until then

    async def run() -> list[tuple[str, list[Any], list[Any]]]:
        engine = create_engine(migrated_url)
        sessions = session_factory(engine)
        try:
            async with sessions() as session:
                for n in range(8):
                    running = n == 7  # in progress: its open stays count until now
                    start = base + timedelta(hours=9 * n)
                    session.add(
                        MeetingRow(
                            id=f"peak{n}",
                            name=f"Peak {n}",
                            type="collaboration",
                            moderator="alice",
                            expected_participants=10,
                            start_at=start,
                            end_at=start + timedelta(days=1),
                            duration_minutes=60,
                            tools=[],
                            status="in_progress" if running else "ended",
                            server_name="room1",
                            epoch=1,
                            started_at=start,
                            ended_at=None if running else start + timedelta(hours=20),
                        )
                    )
                await session.flush()
                for _ in range(400):
                    n = rnd.randrange(8)
                    joined = base + timedelta(hours=9 * n, minutes=rnd.randrange(0, 20 * 60, 5))
                    left = joined + timedelta(minutes=rnd.randrange(5, 600, 5))
                    session.add(
                        AttendanceRow(
                            meeting_id=f"peak{n}",
                            user_name=f"u{rnd.randrange(12)}",
                            role="participant",
                            server_name="room1",
                            epoch=1,
                            joined_at=joined,
                            left_at=None if rnd.randrange(10) == 0 else left,
                        )
                    )
                await session.commit()
            s = report_stays.c
            async with sessions() as session:
                stays = (await session.execute(select(s.user_name, s.joined_at, s.left_at))).all()
            found = []
            for tz in ("UTC", "Europe/Paris", "America/New_York"):
                rng = pure.parse_range(FIRST, LAST, tz, now)
                report = await Reports(sessions).build("logins", rng, now)
                peaks = pure.daily_peaks(((u, j, left) for u, j, left in stays), rng, now)
                expected = [
                    [p.people, pure.iso_local(p.at, rng.zone)] for _, p in sorted(peaks.items())
                ]
                best = pure.overall_peak(peaks)
                expected.append([best.people, pure.iso_local(best.at, rng.zone)])
                got = [
                    [r["peak_concurrent_users"], r["peak_at"]] for r in report.rows + report.summary
                ]
                found.append((tz, got, expected))
            return found
        finally:
            await engine.dispose()

    for tz, got, expected in asyncio.run(run()):
        assert got == expected, tz
        assert max(people for people, _ in got) >= 5, tz  # a history with crowds to tell apart
