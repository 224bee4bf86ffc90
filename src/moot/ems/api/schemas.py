"""Request and response bodies of REST API v1 (they are the OpenAPI document)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MeetingType = Literal["collaboration", "broadcast"]
Tool = Literal["chat", "whiteboard", "screen_sharing", "audio_video", "polls", "send_web_page"]
ALL_TOOLS: list[Tool] = [
    "chat",
    "whiteboard",
    "screen_sharing",
    "audio_video",
    "polls",
    "send_web_page",
]
MAX_DURATION_MINUTES = 24 * 60
MAX_RESTRICTED = 100
DEFAULT_DRAIN_MINUTES = 4 * 60
MAX_DRAIN_MINUTES = 7 * 24 * 60
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _clean_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _check_recurrence(value: str | None) -> str | None:
    if value is None:
        return None
    rule = value.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :]
    try:
        rrulestr(rule, ignoretz=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an RFC 5545 RRULE: {exc}") from exc
    return rule


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Berlin"
        ) from exc
    return value


def _check_people(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    names = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if any(len(n) > 200 for n in names):
        raise ValueError("a user or group name has at most 200 characters")
    if len(names) > MAX_RESTRICTED:
        raise ValueError(f"at most {MAX_RESTRICTED} users or groups")
    return names


def _check_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2026-12-01T09:00:00+01:00")
    return value


class MeetingCreate(_Body):
    name: str = Field(max_length=200, examples=["Quarterly review"])
    type: MeetingType = "collaboration"
    moderator: str = Field("Anonymous", max_length=200)
    expected_participants: int = Field(4, ge=1, le=100_000)
    start: datetime | None = Field(None, description="ISO 8601 with offset; absent = now")
    duration_minutes: int = Field(60, ge=1, le=MAX_DURATION_MINUTES)
    recurrence: str | None = Field(None, max_length=500, description="RFC 5545 RRULE")
    record: bool = False
    password: str | None = Field(None, min_length=1, max_length=128)
    tools: list[Tool] = Field(default_factory=lambda: list(ALL_TOOLS))
    location: str = Field(
        "", max_length=64, description="A room server location tag to run in; empty = anywhere."
    )
    location_required: bool = Field(
        False, description="true: only servers in `location`; false: preferred, others if needed."
    )
    timezone: str = Field(
        "UTC",
        max_length=64,
        description="IANA time zone it is scheduled in; a repeat rule keeps its local time there.",
    )
    unlisted: bool = Field(
        False, description="In no list or search; attended by its whole name, unique if unlisted."
    )
    restricted_to: list[str] = Field(
        default_factory=list, description="Users or groups who may attend; empty = everyone."
    )

    _name = field_validator("name", "moderator")(_clean_text)
    _recurrence = field_validator("recurrence")(_check_recurrence)
    _start = field_validator("start")(_check_aware)
    _timezone = field_validator("timezone")(_check_timezone)
    _people = field_validator("restricted_to")(_check_people)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        return value.strip()

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[Tool]) -> list[Tool]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _required_location(self) -> MeetingCreate:
        if self.location_required and not self.location:
            raise ValueError("location_required needs a location")
        return self


class MeetingPatch(_Body):
    name: str | None = Field(None, max_length=200)
    type: MeetingType | None = None
    moderator: str | None = Field(None, max_length=200)
    expected_participants: int | None = Field(None, ge=1, le=100_000)
    start: datetime | None = None
    duration_minutes: int | None = Field(None, ge=1, le=MAX_DURATION_MINUTES)
    recurrence: str | None = Field(None, max_length=500)
    record: bool | None = None
    password: str | None = Field(None, max_length=128, description="empty string removes it")
    tools: list[Tool] | None = None
    location: str | None = Field(None, max_length=64, description="empty string = anywhere")
    location_required: bool | None = None
    timezone: str | None = Field(None, max_length=64)
    unlisted: bool | None = None
    restricted_to: list[str] | None = None

    _timezone = field_validator("timezone")(_check_timezone)
    _people = field_validator("restricted_to")(_check_people)

    @field_validator("name", "moderator")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return None if value is None else value.strip()

    _recurrence = field_validator("recurrence")(_check_recurrence)
    _start = field_validator("start")(_check_aware)


class Attendee(BaseModel):
    user: str
    role: str
    server: str
    joined_at: datetime
    left_at: datetime | None


class MeetingOut(BaseModel):
    id: str
    name: str
    type: MeetingType
    moderator: str
    expected_participants: int
    start: datetime
    end: datetime
    duration_minutes: int
    recurrence: str | None
    record: bool
    has_password: bool
    tools: list[str]
    location: str
    location_required: bool
    timezone: str
    unlisted: bool
    restricted_to: list[str]
    status: Literal["scheduled", "in_progress", "ended"]
    server: str | None = Field(description="The room server hosting it, while in progress.")
    booked_server: str | None = Field(
        description="While scheduled: the room server its expected participants are booked on."
    )
    epoch: int
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    join_url: str


class MeetingDetail(MeetingOut):
    attendance: list[Attendee]


class ModeratorKeyOut(BaseModel):
    moderator_key: str = Field(
        description="Shown once, stored only as a hash: whoever presents it moderates the "
        "meeting (header X-Moderator-Key, or the moderator_url in a browser)."
    )
    moderator_url: str = Field(description="The moderator link: join_url with the key.")


class MeetingCreated(MeetingOut):
    """A new meeting; made by someone not signed in (or by the cluster administrator), with
    its moderator key, shown this once."""

    moderator_key: str | None = Field(
        None, description="null when the signed-in creator (or the named moderator) signs in"
    )
    moderator_url: str | None = None


class OccurrenceOut(BaseModel):
    meeting_id: str
    name: str
    moderator: str
    status: Literal["scheduled", "in_progress", "ended"]
    start: datetime
    end: datetime
    original_start: datetime = Field(description="Where the repeat rule puts it (names it).")
    moved: bool
    details_url: str


class ExceptionIn(_Body):
    original_start: datetime = Field(description="The occurrence, by its start from the rule.")
    skip: bool = Field(False, description="true: this occurrence does not happen.")
    start: datetime | None = Field(None, description="Its new start (moves it).")
    duration_minutes: int | None = Field(None, ge=1, le=MAX_DURATION_MINUTES)

    _times = field_validator("original_start", "start")(_check_aware)

    @model_validator(mode="after")
    def _skip_or_move(self) -> ExceptionIn:
        if self.skip == (self.start is not None):
            raise ValueError("give either skip: true, or a new start")
        if self.skip and self.duration_minutes is not None:
            raise ValueError("a skipped occurrence has no duration")
        return self


class ExceptionOut(BaseModel):
    original_start: datetime
    skipped: bool
    start: datetime | None
    duration_minutes: int | None


class RecordedEvent(BaseModel):
    at: datetime
    offset_seconds: float = Field(description="From the start of the recording.")
    kind: Literal["chat", "joined", "left"]
    user: str
    text: str = ""


class RecordingSegment(BaseModel):
    number: int = Field(description="1, 2, ...: the order of playback.")
    epoch: int
    server: str = Field(description="The room server that recorded it.")
    started_at: datetime
    ended_at: datetime | None = Field(description="None while it is still recording.")
    end_reason: str
    offset_seconds: float
    events: list[RecordedEvent]


class RecordingOut(BaseModel):
    meeting_id: str
    name: str
    complete: bool = Field(description="False while the meeting still runs.")
    duration_seconds: float
    segments: list[RecordingSegment]
    playback_url: str


class RejoinRequest(_Body):
    token: str = Field(max_length=4000, description="The join token the page was given.")


class RejoinOut(BaseModel):
    url: str = Field(description="The meeting page on the room server that hosts it now.")
    socket_url: str = Field(description="Its meeting WebSocket, with a new join token.")
    token: str


class MeetingPage(BaseModel):
    items: list[MeetingOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ServerCreate(_Body):
    name: str = Field(description="Letters, digits, '.', '_' or '-'; at most 64.")
    url: str = Field(description="http(s):// address browsers use to reach it")
    max_active_meetings: int = Field(100, ge=0)
    max_users_per_meeting: int = Field(500, ge=1)
    instant_meetings: int | None = Field(None, ge=0, description="null = unlimited")
    location: str = Field("", max_length=64)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVER_NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 64, no spaces)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


def _check_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// address")
    return value.rstrip("/")


class ServerPatch(_Body):
    url: str | None = None
    max_active_meetings: int | None = Field(None, ge=0)
    max_users_per_meeting: int | None = Field(None, ge=1)
    instant_meetings: int | None = Field(None, ge=0, description="null = unlimited")
    location: str | None = Field(None, max_length=64)
    draining: bool | None = Field(None, description="false ends a drain")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class DrainRequest(_Body):
    deadline_minutes: int | None = Field(
        None,
        ge=1,
        le=MAX_DRAIN_MINUTES,
        description=f"Default {DEFAULT_DRAIN_MINUTES}: when the meetings still running move.",
    )
    deadline_seconds: int | None = Field(
        None, ge=1, le=MAX_DRAIN_MINUTES * 60, description="The deadline in seconds instead."
    )
    evacuate: bool = Field(False, description="Move its meetings to other servers now.")

    @model_validator(mode="after")
    def _one_deadline(self) -> DrainRequest:
        if self.deadline_minutes is not None and self.deadline_seconds is not None:
            raise ValueError("give deadline_minutes or deadline_seconds, not both")
        if self.evacuate and (self.deadline_minutes or self.deadline_seconds):
            raise ValueError("evacuate moves the meetings now: give no deadline with it")
        return self

    @property
    def deadline(self) -> timedelta | None:
        """The deadline asked for, from now; None if none was given."""
        if self.deadline_seconds is not None:
            return timedelta(seconds=self.deadline_seconds)
        if self.deadline_minutes is not None:
            return timedelta(minutes=self.deadline_minutes)
        return None


class ServerOut(BaseModel):
    name: str
    url: str
    max_active_meetings: int
    max_users_per_meeting: int
    instant_meetings: int | None
    location: str
    draining: bool
    drain_deadline: datetime | None = Field(
        description="While draining: when the meetings still running there move elsewhere."
    )
    status: Literal["online", "suspect", "failed", "offline", "draining", "drained"]
    active_meetings: int
    participants: int
    logins: int
    cpu_percent: float
    memory_percent: float
    last_seen_at: datetime | None


class ServerEventOut(BaseModel):
    at: datetime
    state: str
    reason: str


class ClusterMeeting(BaseModel):
    id: str
    name: str
    server: str | None
    status: str
    epoch: int
    participants: list[str]


class ClusterServer(ServerOut):
    meetings: list[ClusterMeeting]


class ClusterOut(BaseModel):
    servers: list[ClusterServer]
    meetings: list[ClusterMeeting]


class CapacityWarningOut(BaseModel):
    id: int
    at: datetime
    kind: Literal["no_room", "meeting_too_large", "participants_over_limit"] = Field(
        description="no_room: placed over a server's limits, as no server had room; "
        "meeting_too_large: more expected participants than the server allows per meeting; "
        "participants_over_limit: a running meeting has more live participants than allowed."
    )
    meeting_id: str | None
    server: str | None
    message: str


class ServerHourOut(BaseModel):
    name: str
    booked_participants: int
    booked_meetings: int
    participants: int = Field(description="Its capacity; 0 while it takes no meetings.")
    meetings: int = Field(description="Its max active meetings; 0 while it takes no meetings.")
    over: bool = Field(description="Booked beyond its capacity in this hour.")


class HourOut(BaseModel):
    start: datetime
    booked_participants: int
    booked_meetings: int
    available_participants: int
    available_meetings: int
    over: bool = Field(description="Booked beyond what the whole cluster can carry.")
    servers: list[ServerHourOut] = Field(description="The servers with bookings this hour.")


class PlanServerOut(BaseModel):
    name: str
    status: str
    participants: int
    meetings: int
    takes_meetings: bool = Field(description="Online (or suspect) and not draining.")


class PlanWarningOut(BaseModel):
    start: datetime = Field(description="The hour the warning is about.")
    server: str | None = Field(description="None: the whole cluster.")
    message: str


class CapacityPlanOut(BaseModel):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    servers: list[PlanServerOut]
    hours: list[HourOut]
    warnings: list[PlanWarningOut]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
