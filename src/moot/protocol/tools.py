"""Meeting tool events: what a page asks a tool to do, as journaled and replayed.

A page sends `{"type": "tool", "id": ..., "event": {...}}`; `event.kind` names the tool
and the action (`poll.create`). The room server checks it against the tool's state and
the sender's role, journals it (the journal row's `kind` is the tool, its body a
`ToolRecord`), then applies it and sends every page the tool's new view. Fields marked
"set by the room server" are filled in before the event is journaled, whatever the page
sent: the record is then self-contained (the EMS reads poll results from it, a replay
needs no roster).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

# Limits (docs/protocol.md, "Tools"): a page that asks for more gets a clear error.
MAX_POLL_OPTIONS = 10
MIN_POLL_OPTIONS = 2
MAX_QUESTION_LENGTH = 300
MAX_OPTION_LENGTH = 200
MAX_POLLS = 50
MAX_NAME_LENGTH = 200
REACTIONS = ("👍", "👏", "😂", "😮", "❤️", "🎉")
# The whiteboard: a page is BOARD_WIDTH x BOARD_HEIGHT units, whatever the screen.
BOARD_WIDTH = 1600
BOARD_HEIGHT = 900
MAX_BOARD_PAGES = 20
MAX_BOARD_ELEMENTS = 5000  # a page
MAX_POINTS = 2000  # a stroke
MAX_BOARD_TEXT = 500
MAX_STROKE_WIDTH = 40
MAX_ERASE = 200
# Presentations: a PDF of the meeting's files, shown page by page.
MAX_SLIDE_PAGES = 2000
# Send web page: an http or https address of at most this many characters.
MAX_URL_LENGTH = 2000
WEB_SCHEMES = ("http", "https")

_Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def tool(self) -> str:
        kind: str = getattr(self, "kind")  # noqa: B009 - every event has one
        return kind.split(".", 1)[0]


def _stripped(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


# Polls ---------------------------------------------------------------------


class PollCreate(_Event):
    """Open a poll (moderator)."""

    kind: Literal["poll.create"] = "poll.create"
    poll_id: _Id
    question: str = Field(min_length=1, max_length=MAX_QUESTION_LENGTH)
    options: list[Annotated[str, Field(min_length=1, max_length=MAX_OPTION_LENGTH)]] = Field(
        min_length=MIN_POLL_OPTIONS, max_length=MAX_POLL_OPTIONS
    )
    multiple: bool = False
    anonymous: bool = True

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        return _stripped(value)

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[str]) -> list[str]:
        options = [_stripped(o) for o in value]
        if len({o.casefold() for o in options}) != len(options):
            raise ValueError("two options of a poll are the same")
        return options


class PollVote(_Event):
    """Vote, or change one's vote, while the poll is open (anyone). Choices are indexes."""

    kind: Literal["poll.vote"] = "poll.vote"
    poll_id: _Id
    choices: list[Annotated[int, Field(ge=0, lt=MAX_POLL_OPTIONS)]] = Field(
        min_length=1, max_length=MAX_POLL_OPTIONS
    )


class PollClose(_Event):
    """Close a poll (moderator): no more votes; its results are shown to everyone."""

    kind: Literal["poll.close"] = "poll.close"
    poll_id: _Id
    # Set by the room server: the final count per option, and (a named poll only) who
    # chose what, so the EMS keeps the results with the meeting without a replay.
    results: list[int] = []
    ballots: dict[str, list[int]] = {}


# Hands ---------------------------------------------------------------------


class HandRaise(_Event):
    kind: Literal["hand.raise"] = "hand.raise"


class HandLower(_Event):
    """Lower one's own hand, or (moderator) someone else's, by name."""

    kind: Literal["hand.lower"] = "hand.lower"
    user: _Name | None = None


class HandsLowerAll(_Event):
    kind: Literal["hand.lower_all"] = "hand.lower_all"


# Moderator controls ----------------------------------------------------------


class Lock(_Event):
    """No new participants from now on (moderators still enter)."""

    kind: Literal["moderation.lock"] = "moderation.lock"
    # Set by the room server: who was in the meeting when it was locked (they may come back).
    present: list[str] = []


class Unlock(_Event):
    kind: Literal["moderation.unlock"] = "moderation.unlock"


class Remove(_Event):
    """Take someone out of the meeting; they may not come back unless readmitted."""

    kind: Literal["moderation.remove"] = "moderation.remove"
    user: _Name
    # Set by the room server: the person behind the name (the join token's `person`).
    person: str = ""


class Readmit(_Event):
    """Let someone removed come back (by the name they had)."""

    kind: Literal["moderation.readmit"] = "moderation.readmit"
    user: _Name


class Grant(_Event):
    """Make someone in the meeting presenter or moderator (for this occurrence)."""

    kind: Literal["moderation.grant"] = "moderation.grant"
    user: _Name
    role: Literal["presenter", "moderator"]
    # Set by the room server: the person behind the name.
    person: str = ""


class TakeBack(_Event):
    """Take back a role a moderator granted (the meeting's own moderators keep theirs)."""

    kind: Literal["moderation.take_back"] = "moderation.take_back"
    user: _Name
    # Set by the room server: the person the role was granted to.
    person: str = ""


class Mute(_Event):
    """Mute someone's microphone (the media tools enforce it; the state is kept now)."""

    kind: Literal["moderation.mute"] = "moderation.mute"
    user: _Name
    # Set by the room server: the person behind the name.
    person: str = ""


class MuteAll(_Event):
    """Mute everyone in the meeting but its moderators."""

    kind: Literal["moderation.mute_all"] = "moderation.mute_all"
    # Set by the room server: who is muted by it (person -> name).
    people: dict[str, str] = {}


class Unmute(_Event):
    """Unmute oneself: only the person muted may (a moderator mutes, never unmutes)."""

    kind: Literal["moderation.unmute"] = "moderation.unmute"


class ScreenShares(_Event):
    """Let several people share a screen at once (`many`), or one at a time (the default;
    screens already shared stay until they stop)."""

    kind: Literal["moderation.screens"] = "moderation.screens"
    many: bool


class NewOccurrence(_Event):
    """Journaled by the EMS, never by a page, when an occurrence of a repeating meeting is
    over: the next starts unlocked, nobody removed, muted or granted a role."""

    kind: Literal["moderation.new_occurrence"] = "moderation.new_occurrence"


# Whiteboard -----------------------------------------------------------------

# A slide of a presentation, for annotations drawn over it: "<file id>:<page>" (0 the first).
SlideKey = Annotated[str, Field(pattern=r"^[0-9]{1,10}:[0-9]{1,4}$")]
_X = Annotated[float, Field(ge=0, le=BOARD_WIDTH, allow_inf_nan=False)]
_Y = Annotated[float, Field(ge=0, le=BOARD_HEIGHT, allow_inf_nan=False)]
Shape = Literal["pen", "line", "rect", "ellipse", "arrow", "text"]
# Points each shape takes: a pen any number, a text where it starts, the others two corners.
_SHAPE_POINTS = {"line": 2, "rect": 2, "ellipse": 2, "arrow": 2, "text": 1}


class BoardElement(_Event):
    """One thing on a whiteboard page: a pen stroke, a shape or a text."""

    id: _Id
    shape: Shape
    points: list[tuple[_X, _Y]] = Field(min_length=1, max_length=MAX_POINTS)
    color: str = Field(default="#1d2433", pattern=r"^#[0-9a-fA-F]{6}$")
    width: int = Field(default=4, ge=1, le=MAX_STROKE_WIDTH)
    text: str = Field(default="", max_length=MAX_BOARD_TEXT)

    @model_validator(mode="after")
    def _fits_its_shape(self) -> BoardElement:
        wanted = _SHAPE_POINTS.get(self.shape)
        if wanted is not None and len(self.points) != wanted:
            raise ValueError(f"a {self.shape} takes {wanted} point(s)")
        if (self.shape == "text") != bool(self.text.strip()):
            raise ValueError("a text has text, and only a text")
        return self


class BoardAdd(_Event):
    """A finished stroke, shape or text (while drawn it is only streamed: `draw`)."""

    kind: Literal["board.add"] = "board.add"
    page: int = Field(ge=0, lt=MAX_BOARD_PAGES)
    element: BoardElement
    # Drawn over this slide of a presentation (then `page` is not used), not on a page.
    slide: SlideKey | None = None


class BoardErase(_Event):
    kind: Literal["board.erase"] = "board.erase"
    ids: list[_Id] = Field(min_length=1, max_length=MAX_ERASE)


class BoardUndo(_Event):
    """Undo one's own last action on the board (others' work is never undone)."""

    kind: Literal["board.undo"] = "board.undo"


class BoardRedo(_Event):
    kind: Literal["board.redo"] = "board.redo"


class BoardClear(_Event):
    """Clear a page, or a slide's annotations (moderator)."""

    kind: Literal["board.clear"] = "board.clear"
    page: int = Field(ge=0, lt=MAX_BOARD_PAGES)
    slide: SlideKey | None = None  # the annotations of this slide, not the page


class BoardAddPage(_Event):
    """A new, empty page at the end, shown to everyone (moderator)."""

    kind: Literal["board.add_page"] = "board.add_page"


class BoardShowPage(_Event):
    """Everyone's board follows to this page (moderator)."""

    kind: Literal["board.show_page"] = "board.show_page"
    page: int = Field(ge=0, lt=MAX_BOARD_PAGES)


class BoardPolicy(_Event):
    """Who may draw (moderator): everyone, or moderators only."""

    kind: Literal["board.policy"] = "board.policy"
    who: Literal["everyone", "moderators"]


# Presentations (the whiteboard's) ---------------------------------------------


class SlidesOpen(_Event):
    """Show a PDF of the meeting's files to everyone, at its first page (presenter). The
    presenter's page reads the PDF first and says how many pages it has."""

    kind: Literal["slides.open"] = "slides.open"
    file_id: int = Field(ge=1, le=2**31 - 1)
    pages: int = Field(ge=1, le=MAX_SLIDE_PAGES)
    # Set by the room server: the file's name, from the meeting's files.
    name: str = ""


class SlidesPage(_Event):
    """Everyone follows the presenter to this page (0 is the first)."""

    kind: Literal["slides.page"] = "slides.page"
    page: int = Field(ge=0, lt=MAX_SLIDE_PAGES)


class SlidesClose(_Event):
    kind: Literal["slides.close"] = "slides.close"


# Send web page -----------------------------------------------------------------


class WebShare(_Event):
    """Show a web page on everyone's stage (presenter): in a frame if the site allows it."""

    kind: Literal["web.share"] = "web.share"
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    # Set by the room server, which asked the site (room/tools/web/framing.py): whether it
    # lets other sites frame it, and if not, why, in a sentence.
    frameable: bool = False
    reason: str = Field(default="", max_length=300)

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        return web_address(value)


class WebClose(_Event):
    kind: Literal["web.close"] = "web.close"


def web_address(value: str) -> str:
    """An http or https address with a host, stripped; ValueError with a sentence if not."""
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in WEB_SCHEMES:
        raise ValueError("only http:// and https:// addresses can be sent as a web page")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    if not host or any(c.isspace() for c in value):
        raise ValueError("this is not a web address (http://host/...)")
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"a web address is at most {MAX_URL_LENGTH} characters")
    return value


ToolEvent = Annotated[
    PollCreate
    | PollVote
    | PollClose
    | HandRaise
    | HandLower
    | HandsLowerAll
    | Lock
    | Unlock
    | Remove
    | Readmit
    | Grant
    | TakeBack
    | Mute
    | MuteAll
    | Unmute
    | ScreenShares
    | NewOccurrence
    | BoardAdd
    | BoardErase
    | BoardUndo
    | BoardRedo
    | BoardClear
    | BoardAddPage
    | BoardShowPage
    | BoardPolicy
    | SlidesOpen
    | SlidesPage
    | SlidesClose
    | WebShare
    | WebClose,
    Field(discriminator="kind"),
]
tool_event: TypeAdapter[ToolEvent] = TypeAdapter(ToolEvent)


class ToolRecord(BaseModel):
    """A tool event as the journal keeps it (the row's body): the event and who sent it.

    `person` and `role` are the sender's at the time (from their join token): a replay
    decides exactly as the live meeting did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: ToolEvent
    person: str
    role: Literal["moderator", "participant"]


def record_of(body: dict[str, Any]) -> ToolRecord:
    return ToolRecord.model_validate(body)
