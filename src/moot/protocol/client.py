"""Meeting WebSocket messages between a browser and its room server."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from moot.protocol.control import MeetingFile, Participant
from moot.protocol.tools import (
    BOARD_HEIGHT,
    BOARD_WIDTH,
    MAX_BOARD_PAGES,
    REACTIONS,
    BoardElement,
    SlideKey,
    ToolEvent,
)

MAX_CHAT_LENGTH = 2000


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Browser -> room server --------------------------------------------------


class SendChat(_Message):
    type: Literal["chat"] = "chat"
    id: str = Field(min_length=1, max_length=64, description="The sender's own event id.")
    text: str = Field(min_length=1, max_length=MAX_CHAT_LENGTH)


class SendTool(_Message):
    """Ask a meeting tool to act (docs/protocol.md, "Tools"): journaled like a chat line,
    acknowledged with `ack`, or refused with `error` carrying this id."""

    type: Literal["tool"] = "tool"
    id: str = Field(min_length=1, max_length=64, description="The sender's own event id.")
    event: ToolEvent


class React(_Message):
    """A reaction: shown briefly to everyone and counted, not journaled."""

    type: Literal["react"] = "react"
    emoji: str = Field(max_length=8)

    @field_validator("emoji")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in REACTIONS:
            raise ValueError(f"unknown reaction; the reactions are {' '.join(REACTIONS)}")
        return value


class Draw(_Message):
    """A whiteboard element while it is drawn: shown live to the others, not journaled
    (the finished one comes as the tool event `board.add`)."""

    type: Literal["draw"] = "draw"
    page: int = Field(ge=0, lt=MAX_BOARD_PAGES)
    element: BoardElement
    slide: SlideKey | None = None  # drawn over this slide of a presentation


class Pointer(_Message):
    """The laser pointer: a dot the others see for a moment, not journaled."""

    type: Literal["pointer"] = "pointer"
    page: int = Field(ge=0, lt=MAX_BOARD_PAGES)
    x: float = Field(ge=0, le=BOARD_WIDTH, allow_inf_nan=False)
    y: float = Field(ge=0, le=BOARD_HEIGHT, allow_inf_nan=False)
    slide: SlideKey | None = None


class EndMeeting(_Message):
    type: Literal["end_meeting"] = "end_meeting"


MAX_SDP = 64 * 1024


class Jsep(_Message):
    """A WebRTC session description, as RTCPeerConnection gives it (no trickle: the page
    sends it once its ICE candidates are gathered)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["offer", "answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class IceCandidate(_Message):
    """One ICE candidate of the page's (RTCIceCandidate's fields), sent as it is found."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    candidate: str = Field(max_length=1000)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)


class MediaRequest(_Message):
    """Audio, video and screen sharing, signalled through the room server
    (docs/protocol.md, "Media"); the room server checks each against the sender's role.

    - `publish` (kind, jsep offer, audio, video): send camera/microphone or a screen;
    - `unpublish` (kind): stop sending it;
    - `state` (audio, video): microphone/camera on or off, shown to the others;
    - `subscribe` (feed): receive one feed; the answer is an `offer` to answer with
    - `start` (feed, jsep answer); `unsubscribe` (feed);
    - `candidate` (kind or feed, candidate): one of the page's ICE candidates for that
      stream, or none (`candidate` null): it has found them all (trickle ICE).
    """

    type: Literal["media"] = "media"
    action: Literal[
        "publish", "unpublish", "state", "subscribe", "start", "unsubscribe", "candidate"
    ]
    kind: Literal["camera", "screen"] = "camera"
    feed: int | None = Field(default=None, ge=1, le=2**53)
    jsep: Jsep | None = None
    candidate: IceCandidate | None = None
    audio: bool = True
    video: bool = True


class Ping(_Message):
    """The page's keep-alive: a hung room server closes nothing, so the page asks."""

    type: Literal["ping"] = "ping"


ClientMessage = Annotated[
    SendChat | SendTool | React | Draw | Pointer | EndMeeting | MediaRequest | Ping,
    Field(discriminator="type"),
]
_client: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


def parse_client(data: str | bytes) -> ClientMessage:
    return _client.validate_json(data)


# Room server -> browser --------------------------------------------------


class ChatLine(_Message):
    type: Literal["chat"] = "chat"
    id: str
    sender: str
    text: str
    at: datetime


class Welcome(_Message):
    type: Literal["welcome"] = "welcome"
    meeting_id: str
    meeting_name: str
    you: Participant
    roster: list[Participant]
    history: list[ChatLine]
    files: list[MeetingFile] = []


class Files(_Message):
    """The meeting's attached files changed: the whole list, as it is now."""

    type: Literal["files"] = "files"
    files: list[MeetingFile]


class Joined(_Message):
    """A user's first connection to the meeting opened: add them to the roster."""

    type: Literal["joined"] = "joined"
    user: str
    role: Literal["moderator", "participant"]


class Left(_Message):
    """A user's last connection to the meeting closed: take them off the roster."""

    type: Literal["left"] = "left"
    user: str


class Roster(_Message):
    """Deprecated (removed in protocol 2): the whole roster, for a client that did not ask
    for `joined` / `left` (`roster=changes` on the WebSocket's address)."""

    type: Literal["roster"] = "roster"
    roster: list[Participant]


class Ack(_Message):
    """The event with this id is stored; the sender need not resend it."""

    type: Literal["ack"] = "ack"
    id: str


class Pong(_Message):
    """The answer to `ping`."""

    type: Literal["pong"] = "pong"


class Ended(_Message):
    type: Literal["ended"] = "ended"
    reason: str


class Moved(_Message):
    """The meeting now runs on another room server: rejoin through the EMS."""

    type: Literal["moved"] = "moved"


class Notice(_Message):
    """A message for the people in the meeting: from its schedule or an administrator."""

    type: Literal["notice"] = "notice"
    text: str
    # Set on a message to all users from the administrators: the page shows it as theirs,
    # remembers a dismissal by this id, and takes it away at `expires_at`.
    broadcast_id: int | None = None
    expires_at: datetime | None = None
    # Withdrawn by the administrators: the page takes it away now (not by its clock).
    withdrawn: bool = False


class ToolState(_Message):
    """A tool's state as this page may see it, after a change (and once after `welcome`).

    `announce`, when set, is a short sentence for screen readers ("Ada raised a hand")."""

    type: Literal["tool_state"] = "tool_state"
    tool: str
    state: dict[str, Any]
    announce: str = ""


class ToolDelta(_Message):
    """A change to a tool whose whole state is large (the whiteboard): what changed,
    after `tool_state` gave the whole of it."""

    type: Literal["tool_delta"] = "tool_delta"
    tool: str
    delta: dict[str, Any]
    announce: str = ""


class Drawing(_Message):
    """Someone's element while drawn (`draw`), or their pointer (`pointer`: element null)."""

    type: Literal["drawing"] = "drawing"
    user: str
    page: int
    element: BoardElement | None = None
    x: float | None = None
    y: float | None = None
    slide: str | None = None


class Reaction(_Message):
    """Someone reacted; `counts` is how often each reaction was sent in this meeting."""

    type: Literal["reaction"] = "reaction"
    user: str
    emoji: str
    counts: dict[str, int]


class MediaFeed(_Message):
    """One stream someone sends in the meeting, through this room server's Janus."""

    feed: int
    user: str
    kind: Literal["camera", "screen"]
    audio: bool
    video: bool


class MediaState(_Message):
    """Audio/video in this meeting as this page may use it: sent after `welcome` and
    whenever it changes. `available` false: no SFU on this room server now (`reason`
    says why); `rights`: what this page may send (camera, screen) and receive."""

    type: Literal["media_state"] = "media_state"
    available: bool
    reason: str = ""
    rights: dict[str, bool]
    feeds: list[MediaFeed]
    ice_servers: list[dict[str, Any]] = []


class MediaSignal(_Message):
    """The SFU's side of a negotiation: `answer` to a publish (kind), `offer` for a
    subscription (feed); or `refused` / `failed` with `message`."""

    type: Literal["media_signal"] = "media_signal"
    action: Literal["answer", "offer", "refused", "failed", "stopped"]
    kind: Literal["camera", "screen"] = "camera"
    feed: int | None = None
    jsep: dict[str, Any] | None = None
    message: str = ""


class Error(_Message):
    type: Literal["error"] = "error"
    message: str
    # The event refused, when one was (a chat line longer than the configured limit): the
    # page drops it instead of sending it again.
    id: str | None = None
