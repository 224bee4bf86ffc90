"""What each service needs of the cluster, one Protocol per service.

Services take these, not `ClusterManager`: each says in its signature which part of the
cluster it drives, and a test builds it with an object that has only that part. The
cluster manager has all of them (the container hands it to each); mypy checks that it does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from moot.core.placement import Placement
from moot.ems.cluster.events import ClusterEvents
from moot.ems.cluster.registry import LiveServer, Registry
from moot.ems.store.models import MeetingRow


class Servers(Protocol):
    """The live room servers, as the registry knows them now, and what happens to them."""

    @property
    def registry(self) -> Registry: ...

    @property
    def events(self) -> ClusterEvents: ...


class Answering(Servers, Protocol):
    """Which servers answer now: where attend may send people (MeetingEntry)."""

    def answering(self, server: LiveServer) -> bool: ...


class Notifying(Servers, Protocol):
    """Notices to the pages of one meeting, or of a whole server (broadcasts)."""

    async def notify(
        self,
        server_name: str,
        meeting_id: str | None,
        text: str,
        *,
        to: str = "moderators",
        broadcast_id: int | None = None,
        expires_at: datetime | None = None,
        withdrawn: bool = False,
    ) -> None: ...


class Hosting(Answering, Notifying, Protocol):
    """A meeting's placement and life on the servers (the meetings service)."""

    def book(self, meeting: MeetingRow, now: datetime) -> Placement | None: ...

    def unbook(self, meeting_id: str) -> None: ...

    def resize(self, server_name: str, meeting_id: str, expected: int) -> None: ...

    async def open_meeting(self, meeting: MeetingRow) -> tuple[LiveServer, int]: ...

    async def close_meeting(self, meeting_id: str, server_name: str, reason: str) -> None: ...

    def participants_in(self, server_name: str, meeting_id: str) -> int: ...

    def recording_allowed(self, server_name: str) -> bool: ...


class ServerControl(Servers, Protocol):
    """An administrator's hand on a server: drain, evacuate, remove (ServerService)."""

    def set_drain_deadline(self, name: str, deadline: datetime | None) -> None: ...

    async def evacuate(self, name: str, why: str = "evacuated") -> int: ...

    async def rebook_from(self, server_name: str) -> int: ...

    async def disconnect(self, name: str, reason: str) -> None: ...


class ConfigPush(Servers, Protocol):
    """The cluster configuration sent to each server (ConfigService)."""

    async def apply_config(
        self, server: LiveServer, version: int, values: dict[str, Any]
    ) -> None: ...


class FilesPush(Protocol):
    """A running meeting's pages are told its files changed (FileService)."""

    def files_changed(self, meeting_id: str) -> None: ...
