"""Meetings as the services take and give them: the bodies of REST API v1 (so the OpenAPI
document) and what the services and the store check a meeting against."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from pydantic import BaseModel, Field, field_validator, model_validator

from moot.ems.model import Body

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


class MeetingCreate(Body):
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


class MeetingPatch(Body):
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


class ExceptionIn(Body):
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
    kind: str = Field(
        description="`chat`, `joined`, `left`, or a meeting tool's name (`board`, `poll`,"
        " `hand`, `moderation`, and any tool added later): its event is in `event`."
    )
    user: str = Field(description="Who; empty for a vote in an anonymous poll.")
    text: str = Field(
        default="",
        description="A chat line; for a tool event, the transcript's sentence (empty for a"
        " stroke or a vote, which the board and the polls show instead).",
    )
    event: dict[str, Any] | None = Field(
        default=None,
        description="A tool event as journaled (docs/protocol.md, Tools), less what the live"
        " meeting kept from its viewers: votes' choices, person ids.",
    )
    actor: str = Field(
        default="", description="A stand-in for the sender (p1, p2, ...): undo is per person."
    )
    role: str = Field(default="", description="The sender's role, for a tool event.")


class RecordedMediaOut(BaseModel):
    """One person's audio, video or screen, as the segment's room server recorded it."""

    id: int
    user: str
    kind: Literal["camera", "screen"]
    track: Literal["audio", "video"]
    content_type: str = Field(description="audio/ogg (Opus) or video/webm (VP8).")
    offset_seconds: float = Field(description="Where in the recording it starts.")
    size: int
    url: str = Field(description="Its bytes (the recording page plays it from there).")


class RecordingSegment(BaseModel):
    number: int = Field(description="1, 2, ...: the order of playback.")
    epoch: int
    server: str = Field(description="The room server that recorded it.")
    started_at: datetime
    ended_at: datetime | None = Field(description="None while it is still recording.")
    end_reason: str
    offset_seconds: float
    events: list[RecordedEvent]
    media: list[RecordedMediaOut] = Field(
        default=[], description="Its audio, video and screen files (Janus's recording)."
    )


class RecordingOut(BaseModel):
    meeting_id: str
    name: str
    complete: bool = Field(description="False while the meeting still runs.")
    duration_seconds: float
    segments: list[RecordingSegment]
    playback_url: str


class RejoinRequest(Body):
    token: str = Field(max_length=4000, description="The join token the page was given.")


class RejoinOut(BaseModel):
    url: str = Field(description="The meeting page on the room server that hosts it now.")
    socket_url: str = Field(description="Its meeting WebSocket, with a new join token.")
    token: str


class MeetingPage(BaseModel):
    items: list[MeetingOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
