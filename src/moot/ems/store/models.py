"""Tables. docs/schema.md documents them for operators' own reports.

Change a table only together with a new migration in migrations/versions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from moot.core.meeting_status import MeetingStatus
from moot.ems.store.db import UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class RoomServerRow(Base):
    """A room server the cluster knows, with the limits placement obeys."""

    __tablename__ = "room_servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    max_active_meetings: Mapped[int] = mapped_column(Integer)
    max_users_per_meeting: Mapped[int] = mapped_column(Integer)
    instant_meetings: Mapped[int | None] = mapped_column(Integer, nullable=True)
    location: Mapped[str] = mapped_column(String(64), default="")
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    # While draining: when the meetings still running there move to other servers.
    drain_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Last known state: online / offline. Live detail is in memory.
    status: Mapped[str] = mapped_column(String(16), default="offline")
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MeetingRow(Base):
    """A meeting, scheduled or instant; also its booking of expected participants."""

    __tablename__ = "meetings"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    moderator: Mapped[str] = mapped_column(String(200))
    expected_participants: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    instant: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where it should run: "" = anywhere; required = never elsewhere, else preferred.
    location: Mapped[str] = mapped_column(String(64), default="")
    location_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # The IANA zone it was scheduled in: a repeat rule keeps its wall-clock time there.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    recurrence: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The end of its last occurrence (end_at if it does not repeat; None: repeats for ever).
    series_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # In no list and no search: attended by typing its whole name. Unique among unlisted.
    unlisted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The directory partition of whoever created it: other partitions never see it.
    partition: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Users or groups who may attend; empty: everyone. Kept in lower case, one row each, in
    # meeting_access too (with `restricted`), so that lists can filter in SQL (0016).
    restricted_to: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    restricted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # SHA-256 (hex) of the moderator key its creator was given; NULL: none (0016).
    moderator_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # scheduled -> in_progress -> ended
    status: Mapped[str] = mapped_column(String(16), default=MeetingStatus.SCHEDULED)
    server_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # While scheduled: the server its expected participants are booked on for its hours.
    booked_server: Mapped[str | None] = mapped_column(String(64), nullable=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_meetings_start", "start_at", "id"),
        Index("ix_meetings_status_start", "status", "start_at"),
        Index("ix_meetings_name", "name", "id"),
        Index("ix_meetings_moderator", "moderator", "id"),
        Index("ix_meetings_server", "server_name", "status"),
        Index("ix_meetings_booked", "status", "end_at"),
        # The search's ILIKE '%text%' on PostgreSQL (migration 0010); SQLite has no such index.
        Index(
            "ix_meetings_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_meetings_moderator_trgm",
            "moderator",
            postgresql_using="gin",
            postgresql_ops={"moderator": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "uq_meetings_unlisted_name",
            "name",
            unique=True,
            sqlite_where=text("unlisted"),
            postgresql_where=text("unlisted"),
        ),
    )


class MeetingAccessRow(Base):
    """One user or group name (lower case) of a meeting's `restricted_to` (migration 0016)."""

    __tablename__ = "meeting_access"

    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    entry: Mapped[str] = mapped_column(String(200), primary_key=True)

    __table_args__ = (Index("ix_meeting_access_entry", "entry", "meeting_id"),)


class ServerEventRow(Base):
    """A room server's change of state (online, suspect, failed, offline), for reports."""

    __tablename__ = "server_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_name: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))

    __table_args__ = (Index("ix_server_events_server_at", "server_name", "at"),)


# What the partial index on the tools' journal rows holds; its readers repeat it word for
# word (SQLite uses a partial index only for a query that says what its WHERE says).
TOOL_ROWS = "kind <> 'chat'"


class JournalRow(Base):
    """One state-changing meeting event (a chat line, ...), stored before it is acknowledged.

    A meeting is rebuilt from its journal on whichever room server it moves to.
    """

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    epoch: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("meeting_id", "sender", "event_id", name="uq_journal_event"),
        Index("ix_journal_meeting", "meeting_id", "id"),
        # One tool's events of one meeting (migrations 0017, 0018): moderator controls,
        # polls. Only the tools' rows: a chat line, the busiest write, does not update it.
        Index(
            "ix_journal_tool_events",
            "meeting_id",
            "kind",
            "id",
            sqlite_where=text(TOOL_ROWS),
            postgresql_where=text(TOOL_ROWS),
        ),
    )


class AttendanceRow(Base):
    """One person's stay in a meeting: from joining to leaving."""

    __tablename__ = "attendance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    user_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    server_name: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer)
    # Indexed for the reports, which read the stays of a date range (migration 0014).
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CapacityWarningRow(Base):
    """A meeting placed over a server's limits, or grown past them while it runs."""

    __tablename__ = "capacity_warnings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # No foreign keys: a warning outlives its meeting and its server.
    meeting_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    server_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(1000))

    __table_args__ = (Index("ix_capacity_warnings_at", "at"),)


class RecordingSegmentRow(Base):
    """The part of a recorded meeting that one room server hosted, at one epoch.

    A meeting that moves (failover, drain) goes on recording on its new server as a new
    segment; playback joins the segments in order, as one recording. What a segment holds
    is the meeting's journal at its epoch and the roster changes in its time.
    """

    __tablename__ = "recording_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    epoch: Mapped[int] = mapped_column(Integer)
    server_name: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Why it ended: "meeting ended", "room server failed", "moved (drain)", ...
    end_reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (UniqueConstraint("meeting_id", "epoch", name="uq_recording_segment_epoch"),)


class RecordingMediaRow(Base):
    """One media file of a recording: a person's audio, video or screen as one room
    server's Janus recorded it at one epoch (the segment's), post-processed there into
    Opus/Ogg or VP8/WebM and sent up the control link. Bytes in the database, as meeting
    files' are: every EMS node serves them, a backup holds them.
    """

    __tablename__ = "recording_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    epoch: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))  # the room server's, unique per epoch
    user_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # camera or screen
    track: Mapped[str] = mapped_column(String(16))  # audio or video
    content_type: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    __table_args__ = (
        UniqueConstraint("meeting_id", "epoch", "name", name="uq_recording_media_name"),
    )


class MeetingExceptionRow(Base):
    """One occurrence of a repeating meeting that is skipped, or moved to another time."""

    __tablename__ = "meeting_exceptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    # Which occurrence: its start as the repeat rule gives it.
    original_start: Mapped[datetime] = mapped_column(UTCDateTime)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    new_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    new_duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        UniqueConstraint("meeting_id", "original_start", name="uq_meeting_exception"),
    )


class ClosedOccurrenceRow(Base):
    """An occurrence of a repeating meeting that a moderator closed early ("end for all"):
    the series goes on, and this occurrence is not opened again (migration 0021)."""

    __tablename__ = "closed_occurrences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    # Which occurrence: its start as the repeat rule gives it.
    original_start: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("meeting_id", "original_start", name="uq_closed_occurrence"),
    )


class OccurrenceRow(Base):
    """When a meeting happens: one row per occurrence (one for a meeting that does not repeat).

    Derived from the meeting's start, duration, rule and exceptions, and written again when
    they change, so that a calendar range is an index range scan, not a rule expansion.
    """

    __tablename__ = "occurrences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    original_start: Mapped[datetime] = mapped_column(UTCDateTime)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("meeting_id", "original_start", name="uq_occurrence"),
        Index("ix_occurrences_start", "start_at", "meeting_id"),
        # Every column a calendar range reads: an index-only range scan (migration 0010).
        Index(
            "ix_occurrences_range",
            "start_at",
            "meeting_id",
            "end_at",
            "original_start",
            postgresql_include=["id"],
        ),
    )


class MeetingFileRow(Base):
    """A file attached to a meeting (a presentation, a document), bytes included.

    The bytes are in the database, not on an EMS node's disk: every node serves them and a
    backup of the database holds them. Lists read the other columns only (store/files.py).
    """

    __tablename__ = "meeting_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("meetings.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    # From moot.core.filetypes (by extension and content), never the browser's claim.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    __table_args__ = (Index("ix_meeting_files_meeting", "meeting_id", "id"),)


class UserRow(Base):
    """A local user (the embedded directory); LDAP users are not stored."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Compared ignoring case: stored as typed, unique in lower case.
    username: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(500))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("uq_users_username", func.lower(username), unique=True),)


class SigningKeyRow(Base):
    """The Ed25519 keys that sign sign-in tokens, shared by every EMS node.

    The newest active key signs; a retired key verifies nothing: rotating retires the old
    key after the tokens it signed have expired (or at once, to cut them off).
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RevokedTokenRow(Base):
    """A signed-out sign-in token: refused until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginFailureRow(Base):
    """A failed sign-in, for the reports: who, when, from where, why."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_login_failures_at", "at"),)


class LoginRow(Base):
    """A successful sign-in, for the community statistics (logins per day, distinct users)."""

    __tablename__ = "logins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    partition: Mapped[str | None] = mapped_column(String(64), nullable=True)
    address: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_logins_at", "at"),)


class AuditRow(Base):
    """An administrative action: who did what to what, when, from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class BroadcastRow(Base):
    """A message to all users: shown on every open page until it expires."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    sent_by: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_broadcasts_expires_at", "expires_at"),)


class ConfigVersionRow(Base):
    """One version of a configuration scope: the cluster ('cluster') or a room server's
    overrides (its name). Each change adds a row with the scope's full values."""

    __tablename__ = "config_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    scope: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (Index("ix_config_versions_scope", "scope", "version"),)


class ConfigAppliedRow(Base):
    """The configuration version a room server last said it applied."""

    __tablename__ = "config_applied"

    server_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServerSampleRow(Base):
    """A room server's usage over one sampling interval (the highest values seen in it).

    Written by moot.ems.cluster.samples once a minute per online server, for the report of
    each server's peak usage; rows older than the retention are deleted.
    """

    __tablename__ = "server_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Not a foreign key: samples outlive a removed server.
    server_name: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    active_meetings: Mapped[int] = mapped_column(Integer)
    # When the interval's highest meetings and participants were first seen: `at` is the
    # write, up to an interval later.
    meetings_at: Mapped[datetime] = mapped_column(UTCDateTime)
    participants: Mapped[int] = mapped_column(Integer)
    participants_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cpu_percent: Mapped[float] = mapped_column(Float)
    memory_percent: Mapped[float] = mapped_column(Float)
    # Community services: the most connections seen, and the sign-ins and instant messages
    # (counted, never their text) in the interval.
    community_connections: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    community_signins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    community_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_server_samples_server_at", "server_name", "at"),
        Index("ix_server_samples_at", "at"),
    )


class ThrottleRow(Base):
    """The attempts of one key (`user:NAME`, `address:IP`, `meeting:ID:IP`) in its window.

    An attempt is reserved before it is checked, by one conditional UPDATE (store.throttles),
    so that parallel attempts, on one EMS node or many, never get past the limit.
    """

    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class CalendarFeedRow(Base):
    """A person's secret calendar feed address, as its SHA-256 (the address is shown once)."""

    __tablename__ = "calendar_feeds"

    # "partition/username" in lower case: one feed per person.
    owner: Mapped[str] = mapped_column(String(300), primary_key=True)
    username: Mapped[str] = mapped_column(String(200))
    partition: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
