"""Settings for every Moot process, from `MOOT_*` variables or `moot.toml`.

One class per part (EMS, room server) over a shared base, so that each
command validates only what it uses. Every field is documented in
docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from moot.infra.logs import LogFormat


def config_file() -> Path:
    """The TOML file settings are read from: `MOOT_CONFIG`, else ./moot.toml (optional)."""
    named = os.environ.get("MOOT_CONFIG")
    if named is None:
        return Path("moot.toml")
    path = Path(named)
    if not path.is_file():
        raise ValueError(f"MOOT_CONFIG names {named}, which is not a file")
    return path


ASYNC_DRIVERS = {
    "postgresql://": "postgresql+asyncpg://",
    "postgres://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


# What may be attached to a meeting unless the administrator says otherwise: presentations,
# documents, spreadsheets, text and pictures (no SVG: it is a document that can run script).
DEFAULT_FILE_TYPES = "pdf,pptx,ppt,odp,docx,doc,odt,xlsx,xls,ods,txt,md,csv,png,jpg,jpeg,gif"


def _http_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


def _optional_path(value: object) -> object:
    """An empty value means "not set": `MOOT_TLS_CERT=` switches TLS off, as unset does."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class CommonSettings(BaseSettings):
    """Settings both the EMS and the room servers read."""

    model_config = SettingsConfigDict(env_prefix="MOOT_", extra="ignore")

    data_dir: Path = Field(Path("moot-data"), description="Where state files live.")
    cluster_secret: str = Field("", description="Shared by the EMS and its room servers.")
    heartbeat_interval: float = Field(1.0, gt=0, le=60)
    reconnect_grace: float = Field(
        1.0, ge=0, le=60, description="Seconds a dropped room server may take to reconnect."
    )
    failure_after: int = Field(
        3, ge=2, le=100, description="Heartbeat intervals without a report that mean FAILED."
    )
    bus_url: str = Field(
        "direct",
        description="The control channel between the EMS and its room servers: `direct` (room "
        "servers dial the EMS's WebSocket) or nats://host:port (several EMS nodes).",
    )
    bus_prefix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,40}$",
        description="Prefix of the control channel's NATS subjects: one per cluster; "
        "default: derived from the cluster secret.",
    )
    log_level: str = Field("info")
    log_format: LogFormat = Field("text", description="`text` (one line per event) or `json`.")

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if value != "direct" and not value.startswith(("nats://", "tls://")):
            raise ValueError("bus_url must be 'direct' or a nats:// URL")
        return value

    def resolved_bus_prefix(self) -> str:
        """The cluster's own subjects on a shared NATS: from the secret unless given."""
        if self.bus_prefix:
            return self.bus_prefix
        digest = hashlib.sha256(f"moot-bus:{self.cluster_secret}".encode()).hexdigest()
        return f"moot_{digest[:12]}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: command-line flags, then MOOT_* variables, then moot.toml.
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        levels = {"critical", "error", "warning", "info", "debug"}
        if value.lower() not in levels:
            raise ValueError(f"log_level must be one of {sorted(levels)}")
        return value.lower()

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class EmsSettings(CommonSettings):
    """Settings of the Meeting Center (`moot serve`)."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = Field("", description="The address browsers use; default http://HOST:PORT")
    database_url: str = Field("", description="SQLAlchemy URL; default SQLite in data_dir")
    node_name: str = Field(
        "", description="This EMS node's name among several (nats://); default host-port-pid."
    )
    join_token_ttl: int = Field(120, ge=5, le=3600, description="Seconds a join token lives.")
    signing_key_file: Path | None = Field(None, description="Ed25519 PEM; default in data_dir")
    auto_register_servers: bool = Field(
        True, description="Add an unknown room server that presents the cluster secret."
    )
    open_timeout: float = Field(5.0, gt=0, description="Seconds to wait for open_meeting.")
    # Sign-in and what anonymous users may do (docs/admin-guide.md, "Sign-in and roles").
    session_hours: float = Field(8.0, gt=0, le=24 * 30, description="How long a sign-in lasts.")
    admin_group: str = Field("stadmins", min_length=1, description="Members administer Moot.")
    anonymous_browse: bool = Field(True, description="Anonymous users may list and find meetings.")
    anonymous_create: bool = Field(True, description="Anonymous users may create meetings.")
    anonymous_attend: bool = Field(True, description="Anonymous users may attend meetings.")
    anonymous_modify_others: bool = Field(
        True, description="Anonymous users may change meetings they do not moderate."
    )
    anonymous_delete_others: bool = Field(
        False, description="Anonymous users may delete meetings they do not moderate."
    )
    login_failures_per_user: int = Field(
        5, ge=1, description="Failed sign-ins per user name in a window before a pause."
    )
    login_failures_per_address: int = Field(
        20, ge=1, description="Failed sign-ins per address in a window before a pause."
    )
    meeting_password_failures_per_address: int = Field(
        10, ge=1, description="Wrong passwords of one meeting per address in a window."
    )
    login_throttle_seconds: int = Field(
        900, ge=1, le=86400, description="The window of those counts (and of meeting passwords)."
    )
    directory_recheck_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="How often a directory user's sign-in is checked again (groups, existence).",
    )
    ldap_url: str = Field("", description="ldap:// or ldaps:// URL; empty: no LDAP sign-in.")
    ldap_bind_dn: str = Field("", description="The service account that searches the directory.")
    ldap_bind_password: str = Field("")
    ldap_partitions: str = Field(
        "",
        description="NAME=SEARCH_BASE pairs separated by '|': acme=dc=acme,dc=test|b=dc=b",
    )
    ldap_start_tls: bool = Field(False)
    ldap_ca_file: Path | None = Field(
        None, description="CA certificate the directory is checked against."
    )
    ldap_user_filter: str = Field("(&(objectClass=inetOrgPerson)(uid={username}))")
    ldap_group_filter: str = Field("(&(objectClass=groupOfNames)(member={user_dn}))")
    clock_interval: float = Field(
        5.0, gt=0, le=60, description="Seconds between checks that open and end meetings on time."
    )
    early_join_minutes: int = Field(
        10, ge=0, description="How long before its start a scheduled meeting may be opened."
    )
    # The history behind the report of each server's peaks (docs/admin-guide.md, "Reports").
    sample_interval: float = Field(
        60.0, gt=0, le=3600, description="Seconds between two server_samples rows per server."
    )
    sample_retention_days: int = Field(
        400, ge=1, description="Days server samples are kept; older ones are deleted."
    )
    # Files attached to meetings (docs/admin-guide.md, "Meeting files").
    max_file_bytes: int = Field(
        25 * 1024 * 1024, ge=1, le=512 * 1024 * 1024, description="Largest file one may attach."
    )
    max_files_per_meeting: int = Field(20, ge=0, le=1000, description="0: no files at all.")
    max_request_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body other than file uploads (JSON, forms): 413 beyond.",
    )
    allowed_file_types: str = Field(
        DEFAULT_FILE_TYPES, description="File name extensions that may be attached, by comma."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS with it.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    tls_client_ca: Path | None = Field(
        None, description="The cluster CA: room servers may prove their name with its certs."
    )

    _tls_paths = field_validator("tls_cert", "tls_key", "tls_client_ca", mode="before")(
        _optional_path
    )

    @field_validator("allowed_file_types")
    @classmethod
    def _known_file_types(cls, value: str) -> str:
        from moot.core.filetypes import KNOWN_TYPES  # the table of types the EMS can check

        names = [n.strip().lower().lstrip(".") for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in KNOWN_TYPES]
        if unknown:
            raise ValueError(
                f"unknown file types {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_TYPES))}"
            )
        return ",".join(dict.fromkeys(names))

    def allowed_file_extensions(self) -> frozenset[str]:
        return frozenset(n for n in self.allowed_file_types.split(",") if n)

    def resolved_database_url(self) -> str:
        """The URL with an asyncio driver: plain postgresql:// and sqlite:// are accepted too."""
        url = self.database_url
        if url:
            for plain, asyncio_driver in ASYNC_DRIVERS.items():
                if url.startswith(plain):
                    return asyncio_driver + url[len(plain) :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'moot.db').as_posix()}"

    _public = field_validator("public_url")(_http_url)

    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def resolved_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing-key.pem"


class RoomSettings(CommonSettings):
    """Settings of one room server (`moot room`)."""

    room_name: str = Field("", description="Unique name of this room server in the cluster.")
    room_host: str = "127.0.0.1"
    room_port: int = Field(8081, ge=0, le=65535)
    room_url: str = Field("", description="The address browsers use; default http://HOST:PORT")
    ems_url: str = Field("http://127.0.0.1:8080", description="Where the EMS listens.")
    max_active_meetings: int = Field(100, ge=0)
    max_users_per_meeting: int = Field(500, ge=1)
    instant_meetings: int | None = Field(None, ge=0, description="None means unlimited.")
    location: str = ""
    community_bus_url: str = Field(
        "",
        description="nats://host:port of the NATS JetStream that carries presence and instant "
        "messages between room servers; empty: no community services on this server.",
    )
    community_prefix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,40}$",
        description="Prefix of the NATS buckets and stream: one per cluster; "
        "default: derived from the cluster secret.",
    )
    # room_ prefixes, like room_host: one moot.toml can hold the EMS's tls_cert and these.
    room_tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS.")
    room_tls_key: Path | None = Field(None, description="PEM private key of room_tls_cert.")
    tls_ca: Path | None = Field(None, description="The CA the EMS's certificate must come from.")
    room_client_cert: Path | None = Field(
        None, description="PEM certificate (CN = room_name) presented to the EMS."
    )
    room_client_key: Path | None = Field(None, description="PEM private key of room_client_cert.")
    # Audio/video: the Janus this room server drives (docs/configuration.md).
    janus: Literal["auto", "off"] = Field(
        "auto", description="auto: start and supervise Janus (or use janus_url); off: no media."
    )
    janus_url: str = Field("", description="ws:// of a Janus the operator runs; empty: our own.")
    janus_api_secret: str = Field("", description="That Janus's api_secret, if it has one.")
    janus_admin_key: str = Field("", description="That Janus's videoroom admin_key, if any.")
    max_media_streams: int = Field(
        1000,
        ge=0,
        description="Streams (sent + received) at which media meetings go elsewhere; 0: none.",
    )
    max_media_bitrate_mbps: int = Field(
        0,
        ge=0,
        description="Mbit/s (received + sent by Janus) above which media meetings go "
        "elsewhere; 0: none.",
    )
    janus_binary: str = Field("janus", description="The janus program (auto).")
    janus_rtp_ports: str = Field(
        "", description="RTP port range of our Janus, e.g. 20000-20199; default from room_port."
    )

    _urls = field_validator("ems_url", "room_url")(_http_url)

    @field_validator("janus_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^wss?://[^\s/]+", value):
            raise ValueError("give Janus's WebSocket address, e.g. ws://127.0.0.1:8188")
        return value

    @field_validator("janus_rtp_ports")
    @classmethod
    def _port_range(cls, value: str) -> str:
        value = value.strip()
        if value:
            first, _, last = value.partition("-")
            if not (
                first.isdigit() and last.isdigit() and 1024 <= int(first) <= int(last) <= 65535
            ):
                raise ValueError("give a range FIRST-LAST within 1024-65535, e.g. 20000-20199")
        return value

    _tls_paths = field_validator(
        "room_tls_cert",
        "room_tls_key",
        "tls_ca",
        "room_client_cert",
        "room_client_key",
        mode="before",
    )(_optional_path)

    @field_validator("room_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 64, no spaces)")
        return value

    @field_validator("community_bus_url")
    @classmethod
    def _nats_url(cls, value: str) -> str:
        if value and not value.startswith(("nats://", "tls://")):
            raise ValueError("community_bus_url must be a nats:// URL (or empty)")
        return value

    def resolved_community_prefix(self) -> str:
        """The cluster's own names on a shared NATS: from the secret unless given."""
        if self.community_prefix:
            return self.community_prefix
        digest = hashlib.sha256(f"moot-community:{self.cluster_secret}".encode()).hexdigest()
        return f"moot_{digest[:12]}"

    def resolved_room_url(self) -> str:
        """What the EMS sends browsers to: https:// when this room server serves HTTPS."""
        if self.room_url:
            return self.room_url.rstrip("/")
        scheme = "https" if self.room_tls_cert else "http"
        return f"{scheme}://{self.room_host}:{self.room_port}"


def load(cls: type[CommonSettings], **overrides: Any) -> Any:
    """Build settings, dropping flags the user did not give (None)."""
    return cls(**{k: v for k, v in overrides.items() if v is not None})
