"""The cluster configuration: its sections and keys, their validation, and overrides.

Pure (no I/O). The EMS stores versions of two kinds of scope, the whole cluster and one
room server (its overrides), and sends each room server its effective values: the
cluster's, with that server's overrides on top. Per-process settings (ports, paths, the
cluster secret) are not here: they are environment variables or moot.toml
(`moot.infra.settings`), read once at start-up.

Values are flat: one namespace of keys, each belonging to a section, so an override is
just `{"max_chat_length": 500}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Section = Literal["connectivity", "community", "meeting", "media"]
Applies = Literal["live", "restart"]

SECTIONS: tuple[tuple[Section, str], ...] = (
    ("connectivity", "Connectivity"),
    ("community", "Community services"),
    ("meeting", "Meeting services"),
    ("media", "Audio and video"),
)
TOOLS = ("chat", "whiteboard", "screen_sharing", "audio_video", "polls", "send_web_page")
CHAT_LIMIT = 2000  # the protocol's own bound on a chat line (moot.protocol.client)
# What pages, the API and the history show instead of a stored TURN credential; sent back
# unchanged, it means "keep the stored one".
MASK = "********"

_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_STUN = re.compile(r"^stuns?:[^\s?#]+$")
_TURN = re.compile(r"^turns?:[^\s?#]+(\?transport=(udp|tcp))?$")


class TurnServer(BaseModel):
    """A TURN relay for WebRTC: its URL and the long-term credential browsers use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(max_length=300, description="turn: or turns: URL, e.g. turn:turn.example:3478")
    username: str = Field(min_length=1, max_length=200)
    credential: str = Field(min_length=1, max_length=500, description="A secret: never shown back.")
    # "long_term": username and credential go to browsers as they are (a long-term account);
    # "rest": the credential is coturn's static-auth-secret, and each browser gets a
    # short-lived username and password made from it (coturn's TURN REST API scheme).
    kind: Literal["long_term", "rest"] = "long_term"

    @field_validator("url")
    @classmethod
    def _turn_url(cls, value: str) -> str:
        value = value.strip()
        if not _TURN.match(value):
            raise ValueError("a TURN server is a turn: or turns: URL, e.g. turn:turn.example:3478")
        return value


class ClusterConfig(BaseModel):
    """Every key, with its default, bounds and help; `KEYS` says its section and how it applies."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # connectivity
    advertised_url: str = Field(
        "",
        max_length=300,
        description="The address browsers use for this room server (behind a proxy or NAT); "
        "empty: the address it registered with. Per server only.",
    )
    http_proxy: str = Field(
        "",
        max_length=300,
        description="Proxy for the room server's outgoing HTTP (fetching shared web pages); "
        "empty: none.",
    )
    no_proxy: str = Field(
        "", max_length=1000, description="Hosts reached without the proxy, comma-separated."
    )
    # community services
    presence_enabled: bool = Field(True, description="Show who is online (presence).")
    instant_messages_enabled: bool = Field(
        True, description="Let people send each other instant messages."
    )
    instant_message_retention_days: int = Field(
        0,
        ge=0,
        le=3650,
        description="Days instant messages are kept; older ones are deleted. 0: kept for ever.",
    )
    # meeting services
    max_chat_length: int = Field(
        CHAT_LIMIT, ge=1, le=CHAT_LIMIT, description="The longest chat line, in characters."
    )
    max_chat_lines_per_minute: int = Field(
        60,
        ge=1,
        le=1_000_000,
        description="Chat lines one person may send in a minute (a sixth of it at once).",
    )
    default_tools: list[str] = Field(
        default_factory=lambda: list(TOOLS),
        min_length=1,
        description="The tools of a meeting that names none (instant meetings).",
    )
    recording_allowed: bool = Field(
        True, description="Meetings opened from now on may record; off: none records."
    )
    welcome_message: str = Field(
        "", max_length=1000, description="Shown at the top of every meeting page opened."
    )
    # audio and video
    stun_servers: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="STUN servers for WebRTC, e.g. stun:stun.example:3478.",
    )
    turn_servers: list[TurnServer] = Field(
        default_factory=list, max_length=10, description="TURN relays for WebRTC."
    )
    max_video_kbps: int = Field(1500, ge=100, le=20000, description="Video bit rate per sender.")
    max_audio_kbps: int = Field(64, ge=8, le=510, description="Audio bit rate per sender.")

    @field_validator("advertised_url", "http_proxy")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not _URL.match(value):
            raise ValueError("give an http:// or https:// address, e.g. https://room1.example")
        return value

    @field_validator("no_proxy")
    @classmethod
    def _hosts(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if any(" " in h for h in hosts):
            raise ValueError("separate the hosts with commas")
        return ",".join(hosts)

    @field_validator("welcome_message")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("default_tools")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in TOOLS]
        if unknown:
            raise ValueError(f"unknown tool {unknown[0]!r}; the tools are {', '.join(TOOLS)}")
        return [t for t in TOOLS if t in value]  # in the usual order, once each

    @field_validator("stun_servers")
    @classmethod
    def _stun(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value if v.strip()]
        for item in cleaned:
            if not _STUN.match(item):
                raise ValueError(f"{item!r} is not a stun: or stuns: URL")
        return cleaned


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    section: Section
    label: str
    applies: Applies
    # "server": only a room server's override may set it (an address is one server's).
    scope: Literal["any", "server"] = "any"

    @property
    def help(self) -> str:
        return ClusterConfig.model_fields[self.name].description or ""


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("advertised_url", "connectivity", "Advertised address", "live", "server"),
        Key("http_proxy", "connectivity", "HTTP proxy", "restart"),
        Key("no_proxy", "connectivity", "No proxy for", "restart"),
        Key("presence_enabled", "community", "Presence", "live"),
        Key("instant_messages_enabled", "community", "Instant messages", "live"),
        Key("instant_message_retention_days", "community", "Chat history kept (days)", "live"),
        Key("max_chat_length", "meeting", "Longest chat line", "live"),
        Key("max_chat_lines_per_minute", "meeting", "Chat lines per person a minute", "live"),
        Key("default_tools", "meeting", "Default tools", "live"),
        Key("recording_allowed", "meeting", "Recording allowed", "live"),
        Key("welcome_message", "meeting", "Welcome message", "live"),
        Key("stun_servers", "media", "STUN servers", "live"),
        Key("turn_servers", "media", "TURN servers", "live"),
        Key("max_video_kbps", "media", "Video bit rate (kbit/s)", "live"),
        Key("max_audio_kbps", "media", "Audio bit rate (kbit/s)", "live"),
    )
}
assert set(KEYS) == set(ClusterConfig.model_fields), "every key has its metadata"

DEFAULTS: dict[str, Any] = ClusterConfig().model_dump(mode="json")


class ConfigError(ValueError):
    """Values that are not valid; `errors` maps a key (or key.index.field) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _errors_of(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "values"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        errors.setdefault(where, message)
    return errors


def _validated(values: Mapping[str, Any]) -> ClusterConfig:
    try:
        return ClusterConfig.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(_errors_of(exc)) from None


def _keep_credentials(
    new: Mapping[str, Any], old: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """A TURN credential sent back as MASK is the stored one of that URL and username."""
    turn = new.get("turn_servers")
    if not isinstance(turn, list):
        return dict(new)
    stored = {
        (t.get("url"), t.get("username")): t.get("credential")
        for t in old.get("turn_servers", [])
        if isinstance(t, dict)
    }
    kept: list[Any] = []
    for index, item in enumerate(turn):
        if isinstance(item, dict) and item.get("credential") == MASK:
            credential = stored.get((str(item.get("url", "")).strip(), item.get("username")))
            if credential is None:
                errors[f"turn_servers.{index}.credential"] = "give this server's credential"
            item = {**item, "credential": credential or ""}
        kept.append(item)
    return {**new, "turn_servers": kept}


def validate_cluster(
    values: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The cluster scope's complete values, defaults filled in; ConfigError if invalid.

    previous: the stored values, whose TURN credentials a MASK keeps.
    """
    errors: dict[str, str] = {}
    values = _keep_credentials(values, previous or {}, errors)
    for name in values:
        key = KEYS.get(name)
        if key is not None and key.scope == "server" and values[name] != DEFAULTS[name]:
            errors[name] = "set this for one room server, not the whole cluster"
    try:
        config = _validated(values)
    except ConfigError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise ConfigError(errors)
    return config.model_dump(mode="json")


def validate_overrides(
    overrides: Mapping[str, Any],
    cluster: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One server's overrides, normalised (only the keys given); ConfigError if invalid.

    They are checked as part of the values they make (cluster's plus these), so every
    bound applies; previous: the stored overrides, whose TURN credentials a MASK keeps.
    """
    errors: dict[str, str] = {}
    unknown = [k for k in overrides if k not in KEYS]
    for name in unknown:
        errors[name] = "unknown key"
    known = {k: v for k, v in overrides.items() if k in KEYS}
    known = _keep_credentials(known, {**cluster, **(previous or {})}, errors)
    try:
        merged = _validated({**cluster, **known}).model_dump(mode="json")
    except ConfigError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise ConfigError(errors)
    return {k: merged[k] for k in KEYS if k in known}


@dataclass(frozen=True, slots=True)
class Effective:
    values: dict[str, Any]
    overridden: frozenset[str]


def effective(cluster_values: Mapping[str, Any], server_overrides: Mapping[str, Any]) -> Effective:
    """What one room server runs: defaults, then the cluster's values, then its overrides.

    Keys no longer known (a newer version removed them) are dropped, so stored versions
    never stop a room server from getting its configuration.
    """
    values = {**DEFAULTS, **{k: v for k, v in cluster_values.items() if k in KEYS}}
    overridden = frozenset(k for k in server_overrides if k in KEYS)
    values.update({k: server_overrides[k] for k in overridden})
    return Effective(values=values, overridden=overridden)


def masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values to show a person: every TURN credential replaced by MASK."""
    shown = dict(values)
    if isinstance(shown.get("turn_servers"), list):
        shown["turn_servers"] = [
            {**t, "credential": MASK} if isinstance(t, dict) else t for t in shown["turn_servers"]
        ]
    return shown


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    before: Any  # None: not set in that scope
    after: Any


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """What changed from one version of a scope to the next, credentials masked.

    A changed credential shows as MASK -> MASK with the rest of its server: that it
    changed is told, never its value.
    """
    shown_before, shown_after = masked(before), masked(after)
    changes = []
    for name in [*KEYS, *sorted((set(before) | set(after)) - set(KEYS))]:
        if name not in before and name not in after:
            continue
        if before.get(name) != after.get(name):
            changes.append(Change(name, shown_before.get(name), shown_after.get(name)))
    return changes


# How long a TURN REST credential given to a page lasts (seconds): a meeting's day; a
# page open longer gets fresh ones with each `media_state` (after a reconnect, say).
TURN_CREDENTIAL_TTL = 12 * 3600


def turn_rest_credential(secret: str, user: str, expires: int) -> tuple[str, str]:
    """coturn's TURN REST API scheme: username `EXPIRES:USER`, password the base64 of the
    HMAC-SHA1 of that username keyed with the shared secret (coturn's static-auth-secret)."""
    username = f"{expires}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(values: Mapping[str, Any], now: float = 0.0) -> list[dict[str, Any]]:
    """The RTCPeerConnection `iceServers` of the values: what meeting pages use.

    `now` (Unix time): when the credentials of `rest` TURN servers start; they expire
    TURN_CREDENTIAL_TTL later."""
    servers: list[dict[str, Any]] = []
    stun = list(values.get("stun_servers", []))
    if stun:
        servers.append({"urls": stun})
    for turn in values.get("turn_servers", []):
        username, credential = turn["username"], turn["credential"]
        if turn.get("kind") == "rest":
            expires = int(now) + TURN_CREDENTIAL_TTL
            username, credential = turn_rest_credential(credential, username, expires)
        servers.append({"urls": [turn["url"]], "username": username, "credential": credential})
    return servers


def for_room(values: Mapping[str, Any]) -> ClusterConfig:
    """The values a room server got, checked; keys it does not know (a newer EMS) ignored."""
    return _validated({k: v for k, v in values.items() if k in KEYS})
