"""Who may send what in a meeting's audio/video: a pure function of the meeting and the role.

The room server asks it for every media request a page sends (docs/architecture.md,
"Audio, video and screen sharing"); the page only shows what the answer allows.
"""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_VIDEO = "audio_video"
SCREEN_SHARING = "screen_sharing"
MEDIA_TOOLS = (AUDIO_VIDEO, SCREEN_SHARING)


@dataclass(frozen=True, slots=True)
class MediaRights:
    camera: bool  # publish microphone and camera
    screen: bool  # publish a screen (or window)
    receive: bool  # subscribe to the others' feeds

    @property
    def any(self) -> bool:
        return self.camera or self.screen or self.receive


NONE = MediaRights(camera=False, screen=False, receive=False)


def needs_media(tools: list[str] | tuple[str, ...]) -> bool:
    """Whether a meeting with these tools uses the SFU at all."""
    return any(tool in MEDIA_TOOLS for tool in tools)


def media_rights(
    meeting_type: str, tools: list[str] | tuple[str, ...], standing: str
) -> MediaRights:
    """What a person of `standing` (moderator, presenter, participant) may do.

    - A collaboration meeting: everyone sends microphone and camera; moderators and
      presenters share a screen.
    - A broadcast meeting: moderators and presenters send; everyone else is a viewer, who
      only receives.
    - A tool the meeting does not have is nobody's (no camera without `audio_video`, no
      screen without `screen_sharing`); receiving needs either.
    """
    if not needs_media(tools):
        return NONE
    presents = standing in ("moderator", "presenter")
    sends = presents or meeting_type != "broadcast"
    return MediaRights(
        camera=sends and AUDIO_VIDEO in tools,
        screen=presents and SCREEN_SHARING in tools,
        receive=True,
    )
