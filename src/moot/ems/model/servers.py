"""Room servers and the cluster view as the services take and give them (REST API v1 bodies)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from moot.ems.model import Body

DEFAULT_DRAIN_MINUTES = 4 * 60
MAX_DRAIN_MINUTES = 7 * 24 * 60
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ServerCreate(Body):
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


class ServerPatch(Body):
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


class DrainRequest(Body):
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


class ServerMedia(BaseModel):
    """A room server's audio/video, as its last report said."""

    available: bool = Field(description="Its media server (Janus) works.")
    reason: str = Field("", description="Why not, when it does not.")
    publishers: int = Field(description="Streams sent into it now.")
    subscribers: int = Field(description="Streams it forwards now.")
    max_streams: int = Field(0, description="Its limit of streams; 0: none.")
    bitrate_kbps: int = Field(0, description="kbit/s its Janus receives and sends now.")
    max_bitrate_kbps: int = Field(0, description="Its bitrate limit in kbit/s; 0: none.")


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
    media: ServerMedia | None = Field(
        None, description="Its audio/video; null until it reports (or if it has none)."
    )


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
