"""The meeting form of the Meeting Center: what a person typed, to API fields and back.

The form speaks in a person's terms (a date, a time and a time zone; "weekly on Monday
and Wednesday, until 20 December"); the API speaks in instants and RFC 5545 rules. Both
directions live here, so that the new-meeting page and the change page show and read
the same form, and an error comes back beside the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moot.core.recurrence import RecurrenceError, build_rule
from moot.ems.errors import InvalidChange
from moot.ems.model.meetings import ALL_TOOLS
from moot.ems.store.models import MeetingRow

TOOL_LABELS = [
    ("chat", "Chat"),
    ("whiteboard", "Whiteboard"),
    ("screen_sharing", "Screen sharing"),
    ("audio_video", "Audio and video"),
    ("polls", "Polling"),
    ("send_web_page", "Send web page"),
]
FREQUENCIES = ("daily", "weekly", "monthly")
# Offered in the time zone field; any IANA name may be typed.
COMMON_ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
]
_SPLIT_PEOPLE = re.compile(r"[,\n;]+")
_RULE_PARTS = re.compile(r"([A-Z]+)=([^;]*)")
_DAY_CODES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@dataclass
class FormValues:
    """What the form shows: strings as typed, so a refused form comes back unchanged."""

    type: str = "collaboration"
    name: str = ""
    moderator: str = ""
    expected_participants: str = "4"
    start_mode: str = "now"
    date: str = ""
    time: str = ""
    timezone: str = "UTC"
    repeat: str = "none"
    interval: str = "1"
    weekdays: list[int] = field(default_factory=list)
    repeat_end: str = "until"
    until: str = ""
    count: str = "10"
    rule: str = ""
    hours: str = "1"
    minutes: str = "0"
    record: bool = False
    has_password: bool = False
    restricted_to: str = ""
    unlisted: bool = False
    tools: list[str] = field(default_factory=lambda: list(ALL_TOOLS))
    location: str = ""
    location_required: bool = False


def new_form(now: datetime | None = None) -> FormValues:
    soon = (now or datetime.now(UTC)) + timedelta(hours=1)
    return FormValues(date=soon.strftime("%Y-%m-%d"), time=soon.strftime("%H:00"))


def form_of(row: MeetingRow) -> FormValues:
    """The form showing a stored meeting, in the time zone it was scheduled in."""
    local = row.start_at.astimezone(_zone_or_utc(row.timezone))
    values = FormValues(
        type=row.type,
        name=row.name,
        moderator=row.moderator,
        expected_participants=str(row.expected_participants),
        start_mode="schedule",
        date=local.strftime("%Y-%m-%d"),
        time=local.strftime("%H:%M"),
        timezone=row.timezone,
        hours=str(row.duration_minutes // 60),
        minutes=str(row.duration_minutes % 60),
        record=row.record,
        has_password=row.password_hash is not None,
        restricted_to="\n".join(row.restricted_to),
        unlisted=row.unlisted,
        tools=list(row.tools),
        location=row.location,
        location_required=row.location_required,
    )
    if row.recurrence:
        _show_rule(values, row.recurrence, _zone_or_utc(row.timezone))
    return values


def _show_rule(values: FormValues, rule: str, zone: ZoneInfo) -> None:
    """Show a rule in the simple controls if they can say it, else as a custom rule."""
    parts = dict(_RULE_PARTS.findall(rule.upper()))
    values.rule = rule
    values.repeat = "custom"
    freq = parts.pop("FREQ", "").lower()
    values.interval = parts.pop("INTERVAL", "1")
    days = parts.pop("BYDAY", "")
    until, count = parts.pop("UNTIL", ""), parts.pop("COUNT", "")
    parts.pop("WKST", None)
    if parts or freq not in FREQUENCIES or (days and freq != "weekly"):
        return
    if days and any(d not in _DAY_CODES for d in days.split(",")):
        return
    values.repeat = freq
    values.weekdays = [_DAY_CODES.index(d) for d in days.split(",")] if days else []
    if count:
        values.repeat_end, values.count = "count", count
    elif until:
        last = datetime.strptime(until.rstrip("Z"), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        values.repeat_end, values.until = "until", last.astimezone(zone).strftime("%Y-%m-%d")


def _zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def read_form(data: Mapping[str, Any], getlist: Any) -> FormValues:
    """The posted form as typed (`getlist` reads a field given more than once)."""

    def text(key: str, default: str = "") -> str:
        value = data.get(key, default)
        return value.strip() if isinstance(value, str) else default

    weekdays = sorted({int(d) for d in getlist("weekday") if str(d) in "0123456"})
    return FormValues(
        type=text("type", "collaboration"),
        name=text("name"),
        moderator=text("moderator"),
        expected_participants=text("expected_participants", "4"),
        start_mode=text("start_mode", "now"),
        date=text("date"),
        time=text("time"),
        timezone=text("timezone", "UTC") or "UTC",
        repeat=text("repeat", "none"),
        interval=text("interval", "1") or "1",
        weekdays=weekdays,
        repeat_end=text("repeat_end", "until"),
        until=text("until"),
        count=text("count", "10"),
        rule=text("rule"),
        hours=text("hours", "0"),
        minutes=text("minutes", "0"),
        record="record" in data,
        restricted_to=str(data.get("restricted_to", "")),
        unlisted="unlisted" in data,
        tools=[str(t) for t in getlist("tools")],
        location=text("location"),
        location_required=text("location_rule") == "required",
    )


def start_of(values: FormValues) -> datetime:
    """The scheduled start, from the date, time and time zone typed."""
    try:
        zone = ZoneInfo(values.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidChange(
            "timezone", f"unknown time zone {values.timezone!r}; give one like Europe/Berlin"
        ) from exc
    try:
        local = datetime.combine(date.fromisoformat(values.date), time.fromisoformat(values.time))
    except ValueError as exc:
        raise InvalidChange("date", "give the date as YYYY-MM-DD and the time as HH:MM") from exc
    return local.replace(tzinfo=zone)


def rule_of(values: FormValues, start: datetime) -> str | None:
    """The RFC 5545 rule the Repeat controls describe (None: it does not repeat)."""
    if values.repeat == "none":
        return None
    if values.repeat == "custom":
        if not values.rule:
            raise InvalidChange("recurrence", "type a rule, or choose how often it repeats")
        return values.rule
    if values.repeat not in FREQUENCIES:
        raise InvalidChange("recurrence", "choose how often the meeting repeats")
    try:
        interval = int(values.interval)
    except ValueError as exc:
        raise InvalidChange("recurrence", "'every' must be a whole number") from exc
    until: date | None = None
    count: int | None = None
    if values.repeat_end == "count":
        try:
            count = int(values.count)
        except ValueError as exc:
            raise InvalidChange("recurrence", "the number of occurrences must be a number") from exc
    else:
        try:
            until = date.fromisoformat(values.until)
        except ValueError as exc:
            raise InvalidChange("recurrence", "give the last day as YYYY-MM-DD") from exc
    try:
        return build_rule(
            values.repeat,  # type: ignore[arg-type]
            interval=interval,
            weekdays=values.weekdays,
            until=until,
            count=count,
            start=start,
        )
    except RecurrenceError as exc:
        raise InvalidChange("recurrence", str(exc)) from exc


def duration_of(values: FormValues) -> int:
    try:
        return int(values.hours or 0) * 60 + int(values.minutes or 0)
    except ValueError as exc:
        raise InvalidChange("duration_minutes", "hours and minutes must be whole numbers") from exc


def people_of(values: FormValues) -> list[str]:
    return [p.strip() for p in _SPLIT_PEOPLE.split(values.restricted_to) if p.strip()]


def payload_of(values: FormValues, *, running: bool = False) -> dict[str, Any]:
    """The API fields of the form (for MeetingCreate, or MeetingPatch when changing).

    Raises InvalidChange for what only the form can get wrong (a date that is no date).
    """
    payload: dict[str, Any] = {
        "type": values.type,
        "name": values.name,
        "moderator": values.moderator or "Anonymous",
        "expected_participants": values.expected_participants,
        "restricted_to": people_of(values),
        "unlisted": values.unlisted,
        "tools": values.tools,
        "location": values.location,
        "location_required": values.location_required,
    }
    if running:  # its time and recording are settled
        return payload
    payload["duration_minutes"] = duration_of(values)
    payload["record"] = values.record
    payload["timezone"] = values.timezone
    if values.start_mode == "schedule":
        start = start_of(values)
        payload["start"] = start
        payload["recurrence"] = rule_of(values, start)
    elif values.repeat != "none":
        raise InvalidChange("recurrence", "a meeting that starts now does not repeat; schedule it")
    return payload
