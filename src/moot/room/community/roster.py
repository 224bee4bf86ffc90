"""Presence beside the names of a meeting's roster (the meeting page, room/static/meeting.js).

A signed-in attendee is a person of the community (moot.core.community.attendee_pid); the
hub knows the whole cluster's presence, so the meeting's own room server tells each page
of the meeting, in its meeting socket, the presence of the people in its roster: at once
when the page joins, then at every change. A page sees the presence of the people of its
reader's own partition only (as a contact list does); a guest's page sees none, and a
guest has none. Nothing is sent while presence is switched off.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping

from moot.core.community import Presence, State, attendee_pid, partition_of
from moot.room.community.hub import CommunityHub
from moot.room.connection import Connection
from moot.room.hosted_meeting import HostedMeeting


def _message(name: str, presence: Presence) -> str:
    return json.dumps({"type": "presence", "user": name, **presence.to_json()})


def _reader_partition(conn: Connection) -> str | None:
    pid = attendee_pid(conn.person, conn.user)
    return None if pid is None else partition_of(pid)


class RosterPresence:
    """The meetings' rosters of this room server, kept told of their people's presence."""

    def __init__(
        self, hub: CommunityHub, meetings: Callable[[], Mapping[str, HostedMeeting]]
    ) -> None:
        self._hub = hub
        self._meetings = meetings
        # Person id -> meeting id -> the name the person is shown under in that meeting.
        self._rosters: dict[str, dict[str, str]] = defaultdict(dict)
        hub.listeners.append(self._changed)

    def joined(self, meeting: HostedMeeting, conn: Connection) -> None:
        """A page joined: it learns its roster's presence; the others, the newcomer's."""
        pid = attendee_pid(conn.person, conn.user)
        if pid is not None:
            self._rosters[pid][meeting.id] = conn.user
            presence = self._hub.presence_of(pid)
            if presence.state is not State.OFFLINE:
                self._send(meeting, pid, _message(conn.user, presence), but=conn)
        partition = _reader_partition(conn)
        if partition is None:
            return  # a guest's page: no presence
        for name in list(meeting.people):
            other = attendee_pid(meeting.holders.get(name.casefold(), ""), name)
            if other is None or partition_of(other) != partition:
                continue
            presence = self._hub.presence_of(other)
            if presence.state is not State.OFFLINE:
                conn.send_text(_message(name, presence))

    def left(self, meeting: HostedMeeting, conn: Connection) -> None:
        """A person's last page of the meeting closed."""
        pid = attendee_pid(conn.person, conn.user)
        if pid is not None and pid in self._rosters:
            self._rosters[pid].pop(meeting.id, None)
            if not self._rosters[pid]:
                del self._rosters[pid]

    def _changed(self, pid: str, presence: Presence) -> None:
        rosters = self._rosters.get(pid)
        if not rosters:
            return
        meetings = self._meetings()
        for meeting_id, name in list(rosters.items()):
            meeting = meetings.get(meeting_id)
            if meeting is None or name not in meeting.people:  # ended, or moved away
                del rosters[meeting_id]
                continue
            self._send(meeting, pid, _message(name, presence))
        if not rosters:
            del self._rosters[pid]

    @staticmethod
    def _send(meeting: HostedMeeting, pid: str, text: str, but: Connection | None = None) -> None:
        """To the pages of the meeting whose reader is of the person's partition."""
        partition = partition_of(pid)
        for conn in meeting.connections:
            if conn is not but and _reader_partition(conn) == partition:
                conn.send_text(text)
