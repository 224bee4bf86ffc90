"""What the media hub keeps of each meeting's streams in Janus (room/media/hub.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from moot.protocol.client import MediaFeed
from moot.room.connection import Connection
from moot.room.hosted_meeting import HostedMeeting
from moot.room.tools.moderation import state as moderation


def muted_people(meeting: HostedMeeting) -> set[str]:
    """Whom a moderator muted (the moderation tool's state): persons, as in join tokens."""
    return set(meeting.tool_state(moderation.TOOL).muted)


def many_screens(meeting: HostedMeeting) -> bool:
    """Whether a moderator let several people share a screen at once."""
    return bool(meeting.tool_state(moderation.TOOL).many_screens)


VIDEOROOM = "janus.plugin.videoroom"
MAX_PUBLISHERS = 100  # per meeting: Janus's videoroom limit for its room


@dataclass(eq=False)
class Feed:
    """One stream a page publishes."""

    id: int
    user: str
    kind: str  # camera or screen
    conn: Connection
    handle: int
    audio: bool = True
    video: bool = True
    up: bool = False  # Janus said webrtcup: subscribers may join it now (not before)
    person: str = ""  # who sends it (the join token's): a moderator's mute names them
    audio_mids: tuple[str, ...] = ()  # its audio streams in Janus (for a moderator's mute)
    silenced: bool = False  # Janus forwards none of its audio (a moderator muted them)
    recorded: str = ""  # the stem of its recording's files (a recorded meeting), else ""

    def wire(self) -> MediaFeed:
        kind = "screen" if self.kind == "screen" else "camera"
        return MediaFeed(
            feed=self.id, user=self.user, kind=kind, audio=self.audio, video=self.video
        )


@dataclass(eq=False)
class MediaRoom:
    """A meeting's Janus room."""

    number: int
    secret: str
    pin: str
    feeds: dict[int, Feed] = field(default_factory=dict)
    next_feed: int = 1
    # Every handle attached for it (publishers, subscribers): detached when it closes.
    handles: set[int] = field(default_factory=set)
    rec_dir: Path | None = None  # where Janus records it (a recorded meeting), else None


@dataclass(frozen=True, slots=True)
class MediaLoad:
    """What the heartbeat reports of the media (docs/protocol.md, `status.media`)."""

    available: bool
    reason: str
    publishers: int
    subscribers: int
    max_streams: int = 0
    enabled: bool = True  # False: audio/video turned off here on purpose (janus = "off")
    bitrate_kbps: int = 0  # what Janus receives and sends for us (janus_admin.py)
    max_bitrate_kbps: int = 0
