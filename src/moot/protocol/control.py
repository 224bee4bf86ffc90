"""Control channel messages between a room server and the EMS.

Every message is a JSON envelope `{"type": "...", ...}`. Room servers send
status up; the EMS sends commands down. Commands carry a `request_id`, and
the room server answers each with `command_result` naming it, so the EMS can
wait for an outcome without a second channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerLimits(_Message):
    max_active_meetings: int = Field(ge=0)
    max_users_per_meeting: int = Field(ge=1)
    instant_meetings: int | None = Field(default=None, ge=0)
    location: str = ""


class Participant(_Message):
    user: str
    role: Literal["moderator", "participant"]


class MeetingStatus(_Message):
    meeting_id: str
    epoch: int
    participants: list[Participant]
    tools: list[str] = []


# Room server -> EMS ------------------------------------------------------


class Register(_Message):
    """First message on a new connection: who the room server is."""

    type: Literal["register"] = "register"
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    url: str
    protocol_version: str
    secret: str
    limits: ServerLimits
    meetings: list[MeetingStatus] = []


class MediaReport(_Message):
    """The room server's audio/video: whether its SFU (Janus) works, and its load."""

    available: bool
    reason: str = ""
    publishers: int = Field(0, ge=0)
    subscribers: int = Field(0, ge=0)
    # The most streams (publishers + subscribers) it takes; 0 = no limit. At it, the EMS
    # places new meetings with audio/video elsewhere while any other server has room.
    max_streams: int = Field(0, ge=0)
    # Bits per second its Janus receives and sends for the meetings here (kbit/s, the last
    # few seconds), and the most it takes (its max_media_bitrate_mbps in kbit/s); 0 = none.
    bitrate_kbps: int = Field(0, ge=0)
    max_bitrate_kbps: int = Field(0, ge=0)

    @property
    def load(self) -> float:
        """Its media load: the higher share of its limits in use (0 without limits)."""
        streams = (self.publishers + self.subscribers) / self.max_streams if self.max_streams else 0
        bits = self.bitrate_kbps / self.max_bitrate_kbps if self.max_bitrate_kbps else 0
        return max(float(streams), float(bits))

    @property
    def full(self) -> bool:
        """At its stream limit or above its bitrate limit: no new meetings with media."""
        return self.load >= 1.0

    @property
    def usable(self) -> bool:
        """Whether it can take another meeting's audio and video."""
        return self.available and not self.full


class Status(_Message):
    """The periodic report: every heartbeat interval."""

    type: Literal["status"] = "status"
    seq: int
    meetings: list[MeetingStatus]
    logins: int
    cpu_percent: float
    memory_percent: float
    # None: a room server older than audio/video (it has none).
    media: MediaReport | None = None
    # Community services: whether this server offers them now, its connected clients, and
    # sign-ins and messages since its previous report (for reports; never the text).
    community_offered: bool = False
    community_connections: int = Field(default=0, ge=0)
    community_signins: int = Field(default=0, ge=0)
    community_messages: int = Field(default=0, ge=0)


class ParticipantJoined(_Message):
    type: Literal["participant_joined"] = "participant_joined"
    meeting_id: str
    epoch: int
    user: str
    role: Literal["moderator", "participant"]
    at: datetime


class ParticipantLeft(_Message):
    type: Literal["participant_left"] = "participant_left"
    meeting_id: str
    epoch: int
    user: str
    at: datetime


class MeetingEnded(_Message):
    """The room server ended a meeting (its moderator did, or the EMS asked)."""

    type: Literal["meeting_ended"] = "meeting_ended"
    meeting_id: str
    epoch: int
    ended_by: str
    at: datetime


class CommandResult(_Message):
    type: Literal["command_result"] = "command_result"
    request_id: str
    ok: bool
    error: str = ""


class ShuttingDown(_Message):
    type: Literal["shutting_down"] = "shutting_down"


# EMS -> room server ------------------------------------------------------


class Registered(_Message):
    """The EMS accepted the room server; limits are the cluster's word."""

    type: Literal["registered"] = "registered"
    heartbeat_interval: float
    join_token_public_key: str
    limits: ServerLimits


class Refused(_Message):
    """The EMS will not take this room server; the connection then closes."""

    type: Literal["refused"] = "refused"
    reason: str


class JournalEntry(_Message):
    """One stored meeting event, as the journal keeps it."""

    event_id: str = Field(min_length=1, max_length=64)
    sender: str
    # "chat" (body: {"text": ...}), or a meeting tool ("poll", "hand", "moderation"; body:
    # a protocol.tools.ToolRecord).
    kind: str = Field(pattern=r"^[a-z_]{1,32}$")
    body: dict[str, Any]
    at: datetime


class JournalAppend(_Message):
    """Store this event durably; the room server acknowledges it to its sender only after."""

    type: Literal["journal_append"] = "journal_append"
    meeting_id: str
    epoch: int
    entry: JournalEntry


class JournalAck(_Message):
    """The event is stored (ok), or refused (a fenced epoch, an unknown meeting)."""

    type: Literal["journal_ack"] = "journal_ack"
    meeting_id: str
    sender: str
    event_id: str
    ok: bool
    error: str = ""


class RecordedMedia(_Message):
    """A part of one media file a room server recorded (Janus, post-processed): the
    meeting's audio, video or screen at one epoch. A file goes up in parts, in order; the
    EMS stores it whole once the `last` part is in and answers with a recorded_media_ack.
    """

    type: Literal["recorded_media"] = "recorded_media"
    meeting_id: str
    epoch: int
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,200}$", description="Unique per segment.")
    user: str = Field(max_length=200, description="Whose stream it is (the display name).")
    kind: Literal["camera", "screen"]
    track: Literal["audio", "video"]
    content_type: Literal["audio/ogg", "video/webm"]
    started_at: datetime = Field(description="When its first packet was recorded.")
    part: int = Field(ge=0)
    last: bool
    data: str = Field(description="The part's bytes, base64.")


class RecordedMediaAck(_Message):
    """The file named is stored (ok), or refused for good (the meeting is gone, the room
    server did not host it at that epoch): either way the room server may delete it."""

    type: Literal["recorded_media_ack"] = "recorded_media_ack"
    name: str
    ok: bool
    error: str = ""


class MeetingFile(_Message):
    """A file attached to the meeting, as its pages list it; `url` downloads it from the EMS
    and carries a capability the EMS signed for this meeting (no second sign-in)."""

    id: int
    name: str
    size: int = Field(ge=0)
    content_type: str
    url: str


class OpenMeeting(_Message):
    type: Literal["open_meeting"] = "open_meeting"
    request_id: str
    meeting_id: str
    epoch: int
    name: str
    moderator: str
    tools: list[str] = []
    # Broadcast: only moderators and presenters send audio/video; the others watch.
    meeting_type: Literal["collaboration", "broadcast"] = "collaboration"
    # Recorded: the page says so; the journal at this epoch is the recording's segment.
    record: bool = False
    history: list[JournalEntry] = Field(
        default=[], description="The meeting's journal so far: it is rebuilt from it."
    )
    files: list[MeetingFile] = Field(default=[], description="Its attached files.")


class MeetingFiles(_Message):
    """The meeting's files changed while it runs: the whole list, as it is now."""

    type: Literal["meeting_files"] = "meeting_files"
    request_id: str
    meeting_id: str
    epoch: int
    files: list[MeetingFile]


class CloseMeeting(_Message):
    type: Literal["close_meeting"] = "close_meeting"
    request_id: str
    meeting_id: str
    reason: str
    moved: bool = Field(
        default=False, description="The meeting runs on elsewhere: clients should rejoin."
    )


class Notice(_Message):
    """Show a message in open meeting pages: one meeting's, or every meeting's here."""

    type: Literal["notice"] = "notice"
    request_id: str
    meeting_id: str | None = Field(None, description="None: every meeting on this server.")
    text: str = Field(min_length=1, max_length=2000)
    to: Literal["moderators", "everyone"] = "everyone"
    # A message to all users (the administrators'): kept for pages opened later, until
    # `expires_at`; one whose `expires_at` has passed is taken away (withdrawn or expired).
    broadcast_id: int | None = None
    expires_at: datetime | None = None
    # The message was withdrawn: taken away now, whatever the page's clock says of
    # `expires_at` (the EMS's time of withdrawal).
    withdrawn: bool = False


class ApplyConfig(_Message):
    """The room server's effective cluster configuration (moot.core.configuration): apply it now.

    `values` is a plain mapping, not a closed model, so a room server older than the EMS
    ignores keys it does not know instead of refusing the whole configuration.
    """

    type: Literal["apply_config"] = "apply_config"
    request_id: str
    version: int = Field(ge=0, description="The newest version of the scopes it comes from.")
    values: dict[str, Any]


UpMessage = Annotated[
    Register
    | Status
    | ParticipantJoined
    | ParticipantLeft
    | JournalAppend
    | MeetingEnded
    | CommandResult
    | ShuttingDown
    | RecordedMedia,
    Field(discriminator="type"),
]
DownMessage = Annotated[
    Registered
    | Refused
    | OpenMeeting
    | CloseMeeting
    | Notice
    | JournalAck
    | ApplyConfig
    | MeetingFiles
    | RecordedMediaAck,
    Field(discriminator="type"),
]
ControlMessage = UpMessage | DownMessage

_up: TypeAdapter[UpMessage] = TypeAdapter(UpMessage)
_down: TypeAdapter[DownMessage] = TypeAdapter(DownMessage)


def parse_up(data: str | bytes) -> UpMessage:
    """Decode a message a room server sent; pydantic.ValidationError if malformed."""
    return _up.validate_json(data)


def parse_down(data: str | bytes) -> DownMessage:
    """Decode a message the EMS sent; pydantic.ValidationError if malformed."""
    return _down.validate_json(data)


def encode(message: _Message) -> str:
    return message.model_dump_json()
