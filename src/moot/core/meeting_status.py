"""The states a meeting goes through: scheduled, then in progress on a room server, then
ended. Stored as these words (`meetings.status`) and shown as them by the API."""

from __future__ import annotations

from enum import StrEnum


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ENDED = "ended"
