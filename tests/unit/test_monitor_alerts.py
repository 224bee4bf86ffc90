"""The monitoring page's alerts, worked out from a server's figures (pure)."""

from __future__ import annotations

from typing import Any

from moot.ems.monitor import server_alerts
from moot.ems.web.admin_monitor import event, script_json


def view(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "room1",
        "status": "online",
        "meetings": [],
        "max_active_meetings": 10,
        "max_users_per_meeting": 5,
        "instant_active": 0,
        "instant_meetings": None,
        "cpu_percent": 10.0,
        "memory_percent": 20.0,
    }
    return {**base, **changes}


def meeting(count: int, name: str = "Standup") -> dict[str, Any]:
    people = [{"user": f"u{i}", "role": "participant"} for i in range(count)]
    return {"id": "m1", "name": name, "participants": people, "tools": []}


def texts(server: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a.level, a.text) for a in server_alerts(server)]


def test_a_calm_server_has_no_alert() -> None:
    assert texts(view(meetings=[meeting(3)] * 7)) == []


def test_meetings_near_and_at_the_limit() -> None:
    assert texts(view(meetings=[meeting(1)] * 8)) == [
        ("warning", "room1 is near its limit: 8 of 10 meetings")
    ]
    assert texts(view(meetings=[meeting(1)] * 10)) == [
        ("critical", "room1 is at its limit: 10 of 10 meetings")
    ]
    # A server that may take no meeting but runs one is over its limit.
    assert texts(view(max_active_meetings=0, meetings=[meeting(1)])) == [
        ("critical", "room1 is at its limit: 1 of 0 meetings")
    ]


def test_participants_per_meeting() -> None:
    assert texts(view(meetings=[meeting(4)])) == [
        ("warning", "meeting Standup on room1 is near its limit: 4 of 5 participants")
    ]
    assert texts(view(meetings=[meeting(6)])) == [
        ("critical", "meeting Standup on room1 has 6 participants: the limit is 5 per meeting")
    ]


def test_status_instant_meetings_cpu_and_memory() -> None:
    assert texts(view(status="failed", cpu_percent=99.0, meetings=[meeting(9)] * 10)) == [
        ("critical", "room1 has failed: its meetings move to other servers")
    ]  # a failed server's figures are old: no load alerts
    assert texts(view(status="suspect")) == [("warning", "room1 is not answering (suspect)")]
    assert texts(view(status="offline")) == []
    assert texts(view(instant_meetings=2, instant_active=2)) == [
        ("warning", "room1 is at its limit of 2 instant meeting(s)")
    ]
    assert texts(view(instant_meetings=0)) == []
    assert texts(view(cpu_percent=80.0, memory_percent=95.0)) == [
        ("warning", "room1: CPU high, 80%"),
        ("critical", "room1: memory at 95%"),
    ]


def test_events_and_script_json_cannot_break_out() -> None:
    assert event("snapshot", {"a": "x\ny"}, 3) == 'id: 3\nevent: snapshot\ndata: {"a":"x\\ny"}\n\n'
    assert "<" not in script_json({"name": "</script><script>alert(1)</script>"})


def test_the_monitor_says_why_a_server_takes_no_media_meetings() -> None:
    def media(**fields: Any) -> dict[str, Any]:
        base = {"available": True, "reason": "", "publishers": 0, "subscribers": 0}
        return {**base, "max_streams": 100, **fields}

    assert texts(view(media=media(publishers=3, subscribers=20))) == []
    assert texts(view(media=media(available=False, reason="the media server restarts"))) == [
        (
            "warning",
            "room1: audio/video unavailable (the media server restarts): meetings with "
            "audio, video or screen sharing go to other servers while any has it",
        )
    ]
    assert texts(view(media=media(publishers=10, subscribers=90))) == [
        (
            "warning",
            "room1 is at its media limit: 100 of 100 streams; new meetings with "
            "audio/video go to other servers",
        )
    ]
    bitrate = {"bitrate_kbps": 2500, "max_bitrate_kbps": 5000}
    assert texts(view(media=media(**bitrate))) == []
    assert texts(view(media=media(**{**bitrate, "bitrate_kbps": 5200}))) == [
        (
            "warning",
            "room1 is at its media bitrate limit: 5.2 of 5 Mbit/s; new meetings with "
            "audio/video go to other servers",
        )
    ]
